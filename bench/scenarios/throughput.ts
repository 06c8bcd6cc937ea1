/** throughput: requests per second at 64 concurrent clients, against a bare Node server measured in the same run. */
import { launchBareServer } from '../lib/bare-server.js';
import { sourceFile } from '../lib/dataset.js';
import { waitForIdle } from '../lib/health.js';
import { type Endpoint, JsonClient } from '../lib/http.js';
import { type LoadRequest, type LoadResult, load } from '../lib/load.js';
import { uploadFiles } from '../lib/project.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

const CONNECTIONS = 64;
/** Requests rotate over this many projects, as many agents would spread over many projects. */
const PROJECTS = 8;

export const throughput: Scenario = {
  name: 'throughput',
  description: `autocannon, ${CONNECTIONS} connections, each request answered before the next is sent, rotating over ${PROJECTS} projects: POST /file/read of a 4 KiB file and POST /execute "true" (default config: 8 command slots, 4 per project), vs a bare Node HTTP server answering POST /noop (and, for executes, spawning bash -c true) in the same run.`,
  async run(ctx) {
    const durationS = ctx.smoke ? 1 : 10;
    const warmS = ctx.smoke ? 0 : 2;
    const content = sourceFile(4, 4096);
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const bare = await launchBareServer();
    const th = new JsonClient(sup);
    try {
      const ids = Array.from({ length: ctx.smoke ? 2 : PROJECTS }, (_, i) => `t${i}`);
      for (const id of ids) await uploadFiles(th, id, { 'src/file4k.ts': content }, ctx.tmp);
      const reads: LoadRequest[] = ids.map((id) => ({ method: 'POST', path: '/file/read', body: { project_id: id, path: 'src/file4k.ts' } }));
      const execs: LoadRequest[] = ids.map((id) => ({ method: 'POST', path: '/execute', body: { project_id: id, command: 'true' } }));
      const noop: LoadRequest[] = ids.map((id) => ({ method: 'POST', path: '/noop', body: { project_id: id, path: 'src/file4k.ts' } }));
      const spawns: LoadRequest[] = [{ method: 'POST', path: '/spawn', body: { command: 'true' } }];
      // autocannon drops its connections when time is up, but toolhost still runs the jobs they left queued:
      // each run starts only once the supervisor is idle again, so it never inherits the last run's backlog.
      const settle = (target: Endpoint): Promise<void> => (target === sup ? waitForIdle(th) : Promise.resolve());
      const measure = async (label: string, target: Endpoint, rq: LoadRequest[]): Promise<LoadResult> => {
        if (warmS > 0) await load(target, rq, { connections: CONNECTIONS, durationS: warmS });
        await settle(target);
        ctx.log(`${label}: ${durationS} s`);
        const r = await load(target, rq, { connections: CONNECTIONS, durationS });
        await settle(target);
        return r;
      };
      const bareNoop = await measure('bare /noop', bare, noop);
      const thReads = await measure('toolhost /file/read', sup, reads);
      const bareSpawn = await measure('bare /spawn', bare, spawns);
      const thExecs = await measure('toolhost /execute', sup, execs);
      if (bareNoop.errors + bareSpawn.errors > 0) throw new Error(`the bare baseline server had ${bareNoop.errors + bareSpawn.errors} errors`);
      return [
        { figure: 'reads/s (vs bare /noop req/s)', unit: 'req/s', value: thReads.rps, baseline: bareNoop.rps, target: { of: 'ratio', op: '>=', limit: 0.3 } },
        { figure: 'read p99 latency at 64 clients', unit: 'ms', value: thReads.p99Ms, baseline: bareNoop.p99Ms },
        { figure: 'executes/s (vs bare spawn req/s)', unit: 'req/s', value: thExecs.rps, baseline: bareSpawn.rps },
        { figure: 'execute p99 latency at 64 clients', unit: 'ms', value: thExecs.p99Ms, baseline: bareSpawn.p99Ms },
        { figure: 'errors (reads + executes)', unit: 'requests', value: thReads.errors + thExecs.errors, target: { of: 'value', op: '<=', limit: 0 } },
      ];
    } finally {
      th.close();
      await Promise.all([sup.stop(), bare.stop()]);
    }
  },
};
