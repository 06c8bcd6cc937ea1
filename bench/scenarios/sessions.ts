/** sessions: a short command in a persistent shell session against the same command through /execute (issue #15). */
import { JsonClient, type JsonResponse } from '../lib/http.js';
import { pairPercentile, timeAlternately } from '../lib/pair.js';
import { uploadFiles } from '../lib/project.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

const PROJECT = 'sessions';

/** Fails the scenario when a command did not run to exit code 0 (a figure of failed calls would mean nothing). */
function ran(r: JsonResponse, what: string): { stdout: string } {
  const body = r.body as { status?: string; exit_code?: number | null; stdout?: string; stderr?: string; session?: { restarted?: boolean } };
  if (body.exit_code !== 0) throw new Error(`${what} answered status ${body.status}, exit ${body.exit_code}: ${body.stderr ?? ''}`);
  if (body.session?.restarted) throw new Error(`${what}: the session's shell was restarted, so the figure would include a new shell`);
  return { stdout: body.stdout ?? '' };
}

export const sessions: Scenario = {
  name: 'sessions',
  description:
    'POST /sessions/{id}/exec "true" on one persistent shell session vs POST /execute "true" (a fresh sandboxed bash per call), one request at a time on a keep-alive connection, alternated in the same run, default config (the containment that ran is in the notes). Also a two-call sequence that carries state: `cd src`, then `pwd` in the session, vs `cd src`, then `cd src && pwd` through /execute.',
  async run(ctx) {
    const n = ctx.smoke ? 10 : 300;
    const warmup = ctx.smoke ? 3 : 30;
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const th = new JsonClient(sup);
    try {
      await uploadFiles(th, PROJECT, { 'README.md': 'bench\n', 'src/index.ts': 'export {};\n' }, ctx.tmp);
      const health = (await th.get('/health')).body as { containment?: { sandbox?: string; user?: string; network?: string } };
      const c = health.containment;
      const containment = c ? `containment: sandbox ${c.sandbox}, user ${c.user}, network ${c.network}` : 'containment: not reported by /health';
      ctx.log(containment);
      const created = (await th.post('/sessions', { project_id: PROJECT })).body as { session_id: string };
      const sessionPath = `/sessions/${created.session_id}/exec`;
      const inSession = async (command: string): Promise<{ stdout: string }> => ran(await th.post(sessionPath, { command }), `session exec "${command}"`);
      const executed = async (command: string): Promise<{ stdout: string }> =>
        ran(await th.post('/execute', { project_id: PROJECT, command }), `/execute "${command}"`);

      ctx.log(`${n} calls of "true" each side (warm-up ${warmup})`);
      const single = await timeAlternately(
        n,
        warmup,
        () => inSession('true'),
        () => executed('true'),
      );

      const seqN = ctx.smoke ? 4 : Math.ceil(n / 3);
      const seqWarmup = ctx.smoke ? 1 : 10;
      ctx.log(`${seqN} two-call sequences each side (warm-up ${seqWarmup})`);
      const sequence = await timeAlternately(
        seqN,
        seqWarmup,
        async () => {
          await inSession('cd src');
          // `cd ..` puts the shell back for the next round; a builtin, it costs the session nothing measurable.
          const { stdout } = await inSession('pwd; cd ..');
          if (!stdout.trimEnd().endsWith('/src')) throw new Error(`the session did not keep its directory: pwd printed ${JSON.stringify(stdout)}`);
        },
        async () => {
          await executed('cd src');
          const { stdout } = await executed('cd src && pwd');
          if (!stdout.trimEnd().endsWith('/src')) throw new Error(`/execute "cd src && pwd" printed ${JSON.stringify(stdout)}`);
        },
      );
      const note = `${containment}; baseline: POST /execute; below 1 means the session is cheaper`;
      return [
        {
          figure: 'p50 latency of "true" (session exec vs /execute)',
          unit: 'ms',
          ...pairPercentile(single, 50),
          // The claim: the session makes short commands cheaper than a fresh command each time.
          target: { of: 'ratio', op: '<', limit: 1 },
          note,
        },
        { figure: 'p99 latency of "true" (session exec vs /execute)', unit: 'ms', ...pairPercentile(single, 99) },
        { figure: 'p50 of `cd src` then `pwd`, two calls (session vs /execute)', unit: 'ms', ...pairPercentile(sequence, 50) },
      ];
    } finally {
      th.close();
      await sup.stop();
    }
  },
};
