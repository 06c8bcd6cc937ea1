/** output-flood: a command that prints a gigabyte must not cost the supervisor memory beyond its output cap. */
import { JsonClient } from '../lib/http.js';
import { uploadFiles } from '../lib/project.js';
import { RssSampler } from '../lib/rss.js';
import { mib, timeOnce } from '../lib/stats.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

export const outputFlood: Scenario = {
  name: 'output-flood',
  description:
    "Supervisor RSS growth (its VmHWM, reset just before, minus its VmRSS before) while POST /execute runs `head -c 1G /dev/zero | tr '\\0' a` (default commands.maxOutputBytes: 1 MiB kept).",
  async run(ctx) {
    const bytes = ctx.smoke ? 16 * 2 ** 20 : 2 ** 30;
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const th = new JsonClient(sup);
    try {
      await uploadFiles(th, 'flood', { 'README.md': 'bench\n' }, ctx.tmp);
      for (let i = 0; i < 5; i++) await th.post('/execute', { project_id: 'flood', command: 'head -c 2000000 /dev/zero | tr "\\0" a' });
      await new Promise((r) => setTimeout(r, 1000));
      const before = sup.memory().rss;
      sup.resetPeak();
      const sampler = new RssSampler(sup.pid).start();
      let body: any;
      const ms = await timeOnce(async () => {
        body = (await th.post('/execute', { project_id: 'flood', command: `head -c ${bytes} /dev/zero | tr '\\0' a`, timeout_s: 600 })).body;
      });
      const peak = sup.memory().peak;
      const sampled = sampler.stop();
      if (body.exit_code !== 0) throw new Error(`the flood command exited ${body.exit_code}: ${String(body.stderr).slice(0, 300)}`);
      const omitted = Number(body.omitted_bytes.stdout);
      if (!body.truncated.stdout || omitted > bytes || omitted < bytes - 2 * 2 ** 20) {
        throw new Error(`stdout should be ${bytes} bytes cut to the cap; got truncated=${body.truncated.stdout}, omitted=${omitted}`);
      }
      return [
        {
          figure: `RSS growth while printing ${mib(bytes).toFixed(0)} MiB`,
          unit: 'MiB',
          value: mib(peak - before),
          target: { of: 'value', op: '<', limit: 50 },
          note: `RSS before ${mib(before).toFixed(0)} MiB, peak ${mib(peak).toFixed(0)} MiB (sampled max ${mib(sampled.maxRss).toFixed(0)} MiB over ${sampled.samples} samples)`,
        },
        { figure: 'output drained', unit: 'MiB/s', value: mib(bytes) / (ms / 1000) },
      ];
    } finally {
      th.close();
      await sup.stop();
    }
  },
};
