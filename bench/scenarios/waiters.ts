/** waiters: 10,000 concurrent long-polls (GET /jobs/:id?wait_s=...) on running jobs, and what they cost in memory. */
import { Agent, get } from 'node:http';
import { JsonClient } from '../lib/http.js';
import { uploadFiles } from '../lib/project.js';
import { RssSampler } from '../lib/rss.js';
import { mib } from '../lib/stats.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

/** Background jobs the polls wait on (one project: commands.maxPerProject is 4). */
const JOBS = 4;
/** The jobs print nothing and end once the bench writes STOP, so every poll waits until then. */
const WAIT = 'while [ ! -e STOP ]; do sleep 0.1; done';
/** Connections opened at a time while ramping up, so the listen backlog never overflows. */
const BATCH = 500;

export const waiters: Scenario = {
  name: 'waiters',
  description: `10,000 concurrent long-polls, GET /jobs/:id?wait_s=120 on one connection each, spread over ${JOBS} running background commands that print nothing; once all are connected the commands are ended. Supervisor RSS growth is its VmHWM (reset before the polls) minus its RSS before.`,
  async run(ctx) {
    const n = ctx.smoke ? 200 : 10_000;
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const th = new JsonClient(sup);
    const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
    try {
      await uploadFiles(th, 'wait', { 'README.md': 'bench\n' }, ctx.tmp);
      const ids: string[] = [];
      for (let i = 0; i < JOBS; i++) {
        ids.push(String((await th.post('/execute', { project_id: 'wait', command: WAIT, background: true, timeout_s: 600 })).body.job_id));
      }
      for (const id of ids) await waitForStatus(th, id, 'running');
      await new Promise((r) => setTimeout(r, 500));
      const before = sup.memory().rss;
      sup.resetPeak();
      const sampler = new RssSampler(sup.pid, 50).start();

      ctx.log(`opening ${n} long-polls`);
      const polls: Promise<PollOutcome>[] = [];
      for (let i = 0; i < n; i += BATCH) {
        const batch = Array.from({ length: Math.min(BATCH, n - i) }, (_, k) => longPoll(agent, `${sup.url}/jobs/${ids[(i + k) % JOBS]}?wait_s=120`, sup.token));
        await Promise.all(batch.map((p) => p.connected));
        polls.push(...batch.map((p) => p.answer));
      }
      // Let the supervisor read every request before the jobs end.
      await new Promise((r) => setTimeout(r, ctx.smoke ? 500 : 3000));
      const waiting = sup.memory().rss;
      ctx.log('ending the jobs');
      await th.post('/file/write', { project_id: 'wait', path: 'STOP', content: '' });
      const endedAt = performance.now();
      const outcomes = await Promise.all(polls);
      const answeredMs = performance.now() - endedAt;
      const peak = Math.max(sup.memory().peak, sampler.stop().maxRss);

      const errors = outcomes.filter((o) => o.status !== 200);
      const early = outcomes.filter((o) => o.status === 200 && o.jobStatus === 'running').length;
      const firstError = errors[0] ? ` (first: ${errors[0].status === 0 ? errors[0].error : `HTTP ${errors[0].status}`})` : '';
      return [
        {
          figure: `errors of ${n} long-polls`,
          unit: 'requests',
          value: errors.length,
          target: { of: 'value', op: '<=', limit: 0 },
          ...(firstError ? { note: `errors${firstError}` } : {}),
        },
        {
          figure: `RSS growth with ${n} waiting`,
          unit: 'MiB',
          value: mib(peak - before),
          target: { of: 'value', op: '<', limit: 300 },
          note: `RSS before ${mib(before).toFixed(0)} MiB, with all waiting ${mib(waiting).toFixed(0)} MiB, peak (incl. answering) ${mib(peak).toFixed(0)} MiB`,
        },
        { figure: 'all polls answered after the jobs ended', unit: 'ms', value: answeredMs },
        { figure: 'polls answered while the jobs still ran', unit: 'requests', value: early },
      ];
    } finally {
      agent.destroy();
      th.close();
      await sup.stop();
    }
  },
};

/** What one long-poll got: an HTTP status (0 for a connection error) and the job's status in the answer. */
interface PollOutcome {
  status: number;
  jobStatus?: string;
  error?: string;
}

/** Starts one GET on its own connection; `connected` settles once the socket is open (or failed). */
function longPoll(agent: Agent, url: string, token: string): { connected: Promise<void>; answer: Promise<PollOutcome> } {
  let onConnected: () => void = () => {};
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  const answer = new Promise<PollOutcome>((resolve) => {
    const req = get(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        let jobStatus: string | undefined;
        try {
          jobStatus = (JSON.parse(Buffer.concat(parts).toString('utf8')) as { status?: string }).status;
        } catch {
          // not JSON: counted by its HTTP status
        }
        resolve({ status: res.statusCode ?? 0, ...(jobStatus ? { jobStatus } : {}) });
      });
      res.on('error', (err) => resolve({ status: 0, error: err.message }));
    });
    req.on('socket', (s) => (s.connecting ? s.once('connect', onConnected) : onConnected()));
    req.on('error', (err) => {
      onConnected();
      resolve({ status: 0, error: err.message });
    });
  });
  return { connected, answer };
}

async function waitForStatus(th: JsonClient, id: string, status: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const got = (await th.get(`/jobs/${id}?wait_s=0`)).body.status as string;
    if (got === status) return;
    if (Date.now() > deadline) throw new Error(`job ${id} is ${got}, not ${status}, after 20 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
