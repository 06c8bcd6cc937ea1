/** isolation: file reads stay fast while every command slot is busy and the CPU is saturated. */
import { sourceFile } from '../lib/dataset.js';
import { waitForRunningCommands } from '../lib/health.js';
import { JsonClient } from '../lib/http.js';
import { uploadFiles } from '../lib/project.js';
import { percentile, timeCalls } from '../lib/stats.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

/** Command slots of the bench supervisor (commands.maxConcurrent). */
const SLOTS = 4;
/** Commands wait for this file, which the bench writes through /file/write when the measurement is over. */
const WAIT = 'while [ ! -e STOP ]; do sleep 0.1; done';
/** A pure CPU spinner in the background, killed once STOP appears. */
const SPIN = `bash -c 'while :; do :; done' & spin=$!; ${WAIT}; kill $spin`;

export const isolation: Scenario = {
  name: 'isolation',
  description: `POST /file/read p99 of a 4 KiB file when idle vs while 2 CPU-bound commands and ${4 * SLOTS} sleeping commands are submitted to one project (commands.maxConcurrent = ${SLOTS}: all slots busy, the rest queued). Reads go one at a time.`,
  async run(ctx) {
    const n = ctx.smoke ? 20 : 300;
    const warmup = ctx.smoke ? 5 : 30;
    const content = sourceFile(3, 4096);
    const sup = await launchSupervisor({ tmp: ctx.tmp, config: { commands: { maxConcurrent: SLOTS, maxPerProject: SLOTS } } });
    const th = new JsonClient(sup, 64);
    try {
      await uploadFiles(th, 'iso', { 'src/file4k.ts': content }, ctx.tmp);
      let failed = 0;
      const read = async (): Promise<void> => {
        try {
          const r = await th.post('/file/read', { project_id: 'iso', path: 'src/file4k.ts' });
          if (r.body.content !== content) throw new Error('wrong content');
        } catch {
          failed++;
        }
      };
      const idle = await timeCalls(n, warmup, read);

      // The spinners go first, so they hold slots; the sleepers fill the rest and queue behind.
      const commands = [SPIN, SPIN, ...Array.from({ length: 4 * SLOTS }, () => WAIT)].map((command) =>
        th.post('/execute', { project_id: 'iso', command, timeout_s: 300 }),
      );
      await waitForRunningCommands(th, SLOTS);
      const loadedFrom = Date.now();
      const loaded = await timeCalls(n, 5, read);
      const loadedMs = Date.now() - loadedFrom;
      await th.post('/file/write', { project_id: 'iso', path: 'STOP', content: '' });
      const done = await Promise.all(commands);
      const spinMs = Math.min(...done.slice(0, 2).map((r) => Number(r.body.duration_ms)));
      if (spinMs < loadedMs) throw new Error(`a CPU-bound command ran ${spinMs} ms, less than the ${loadedMs} ms of loaded reads`);
      return [
        {
          figure: 'p99 read latency (loaded vs idle)',
          unit: 'ms',
          value: percentile(loaded, 99),
          baseline: percentile(idle, 99),
          target: { of: 'ratio', op: '<=', limit: 1.5 },
        },
        { figure: 'p50 read latency (loaded vs idle)', unit: 'ms', value: percentile(loaded, 50), baseline: percentile(idle, 50) },
        { figure: 'reads not answered (idle + loaded)', unit: 'reads', value: failed, target: { of: 'value', op: '<=', limit: 0 } },
      ];
    } finally {
      th.close();
      await sup.stop();
    }
  },
};
