/**
 * peers: toolhost beside the reference MCP server, @modelcontextprotocol/server-filesystem (a devDependency), on
 * the call an agent makes most: reading a small file. The same 4 KiB file is read three ways, one call at a time,
 * in rotating order so drift on the machine hits every side alike:
 *   - the reference server over stdio (its own process, started the way MCP hosts start it), through the MCP SDK's
 *     Client and StdioClientTransport, tool `read_text_file`;
 *   - toolhost's HTTP API, POST /file/read on a keep-alive connection;
 *   - toolhost's MCP endpoint, Streamable HTTP at /mcp, through the SDK's Client and StreamableHTTPClientTransport,
 *     tool `file_read`.
 * Both MCP sides use the same SDK client, so its costs (schema validation of every message) are on both.
 */
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { sourceFile } from '../lib/dataset.js';
import { authHeaders, JsonClient } from '../lib/http.js';
import { uploadFiles, writeFiles } from '../lib/project.js';
import { percentile } from '../lib/stats.js';
import { launchSupervisor, REPO_ROOT } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

/** The reference server's entry point, run with this Node like the supervisor. */
const REFERENCE_ENTRY = join(REPO_ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');

/** A side of the comparison: its name and one read. */
interface Side {
  name: string;
  read: () => Promise<void>;
}

/**
 * Warms every side up, then calls them `n` rounds, one call each per round; the order rotates each round so no
 * side always follows the same other one (its GC, its log writes). Returns each side's samples (ms) by name.
 */
async function timeRotating(n: number, warmup: number, sides: readonly Side[]): Promise<Map<string, number[]>> {
  for (let i = 0; i < warmup; i++) for (const s of sides) await s.read();
  const out = new Map(sides.map((s) => [s.name, [] as number[]]));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < sides.length; k++) {
      const s = sides[(i + k) % sides.length]!;
      const t0 = performance.now();
      await s.read();
      out.get(s.name)!.push(performance.now() - t0);
    }
  }
  return out;
}

/** The text of an MCP tool result's text items, joined. */
function resultText(r: Awaited<ReturnType<Client['callTool']>>): string {
  if (r.isError) throw new Error(`the tool failed: ${JSON.stringify(r.content).slice(0, 500)}`);
  return (r.content as { type: string; text?: string }[]).map((c) => (c.type === 'text' ? (c.text ?? '') : '')).join('\n');
}

/** file_read's model text back to the file: the `cat -n` numbers and the closing "[lines ...]" line taken off. */
function unnumbered(text: string): string {
  const lines = text.split('\n');
  if (!/^\[lines .*end of file\]$/.test(lines.at(-1) ?? '')) throw new Error(`file_read did not read to the end: ${lines.at(-1)}`);
  return `${lines
    .slice(0, -1)
    .map((l) => l.replace(/^ *\d+\t/, ''))
    .join('\n')}\n`;
}

export const peers: Scenario = {
  name: 'peers',
  description:
    'A 4 KiB text file read one call at a time through the reference MCP server (@modelcontextprotocol/server-filesystem over stdio, read_text_file, MCP SDK client), toolhost POST /file/read (keep-alive), and toolhost /mcp (Streamable HTTP, file_read, MCP SDK client), in rotating order.',
  async run(ctx) {
    const n = ctx.smoke ? 20 : 500;
    const warmup = ctx.smoke ? 5 : 50;
    const content = sourceFile(3, 4096);
    const local = join(ctx.tmp, 'reference');
    await writeFiles(local, { 'file4k.ts': content });
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const http = new JsonClient(sup);
    const reference = new Client({ name: 'toolhost-bench', version: '1' });
    const toolhost = new Client({ name: 'toolhost-bench', version: '1' });
    try {
      await uploadFiles(http, 'peers', { 'src/file4k.ts': content }, ctx.tmp);
      await reference.connect(new StdioClientTransport({ command: process.execPath, args: [REFERENCE_ENTRY, local], stderr: 'ignore' }));
      await toolhost.connect(new StreamableHTTPClientTransport(new URL('/mcp', sup.url), { requestInit: { headers: authHeaders(sup) } }));
      const referencePath = join(local, 'file4k.ts');
      const sides: Side[] = [
        {
          name: 'reference',
          read: async () => {
            const text = resultText(await reference.callTool({ name: 'read_text_file', arguments: { path: referencePath } }));
            if (text !== content) throw new Error('read_text_file returned other content than the file');
          },
        },
        {
          name: 'http',
          read: async () => {
            const r = await http.post('/file/read', { project_id: 'peers', path: 'src/file4k.ts' });
            if (r.body.content !== content) throw new Error('/file/read returned other content than the file');
          },
        },
        {
          name: 'mcp',
          read: async () => {
            const text = resultText(await toolhost.callTool({ name: 'file_read', arguments: { project_id: 'peers', path: 'src/file4k.ts' } }));
            if (unnumbered(text) !== content) throw new Error('file_read over /mcp returned other content than the file');
          },
        },
      ];
      ctx.log(`${n} reads each side`);
      const s = await timeRotating(n, warmup, sides);
      const p = (side: string, q: number): number => percentile(s.get(side)!, q);
      return [
        {
          figure: 'HTTP read p50 vs reference MCP (stdio) read p50',
          unit: 'ms',
          value: p('http', 50),
          baseline: p('reference', 50),
          target: { of: 'ratio', op: '<', limit: 1 },
          note: 'toolhost POST /file/read vs server-filesystem read_text_file over stdio',
        },
        { figure: 'HTTP read p99 vs reference MCP (stdio) read p99', unit: 'ms', value: p('http', 99), baseline: p('reference', 99) },
        {
          figure: 'MCP read p50 vs HTTP read p50',
          unit: 'ms',
          value: p('mcp', 50),
          baseline: p('http', 50),
          target: { of: 'ratio', op: '<=', limit: 1.5 },
          note: 'toolhost /mcp file_read vs toolhost POST /file/read',
        },
        { figure: 'MCP read p99 vs HTTP read p99', unit: 'ms', value: p('mcp', 99), baseline: p('http', 99) },
        {
          figure: 'MCP read p50 vs reference MCP (stdio) read p50',
          unit: 'ms',
          value: p('mcp', 50),
          baseline: p('reference', 50),
          note: 'both through the MCP SDK client: toolhost over Streamable HTTP, the reference over stdio',
        },
        { figure: 'MCP read p99 vs reference MCP (stdio) read p99', unit: 'ms', value: p('mcp', 99), baseline: p('reference', 99) },
      ];
    } finally {
      await Promise.allSettled([reference.close(), toolhost.close()]);
      http.close();
      await sup.stop();
    }
  },
};
