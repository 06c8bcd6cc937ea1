/**
 * budgets: the characters a model receives (the text of an MCP tools/call answer, which is what MCP clients put in
 * the context) for the four cases, beside what the same calls gave at commit ad63ada, before answers had
 * budgets. Character counts do not depend on the machine or its load, so the ad63ada figures were measured once
 * (by running this scenario with BENCH_BUDGETS_BASELINE_ROOT pointing at a built worktree of ad63ada) and are kept
 * below; with that variable set the baseline is measured live in the same run instead.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { JsonClient } from '../lib/http.js';
import { uploadDir, writeFiles } from '../lib/project.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Figure, Scenario } from '../lib/types.js';

/** One case: a tool call whose answer a model receives whole. */
interface Case {
  figure: string;
  tool: string;
  args: Record<string, unknown>;
  /** The budget the answer must stay within (characters). */
  budget: number;
}

const PROJECT = 'budgets';

function cases(smoke: boolean): Case[] {
  const lines = smoke ? 30_000 : 300_000;
  return [
    { figure: `execute "seq 1 ${lines}"`, tool: 'execute', args: { project_id: PROJECT, command: `seq 1 ${lines}` }, budget: 30_000 + 1_000 },
    { figure: 'file_read of a 50,000-line file', tool: 'file_read', args: { project_id: PROJECT, path: 'long.txt' }, budget: 100_000 + 1_000 },
    { figure: 'file_read of a 5 MB one-line minified file', tool: 'file_read', args: { project_id: PROJECT, path: 'app.min.js' }, budget: 100_000 + 1_000 },
    { figure: 'search with 10,000 matches', tool: 'search', args: { project_id: PROJECT, pattern: 'needle' }, budget: 30_000 + 1_000 },
  ];
}

/** The project: a 50,000-line file, a 5 MB file of one line, and 10,000 matching lines over 100 files. */
function files(): Record<string, string> {
  const out: Record<string, string> = {};
  out['long.txt'] = `${Array.from({ length: 50_000 }, (_, i) => `line ${i + 1}: the quick brown fox jumps over the lazy dog`).join('\n')}\n`;
  const stmt = 'function f(a,b){return a.map(function(x){return x*b+1}).filter(Boolean)};';
  out['app.min.js'] = stmt.repeat(Math.ceil(5_000_000 / stmt.length)).slice(0, 5_000_000);
  for (let f = 0; f < 100; f++) {
    out[`src/m${f}.ts`] = `${Array.from({ length: 100 }, (_, i) => `export const v${i} = 'needle ${f}-${i}'; // haystack`).join('\n')}\n`;
  }
  return out;
}

/** The characters of text the model gets for each case from the supervisor built in `root` (default: this one). */
async function measure(tmp: string, name: string, all: Case[], root?: string): Promise<number[]> {
  const sup = await launchSupervisor({ tmp, name, ...(root ? { root } : {}) });
  const http = new JsonClient(sup);
  const mcp = new Client({ name: 'toolhost-bench', version: '1' });
  try {
    const dir = join(tmp, `${name}-project`);
    await mkdir(dir, { recursive: true });
    await writeFiles(dir, files());
    await uploadDir(http, PROJECT, dir, tmp);
    await mcp.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', sup.url), { requestInit: { headers: sup.token ? { authorization: `Bearer ${sup.token}` } : {} } }),
    );
    const chars: number[] = [];
    for (const c of all) {
      const result = await mcp.callTool({ name: c.tool, arguments: c.args });
      if (result.isError) throw new Error(`${c.tool} failed: ${JSON.stringify(result.content).slice(0, 500)}`);
      const content = result.content as { type: string; text?: string }[];
      chars.push(content.reduce((n, b) => n + (b.type === 'text' ? (b.text ?? '').length : 0), 0));
    }
    return chars;
  } finally {
    await mcp.close();
    http.close();
    await sup.stop();
  }
}

/** Measured at ad63ada with the full sizes on 2026-12-02 (see the header). */
const AT_AD63ADA = [1_213_090, 1_067_549, 1_048_671, 24_174];

export const budgets: Scenario = {
  name: 'budgets',
  description:
    'Characters of text a model receives through MCP for four large answers (a 300,000-line command output, a 50,000-line file, a 5 MB one-line file, a search with 10,000 matches), beside what ad63ada gave for the same calls.',
  async run(ctx) {
    const all = cases(ctx.smoke);
    const baselineRoot = process.env.BENCH_BUDGETS_BASELINE_ROOT;
    const now = await measure(ctx.tmp, 'budgets', all);
    const before = baselineRoot ? await measure(ctx.tmp, 'baseline', all, baselineRoot) : AT_AD63ADA;
    return all.map(
      (c, i): Figure => ({
        figure: `${c.figure}: characters to the model`,
        unit: 'chars',
        value: now[i] ?? Number.NaN,
        ...(ctx.smoke && !baselineRoot ? {} : { baseline: before[i] ?? Number.NaN }),
        target: { of: 'value', op: '<=', limit: c.budget },
        note: baselineRoot ? 'baseline: ad63ada, measured in this run' : 'baseline: ad63ada, measured once (deterministic)',
      }),
    );
  },
};
