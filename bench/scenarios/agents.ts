/**
 * agents: N simulated coding agents, each on its own project, replay a recorded session (bench/lib/agent-mix.ts)
 * against one supervisor; how many can work at once before their short calls slow down, and what toolhost's CPU
 * per short call is beside the same work done directly (bench/lib/agent-direct.ts).
 */

import { loadavg } from 'node:os';
import { join } from 'node:path';
import { type CpuByKind, type CpuTimes, cpuOf, cpuSince, totalUse } from '../lib/agent-cpu.js';
import { runDirect } from '../lib/agent-direct.js';
import { agentMix, isShort, type MixStep, shortByKind, writeAgentProject } from '../lib/agent-mix.js';
import { buildArchive } from '../lib/dataset.js';
import { waitForIdle } from '../lib/health.js';
import { JsonClient, type JsonResponse } from '../lib/http.js';
import { percentile } from '../lib/stats.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Figure, Scenario } from '../lib/types.js';

/** Agents per step; the sweep stops at the first step that misses, or at the last. */
const STEPS = { full: [1, 2, 4, 8, 16, 32], smoke: [1, 2] };
/**
 * Calls each agent makes in a step: whole rounds of the session, at least ROUNDS_PER_STEP rounds' worth of short
 * calls in all (the N = 1 p99, every other step's reference, rests on 132), and at least 2 rounds per agent. A
 * count rather than a duration, so a slow step still gets enough samples for its p99. Smoke: 8 calls per agent.
 */
function callsPerAgent(n: number, mixLength: number, smoke: boolean): number {
  return smoke ? 8 : Math.max(2, Math.ceil(ROUNDS_PER_STEP / n)) * mixLength;
}
const ROUNDS_PER_STEP = 6;
/** A step whose short-call p99 is more than this many times the N = 1 p99, or that had an error, is a miss. */
const SLOWDOWN = 3;
/** Rounds of short calls (no test run) one agent makes while the supervisor's CPU is measured, and the baseline's. */
const CPU_ROUNDS = { full: 6, smoke: 1 };
/** Milliseconds an agent waits between an answer and its next call (a model's turn takes seconds; this is the worst case). */
const THINK_MS = 0;
/** The sweep starts no new step after this many seconds, so the scenario stays within the bench's budget. */
const SWEEP_BUDGET_S = 90;

/** One simulated agent: its own connection and project, and where it is in the session (kept across steps). */
class Agent {
  #pos: number;
  /** @param start where in the session the agent begins: a position where its project is as uploaded. */
  constructor(
    readonly client: JsonClient,
    readonly project: string,
    readonly mix: readonly MixStep[],
    start = 0,
  ) {
    this.#pos = start;
  }

  /** Makes the session's next call; its duration in ms, or the reason it failed. */
  async next(): Promise<{ step: MixStep; ms: number; error?: string }> {
    const step = this.mix[this.#pos]!;
    this.#pos = (this.#pos + 1) % this.mix.length;
    const t0 = performance.now();
    try {
      const why = check(step, await call(this.client, this.project, step));
      return { step, ms: performance.now() - t0, ...(why ? { error: why } : {}) };
    } catch (err) {
      return { step, ms: performance.now() - t0, error: err instanceof Error ? err.message : String(err) };
    }
  }
}

function call(client: JsonClient, project_id: string, s: MixStep): Promise<JsonResponse> {
  switch (s.kind) {
    case 'list':
      return client.post('/file/list', { project_id, path: s.path, depth: s.depth });
    case 'glob':
      return client.post('/file/glob', { project_id, pattern: s.pattern });
    case 'search':
      return client.post('/search', { project_id, pattern: s.pattern, regex: s.regex });
    case 'read':
      return client.post('/file/read', { project_id, path: s.path, start_line: s.start_line, end_line: s.end_line });
    case 'edit':
      return client.post('/file/edit', { project_id, path: s.path, old_str: s.old_str, new_str: s.new_str });
    case 'exec':
    case 'test':
      return client.post('/execute', { project_id, command: s.command });
  }
}

/** Why an answer is not what the agent needed, or undefined when it is. */
function check(s: MixStep, r: JsonResponse): string | undefined {
  const b = r.body;
  switch (s.kind) {
    case 'list':
      return Array.isArray(b.entries) && b.entries.length > 0 ? undefined : 'empty listing';
    case 'glob':
      return b.total > 0 ? undefined : `glob ${s.pattern} matched nothing`;
    case 'search':
      return b.total_matches > 0 ? undefined : `search ${s.pattern} found nothing`;
    case 'read':
      return typeof b.content === 'string' && b.content.length > 0 ? undefined : `read ${s.path}: no content`;
    case 'edit':
      return b.replacements === 1 ? undefined : `edit ${s.path}: ${b.replacements} replacements`;
    case 'exec':
    case 'test':
      return b.status === 'completed' && b.exit_code === 0 ? undefined : `${s.command}: ${b.status}, exit ${b.exit_code}`;
  }
}

/** What one step measured. */
interface StepResult {
  n: number;
  short: number[];
  /** Short-call durations by kind of call, for the log. */
  byKind: Map<string, number[]>;
  tests: number;
  errors: number;
  firstError?: string;
  seconds: number;
  /** Cores the supervisor used during the step: itself, and the commands and rg it reaped (test runs included). */
  cores: CpuTimes;
  /** The machine's 1-minute load average at the step's end (other work on the machine shows here). */
  load: number;
}

/** Lets each of `agents` make its next `calls` calls, each once the last is answered; then waits for an idle supervisor. */
async function runStep(agents: readonly Agent[], calls: number, th: JsonClient, pid: number): Promise<StepResult> {
  const r: StepResult = { n: agents.length, short: [], byKind: new Map(), tests: 0, errors: 0, seconds: 0, cores: { self: 0, children: 0 }, load: 0 };
  const cpuBefore = cpuOf(pid);
  const t0 = performance.now();
  await Promise.all(
    agents.map(async (a) => {
      for (let i = 0; i < calls; i++) {
        const c = await a.next();
        if (c.error) {
          r.errors++;
          r.firstError ??= c.error;
        } else if (isShort(c.step)) {
          r.short.push(c.ms);
          const kind = r.byKind.get(c.step.kind) ?? [];
          kind.push(c.ms);
          r.byKind.set(c.step.kind, kind);
        } else r.tests++;
        if (THINK_MS > 0) await new Promise((res) => setTimeout(res, THINK_MS));
      }
    }),
  );
  r.seconds = (performance.now() - t0) / 1000;
  const used = cpuSince(cpuBefore, cpuOf(pid));
  r.cores = { self: used.self / r.seconds, children: used.children / r.seconds };
  r.load = loadavg()[0]!;
  await waitForIdle(th);
  return r;
}

export const agents: Scenario = {
  name: 'agents',
  description: `N simulated agents (N = ${STEPS.full.join(', ')}), each on its own 200-file project with its own connection, replay a recorded session in a loop: 22 short calls (list, glob, search, read, edit, ls/grep/wc) and a 2.5 s test run (1 s of CPU, then waiting) per round, each call sent once the last is answered, no think time; ${ROUNDS_PER_STEP} rounds at N = 1, as many rounds in all (at least 2 per agent) per further step, each step started once the last has drained (default config: 8 command slots, 4 per project). Largest N whose short-call p99 stays within ${SLOWDOWN}x of N = 1 with no error; and CPU per short call of the supervisor vs a plain Node process doing the same calls directly (fs, rg, bash).`,
  async run(ctx) {
    const mode = ctx.smoke ? 'smoke' : 'full';
    const began = performance.now();
    const at = (): string => `${((performance.now() - began) / 1000).toFixed(1)} s`;
    const project = await writeAgentProject(join(ctx.tmp, 'project'));
    const mix = agentMix(project);
    const archive = join(ctx.tmp, 'project.tar.gz');
    await buildArchive(project.root, archive, 'tar.gz');
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    ctx.log(`project written and supervisor up at ${at()}`);
    const th = new JsonClient(sup);
    const pool: Agent[] = [];
    try {
      const starts = cleanStarts(mix);
      const agentsFor = async (n: number): Promise<Agent[]> => {
        while (pool.length < n) {
          const id = `agent-${pool.length}`;
          await th.putFile(`/projects/${id}`, archive);
          // Agents start at different points of the session, so their test runs do not all fall together.
          pool.push(new Agent(new JsonClient(sup), id, mix, starts[(pool.length * 5) % starts.length]));
        }
        return pool.slice(0, n);
      };

      // CPU per short call: one agent, one kind of call at a time, whole rounds (its project ends as it began).
      const [first] = await agentsFor(1);
      const rounds = CPU_ROUNDS[mode];
      const used: CpuByKind = {};
      for (const [kind, steps] of shortByKind(mix)) {
        const agent = new Agent(first!.client, first!.project, steps);
        const replay = async (calls: number): Promise<void> => {
          for (let i = 0; i < calls; i++) {
            const c = await agent.next();
            if (c.error) throw new Error(`CPU phase: ${c.error}`);
          }
        };
        if (rounds > 1) await replay(steps.length); // a warm-up round, skipped in smoke mode
        await settle();
        const before = cpuOf(sup.pid);
        await replay(rounds * steps.length);
        await settle();
        used[kind] = { calls: rounds * steps.length, ...cpuSince(before, cpuOf(sup.pid)) };
      }
      ctx.log(`toolhost CPU phase done at ${at()}`);
      const base = await runDirect(join(ctx.tmp, 'project'), mix, join(ctx.tmp, 'mix.json'), rounds);
      ctx.log(`direct done at ${at()}; CPU ms per call (supervisor + children | direct + children): ${describeCpu(used, base)}`);

      // The sweep.
      const results: StepResult[] = [];
      const sweepFrom = performance.now();
      let cut: number | undefined;
      for (const n of STEPS[mode]) {
        if ((performance.now() - sweepFrom) / 1000 > SWEEP_BUDGET_S) {
          ctx.log(`sweep budget of ${SWEEP_BUDGET_S} s spent; no step at N = ${n}`);
          cut = n;
          break;
        }
        const r = await runStep(await agentsFor(n), callsPerAgent(n, mix.length, ctx.smoke), th, sup.pid);
        results.push(r);
        const ref = percentile(results[0]!.short, 99);
        ctx.log(
          `${at()}: N = ${n}: ${r.short.length} short calls, ${r.tests} test runs in ${r.seconds.toFixed(1)} s, p50 ${percentile(r.short, 50).toFixed(1)} ms, p99 ${percentile(r.short, 99).toFixed(1)} ms, ${r.errors} errors${r.firstError ? ` (${r.firstError})` : ''}; ${describeCores(r)}; p50/p99 ms by kind: ${describeKinds(r)}`,
        );
        if (missed(r, ref)) break;
      }
      return figures(results, used, base, cut);
    } finally {
      for (const a of pool) a.client.close();
      th.close();
      await sup.stop();
    }
  },
};

/** Positions of the session where the project is as uploaded: before its first edit or after its last. */
function cleanStarts(mix: readonly MixStep[]): number[] {
  const edits = mix.flatMap((s, i) => (s.kind === 'edit' ? [i] : []));
  return mix.map((_, i) => i).filter((i) => i <= edits[0]! || i > edits.at(-1)!);
}

/** Lets the supervisor reap what the last call left and go quiet, so a CPU reading holds the whole of that call. */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));

function missed(r: StepResult, ref: number): boolean {
  return r.errors > 0 || r.short.length === 0 || percentile(r.short, 99) > SLOWDOWN * ref;
}

/** Cores the supervisor and its children used, and the machine's load. */
function describeCores(r: StepResult): string {
  return `supervisor ${r.cores.self.toFixed(2)} cores, its children ${r.cores.children.toFixed(2)}, load ${r.load.toFixed(1)}`;
}

/** p50/p99 by kind of call, e.g. "read 2/9 exec 40/210", for the log. */
function describeKinds(r: StepResult): string {
  return [...r.byKind].map(([kind, ms]) => `${kind} ${percentile(ms, 50).toFixed(0)}/${percentile(ms, 99).toFixed(0)}`).join(' ');
}

/** CPU ms per call by kind, "read 1.2+0.0 | 0.3+0.0, ...", for the log and a note. */
function describeCpu(used: CpuByKind, base: CpuByKind): string {
  const ms = (s: number, calls: number): string => ((s * 1000) / calls).toFixed(1);
  return Object.entries(used)
    .map(([kind, u]) => {
      const b = base[kind]!;
      return `${kind} ${ms(u.self, u.calls)}+${ms(u.children, u.calls)} | ${ms(b.self, b.calls)}+${ms(b.children, b.calls)}`;
    })
    .join(', ');
}

/** @param cut the N the sweep did not reach because its time budget was spent. */
function figures(results: readonly StepResult[], used: CpuByKind, base: CpuByKind, cut: number | undefined): Figure[] {
  const cpu = { used: totalUse(used), base: totalUse(base) };
  const ref = percentile(results[0]!.short, 99);
  const last = results.at(-1)!;
  const firstMiss = results.findIndex((r) => missed(r, ref));
  const largest = firstMiss < 0 ? last.n : firstMiss === 0 ? 0 : results[firstMiss - 1]!.n;
  const stopped = missed(last, ref)
    ? `N = ${last.n} missed (p99 ${percentile(last.short, 99).toFixed(1)} ms, ${last.errors} errors${last.firstError ? `: ${last.firstError}` : ''})`
    : `no step missed up to N = ${last.n}${cut === undefined ? '' : ` (the sweep's ${SWEEP_BUDGET_S} s were spent before N = ${cut}: a lower bound)`}`;
  const perCall = (s: number, calls: number): number => (s * 1000) / calls;
  const out: Figure[] = [
    {
      figure: `largest N with short-call p99 <= ${SLOWDOWN}x N=1, no errors`,
      unit: 'agents',
      value: largest,
      note: `${stopped}. Short calls are every call but the test run; agents send each call once the last is answered, with no think time, so one simulated agent is a busy real one.`,
    },
  ];
  for (const r of results) {
    out.push({
      figure: `short-call p99 at N=${r.n} (vs N=1)`,
      unit: 'ms',
      value: percentile(r.short, 99),
      baseline: ref,
      note: `${r.short.length} short calls, ${r.tests} test runs, ${r.errors} errors in ${r.seconds.toFixed(0)} s; p50 ${percentile(r.short, 50).toFixed(1)} ms; ${describeCores(r)}`,
    });
  }
  out.push(
    {
      figure: 'CPU per short call incl. child processes (vs direct)',
      unit: 'ms',
      value: perCall(cpu.used.self + cpu.used.children, cpu.used.calls),
      baseline: perCall(cpu.base.self + cpu.base.children, cpu.base.calls),
      note: `${cpu.used.calls} short calls by one agent, one kind at a time, no test runs. toolhost: the supervisor process (every thread) plus the processes it started and reaped (sandbox launcher, bwrap, bash and its commands, rg); direct: a Node process doing the same calls with fs, rg and bash -c, plus its children. The commands' own work (ls, grep, wc) is on both sides. ms per call by kind, self+children, toolhost | direct: ${describeCpu(used, base)}.`,
    },
    {
      figure: 'CPU per short call, the process alone (vs direct)',
      unit: 'ms',
      value: perCall(cpu.used.self, cpu.used.calls),
      baseline: perCall(cpu.base.self, cpu.base.calls),
      note: 'utime + stime of the supervisor (HTTP, validation, pool threads, model text, spawning) vs of the direct Node process, children excluded.',
    },
  );
  return out;
}
