/** search: /search over a large tree vs running ripgrep directly on the same files. */
import { spawn } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rgPath } from '@vscode/ripgrep';
import { loadConfig } from '../../config/load.js';
import { comparePaths } from '../../lib/search/path-order.js';
import { rgArgs, rgThreads } from '../../lib/search/rg-args.js';
import { generateTree } from '../lib/dataset.js';
import { JsonClient } from '../lib/http.js';
import { uploadDir } from '../lib/project.js';
import { median, mib } from '../lib/stats.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Figure, Scenario } from '../lib/types.js';

/** Files that get the planted lines: fewer than max_results, so every search scans the whole tree. */
const PLANTED = 100;
const LITERAL = 'bench_needle_literal';
const REGEX = String.raw`fn\s+[a-z]+_handler\(\d+\)`;
/** The rg command line toolhost's search runs for `pattern` over a whole project (rg-args.ts), less the sandbox. */
function toolhostArgs(pattern: string, regex: boolean): string[] {
  const { search } = loadConfig();
  const query = { pattern, regex, case_sensitive: true, context_lines: 0, path: '.' };
  return rgArgs(query, '.', 'walk', undefined, search.maxLineBytes, { threads: rgThreads(search.maxMemoryBytes) });
}

export const search: Scenario = {
  name: 'search',
  description: `POST /search for a literal and for a regex (${PLANTED} matching lines each, under max_results, so the whole tree is scanned) over a generated 200 MiB / 4,000-file text tree, vs \`rg -n\` run directly on the same tree (page cache warm, median of 20). Each answer is checked against rg's: the same path:line set, in the same order on every round. Info rows: rg with the command line toolhost runs (rg-args.ts: its printer, ignore rules and --stats, on all cores; without its sandbox) vs plain rg.`,
  async run(ctx) {
    const spec = ctx.smoke ? { files: 100, totalBytes: 4 * 2 ** 20 } : { files: 4_000, totalBytes: 200 * 2 ** 20 };
    const iterations = ctx.smoke ? 2 : 20;
    ctx.log(`generating ${spec.files} files, ${mib(spec.totalBytes).toFixed(0)} MiB`);
    const tree = await generateTree(join(ctx.tmp, 'src'), { ...spec, seed: 7 });
    const step = Math.max(1, Math.floor(tree.files.length / PLANTED));
    for (let i = 0; i < PLANTED; i++) {
      await appendFile(join(tree.root, tree.files[i * step]!), `// ${LITERAL} ${i}\nfn planted_handler(${i});\n`);
    }
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const th = new JsonClient(sup);
    try {
      ctx.log('uploading');
      await uploadDir(th, 'search', tree.root, ctx.tmp, { gzipLevel: 1 });
      const figures: Figure[] = [];
      for (const [kind, pattern, regex] of [
        ['literal', LITERAL, false],
        ['regex', REGEX, true],
      ] as const) {
        const mode = regex ? [] : ['-F'];
        // The answer, as a set of path:line, must be rg's; and its order must not change from one round to the next.
        let rgAnswer: string | null = null;
        let thOrder: string | null = null;
        const viaToolhost = async (): Promise<void> => {
          // Every match back, as rg prints them all (the default, budgets.searchResults, is 50 for a model's context).
          const r = await th.post('/search', { project_id: 'search', pattern, regex, max_results: PLANTED });
          if (r.body.matches.length !== PLANTED || r.body.truncated) throw new Error(`/search found ${r.body.matches.length} matches, expected ${PLANTED}`);
          const matches = r.body.matches as { path: string; line: number }[];
          const order = matches.map((m) => `${m.path}:${m.line}`).join('\n');
          if (thOrder === null) {
            const sorted = [...matches].sort((a, b) => comparePaths(Buffer.from(a.path), Buffer.from(b.path)) || a.line - b.line);
            if (sorted.map((m) => `${m.path}:${m.line}`).join('\n') !== order) throw new Error(`/search listed its ${kind} matches out of path order`);
            thOrder = order;
          }
          if (order !== thOrder) throw new Error(`/search listed its ${kind} matches in another order than on its first round`);
          const set = order.split('\n').sort().join('\n');
          if (rgAnswer !== null && set !== rgAnswer) throw new Error(`/search and rg found different ${kind} matches:\n${set}\n---\n${rgAnswer}`);
        };
        const plain = async (): Promise<void> => {
          const out = await rg(tree.root, ['-n', ...mode, '-e', pattern, '.'], PLANTED);
          // "./path:line:text" (the generated names hold no ":")
          const set = out
            .split('\n')
            .filter(Boolean)
            .map((l) => /^\.\/(.*?:\d+):/.exec(l)![1]!)
            .sort()
            .join('\n');
          rgAnswer ??= set;
          if (set !== rgAnswer) throw new Error(`rg found other ${kind} matches than on its first round`);
        };
        const flagged = async (): Promise<void> => {
          await rg(tree.root, toolhostArgs(pattern, regex), null);
        };
        await plain();
        const t: number[] = [];
        const p: number[] = [];
        const f: number[] = [];
        await viaToolhost();
        await flagged();
        ctx.log(`${kind}: ${iterations} rounds`);
        for (let i = 0; i < iterations; i++) {
          t.push(await time(viaToolhost));
          p.push(await time(plain));
          f.push(await time(flagged));
        }
        figures.push(
          { figure: `${kind}: median time vs rg`, unit: 'ms', value: median(t), baseline: median(p), target: { of: 'ratio', op: '<=', limit: 1.3 } },
          { figure: `${kind}: rg with toolhost's flags vs plain rg`, unit: 'ms', value: median(f), baseline: median(p) },
        );
      }
      return figures;
    } finally {
      th.close();
      await sup.stop();
    }
  },
};

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Runs rg in `cwd` and returns its output; checks the number of output lines when `lines` is given. */
function rg(cwd: string, args: string[], lines: number | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(rgPath, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    let newlines = 0;
    child.stdout.on('data', (c: Buffer) => {
      chunks.push(c);
      for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) newlines++;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`rg ${args.join(' ')} exited ${code}`));
      else if (lines !== null && newlines !== lines) reject(new Error(`rg printed ${newlines} lines, expected ${lines}`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}
