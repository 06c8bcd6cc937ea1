/** patch: one 20-hunk V4A patch (POST /file/patch) against the same 20 edits made with file_edit. */
import { JsonClient } from '../lib/http.js';
import { uploadFiles } from '../lib/project.js';
import { percentile } from '../lib/stats.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

const HUNKS = 20;

/** A TypeScript file of HUNKS small functions; each change rewrites one line of one function. */
function source(): string {
  return Array.from(
    { length: HUNKS },
    (_, i) => `export function f${i}(x: number): number {\n  const a = x + ${i};\n  const b = a * 2;\n  const c = b - 1;\n  return c + ${i};\n}\n`,
  ).join('\n');
}

const before = (i: number): string => `  const a = x + ${i};`;
const after = (i: number): string => `  const a = x + ${i} + 1;`;

/** The V4A diff of the 20 changes (or of their undoing): one hunk per function, 3 context lines after. */
function diff(undo: boolean): string {
  return Array.from({ length: HUNKS }, (_, i) => {
    const [from, to] = undo ? [after(i), before(i)] : [before(i), after(i)];
    return `@@ export function f${i}(x: number): number {\n-${from}\n+${to}\n   const b = a * 2;\n   const c = b - 1;\n   return c + ${i};\n`;
  }).join('');
}

const edits = (undo: boolean): { old_str: string; new_str: string }[] =>
  Array.from({ length: HUNKS }, (_, i) => (undo ? { old_str: after(i), new_str: before(i) } : { old_str: before(i), new_str: after(i) }));

export const patch: Scenario = {
  name: 'patch',
  description: `A ${HUNKS}-hunk V4A patch of one 120-line file (one update_file operation, POST /file/patch) vs the same ${HUNKS} edits as ${HUNKS} sequential POST /file/edit calls, and vs one POST /file/edit with edits[]; each round applies the change, the next undoes it, on three copies of the file.`,
  async run(ctx) {
    const n = ctx.smoke ? 4 : 60;
    const warmup = ctx.smoke ? 2 : 10;
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const th = new JsonClient(sup);
    try {
      const text = source();
      await uploadFiles(th, 'patch', { 'src/patch.ts': text, 'src/edits.ts': text, 'src/multi.ts': text }, ctx.tmp);
      const sides = {
        patch: async (undo: boolean) => {
          await th.post('/file/patch', { project_id: 'patch', operations: [{ type: 'update_file', path: 'src/patch.ts', diff: diff(undo) }] });
        },
        calls: async (undo: boolean) => {
          for (const e of edits(undo)) await th.post('/file/edit', { project_id: 'patch', path: 'src/edits.ts', ...e });
        },
        multi: async (undo: boolean) => {
          await th.post('/file/edit', { project_id: 'patch', path: 'src/multi.ts', edits: edits(undo) });
        },
      };
      const samples: Record<keyof typeof sides, number[]> = { patch: [], calls: [], multi: [] };
      ctx.log(`${n} rounds of each (warm-up ${warmup})`);
      for (let i = 0; i < warmup + n; i++) {
        const undo = i % 2 === 1;
        // Rotate which side goes first, so none always follows another's leftovers (GC, log writes).
        const order = (['patch', 'calls', 'multi'] as const).map((_, k, all) => all[(k + i) % all.length] as keyof typeof sides);
        for (const side of order) {
          const t0 = performance.now();
          await sides[side](undo);
          if (i >= warmup) samples[side].push(performance.now() - t0);
        }
      }
      const result = (await th.post('/file/read', { project_id: 'patch', path: 'src/patch.ts' })).body as { content: string };
      if (result.content !== text) throw new Error('after an even number of rounds the patched file is not back to its original content');
      return [
        {
          figure: `${HUNKS} changes, p50 latency (baseline: ${HUNKS} file_edit calls)`,
          unit: 'ms',
          value: percentile(samples.patch, 50),
          baseline: percentile(samples.calls, 50),
        },
        {
          figure: `${HUNKS} changes, p50 latency (baseline: 1 file_edit with edits[])`,
          unit: 'ms',
          value: percentile(samples.patch, 50),
          baseline: percentile(samples.multi, 50),
        },
        {
          figure: `${HUNKS} changes, p99 latency (baseline: ${HUNKS} file_edit calls)`,
          unit: 'ms',
          value: percentile(samples.patch, 99),
          baseline: percentile(samples.calls, 99),
        },
      ];
    } finally {
      th.close();
      await sup.stop();
    }
  },
};
