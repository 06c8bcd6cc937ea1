/** exec-overhead: the cost toolhost adds to running a trivial command. */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { launchBareServer } from '../lib/bare-server.js';
import { JsonClient } from '../lib/http.js';
import { pairPercentile, timeAlternately } from '../lib/pair.js';
import { uploadFiles } from '../lib/project.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

export const execOverhead: Scenario = {
  name: 'exec-overhead',
  description:
    'POST /execute "true", one request at a time on a keep-alive connection, vs a bare Node HTTP server that runs spawn("bash", ["-c", "true"]) per request (raw spawn + keep-alive round trip). Also the HTTP floor: GET /health vs the bare server\'s POST /noop.',
  async run(ctx) {
    const n = ctx.smoke ? 20 : 300;
    const warmup = ctx.smoke ? 5 : 30;
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    // The same without the sandbox: how much of the overhead is isolation rather than the queue and the pool.
    const plain = await launchSupervisor({ tmp: ctx.tmp, name: 'plain', config: { commands: { sandbox: 'none' } } });
    // A data dir below a folder other uids cannot pass (under /root): each launch stages the project first.
    const closed = await mkdtemp(join(ctx.tmp, 'closed-'));
    const staged = await launchSupervisor({ tmp: ctx.tmp, name: 'staged', dataDir: join(closed, 'data') });
    const bare = await launchBareServer();
    const th = new JsonClient(sup);
    const tp = new JsonClient(plain);
    const ts = new JsonClient(staged);
    const bc = new JsonClient(bare.url);
    const executeTrue = async (client: JsonClient): Promise<void> => {
      const r = await client.post('/execute', { project_id: 'exec', command: 'true' });
      if (r.body.exit_code !== 0) throw new Error(`/execute "true" exited ${r.body.exit_code}`);
    };
    const spawnTrue = async (): Promise<void> => {
      const r = await bc.post('/spawn', { command: 'true' });
      if (r.body.exit_code !== 0) throw new Error(`bare spawn exited ${r.body.exit_code}`);
    };
    try {
      await uploadFiles(th, 'exec', { 'README.md': 'bench\n' }, ctx.tmp);
      await uploadFiles(tp, 'exec', { 'README.md': 'bench\n' }, ctx.tmp);
      await uploadFiles(ts, 'exec', { 'README.md': 'bench\n' }, ctx.tmp);
      ctx.log(`${n} executes each side`);
      const exec = await timeAlternately(n, warmup, () => executeTrue(th), spawnTrue);
      const unsandboxed = await timeAlternately(n, warmup, () => executeTrue(tp), spawnTrue);
      const stagedRun = await timeAlternately(n, warmup, () => executeTrue(ts), spawnTrue);
      const floor = await timeAlternately(
        n,
        warmup,
        () => th.get('/health'),
        () => bc.post('/noop', { project_id: 'exec' }),
      );
      return [
        { figure: 'p50 latency', unit: 'ms', ...pairPercentile(exec, 50), target: { of: 'ratio', op: '<=', limit: 1.5 } },
        { figure: 'p99 latency', unit: 'ms', ...pairPercentile(exec, 99) },
        { figure: 'p50 latency with commands.sandbox "none"', unit: 'ms', ...pairPercentile(unsandboxed, 50) },
        { figure: 'p50 latency, data dir below a closed folder (staged)', unit: 'ms', ...pairPercentile(stagedRun, 50) },
        { figure: 'p50 HTTP floor (GET /health vs bare /noop)', unit: 'ms', ...pairPercentile(floor, 50) },
      ];
    } finally {
      th.close();
      tp.close();
      ts.close();
      bc.close();
      await Promise.all([sup.stop(), plain.stop(), staged.stop(), bare.stop()]);
    }
  },
};
