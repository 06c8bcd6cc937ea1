/**
 * The queue pump: takes jobs off the JobQueue and runs each on its lane's pool.
 *
 * A job's way through the pump:
 *   received -> project ready (extracted on first use) -> file lock (write/edit of one file run one at a time)
 *   -> lane slot (commands: global and per-project caps, round-robin across projects; files: their own slots)
 *   -> begun (a write, edit or command marks the working copy dirty, on disk, first) -> running on the pool -> completed (the outcome goes back through the queue to the waiting request).
 * Waiting for a project or a lock holds no lane slot, so a slow extraction never starves other projects.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import { jobToolOf } from '../handlers/index.js';
import { ToolhostError, toToolhostError } from '../lib/errors.js';
import { FairSemaphore } from '../lib/fair-semaphore.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import { KeyedMutex } from '../lib/keyed-mutex.js';
import type { JobQueue } from '../lib/queue/job-queue.js';
import type { JobTool, Lane } from '../lib/tool.js';
import type { ActiveJobs } from './active-jobs.js';
import type { CommandJobs, CommandRequest } from './command-jobs.js';
import type { Logger } from './logger.js';
import { FILE_LANE_PER_THREAD, type Pools } from './pools.js';
import { runProjectOp } from './project-ops.js';
import type { ProjectCache } from './projects.js';
import type { Sessions } from './sessions.js';

/** Dependencies of the pump. */
export interface PumpOptions {
  config: Config;
  queue: JobQueue;
  pools: Pools;
  projects: ProjectCache;
  /** The registry of command jobs (status, output sizes, stdin, cancel). */
  commands: CommandJobs;
  /** The persistent shell sessions, which do the session tools' jobs. */
  sessions: Sessions;
  /** Jobs of each project received and not completed; the pump counts them, the cache reads them. */
  active: ActiveJobs;
  log: Logger;
  /**
   * Most jobs received and not finished. The embedded queue hands every job over at once (Infinity); a shared
   * queue must not be drained by one worker while others idle, so a worker takes only what it can soon run.
   */
  maxInflight?: number;
}

/** Most jobs taken off the queue in one receive. */
const RECEIVE_BATCH = 64;

/** The pool thread running a job died (out of memory, a native crash, process.exit in a handler). */
class ThreadCrash extends ToolhostError {
  constructor(cause: unknown) {
    super('internal', `the worker thread running the job died: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/** Events of the pump, for metrics and observers. */
export interface PumpEvents {
  /** A job was taken off the queue. */
  'job:received': [job: Job];
  /** A job got its lane slot and starts on the pool. */
  'job:start': [job: Job];
  /** A job ended (any outcome); `durationMs` counts from receipt. */
  'job:end': [job: Job, outcome: JobOutcome, durationMs: number];
}

/**
 * The lock of a write or edit: the file's real path, so every name of one file ("a.txt", "./a.txt", "a//b",
 * "dir/../a.txt", a symlink to it) shares one lock. A file not there yet keys by the real path of its deepest
 * existing folder plus the rest. realpath is the asynchronous one: the supervisor's event loop does no sync I/O.
 * A command may rename things meanwhile; the key is then only as good as a lexical one, which is all a lock
 * between the tools and a hostile command could promise anyway (the handler confines the path on its own).
 */
async function fileLockKey(root: string, userPath: string): Promise<string> {
  const lexical = resolve(root, userPath);
  if (userPath.includes('\0')) return lexical;
  const rest: string[] = [];
  for (let probe = lexical; ; ) {
    try {
      return join(await realpath(probe), ...rest);
    } catch {
      const up = dirname(probe);
      if (up === probe) return lexical;
      rest.unshift(basename(probe));
      probe = up;
    }
  }
}

/** Runs queued jobs on the pools. An actor: start(), close({ force }). */
export class QueuePump extends EventEmitter<PumpEvents> {
  readonly #o: PumpOptions;
  readonly #lanes: Record<Lane, FairSemaphore>;
  readonly #fileLocks = new KeyedMutex();
  /** Jobs received and not completed. */
  readonly #inflight = new Map<string, { job: Job; done: Promise<void> }>();
  readonly #runningByType = new Map<string, number>();
  /** Stops taking jobs off the queue. */
  readonly #intake = new AbortController();
  /** Fails every wait for a slot (forced shutdown). */
  readonly #stop = new AbortController();
  #loop: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(o: PumpOptions) {
    super();
    this.#o = o;
    // Every job waiting for a lane slot listens on this signal; thousands may wait.
    setMaxListeners(0, this.#stop.signal);
    const { commands, pool } = o.config;
    this.#lanes = {
      commands: new FairSemaphore(commands.maxConcurrent, commands.maxPerProject),
      files: new FairSemaphore(pool.maxThreads * FILE_LANE_PER_THREAD),
    };
  }

  start(): void {
    this.#loop ??= this.#receiveLoop();
  }

  /** Received jobs still waiting for a project, a lock or a slot. */
  waiting(): number {
    let running = 0;
    for (const n of this.#runningByType.values()) running += n;
    return this.#inflight.size - running;
  }

  /** Running jobs in all and by type. */
  running(): { running: number; by_type: Record<string, number> } {
    let running = 0;
    const byType: Record<string, number> = {};
    for (const [type, n] of this.#runningByType) {
      running += n;
      if (n > 0) byType[type] = n;
    }
    return { running, by_type: byType };
  }

  /**
   * Applies a reloaded configuration: the lanes take its sizes (commands.maxConcurrent and maxPerProject, the file
   * lane from pool.maxThreads) and later reads (shutdown.graceS) see it. Jobs holding a slot keep it; when a lane
   * shrinks, waiting jobs start as slots are given back.
   */
  resize(config: Config): void {
    this.#o.config = config;
    this.#lanes.commands.resize(config.commands.maxConcurrent, config.commands.maxPerProject);
    this.#lanes.files.resize(config.pool.maxThreads * FILE_LANE_PER_THREAD);
  }

  async #receiveLoop(): Promise<void> {
    const signal = this.#intake.signal;
    const max = this.#o.maxInflight ?? Number.POSITIVE_INFINITY;
    while (!signal.aborted) {
      if (this.#inflight.size >= max) {
        await this.#oneDone(signal);
        continue;
      }
      let jobs: Job[];
      try {
        jobs = await this.#o.queue.receive(Math.min(RECEIVE_BATCH, max - this.#inflight.size), signal);
      } catch (err) {
        this.#o.log.error({ err: toToolhostError(err).message }, 'queue receive failed; retrying');
        await new Promise((r) => setTimeout(r, 500 + Math.random() * 500));
        continue;
      }
      for (const job of jobs) this.#track(job);
    }
  }

  /** Resolves when one in-flight job is done or `signal` aborts; the abort listener goes with it. */
  async #oneDone(signal: AbortSignal): Promise<void> {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<void>((resolve) => {
      onAbort = () => resolve();
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([...[...this.#inflight.values()].map((f) => f.done), aborted]);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  #track(job: Job): void {
    const tool = jobToolOf(job.type);
    // A shared queue's message is input like any other: the payload must be a request the tool accepts before
    // anything reads it (the command registry included).
    const valid = tool?.input.safeParse(job.payload).success ?? false;
    // A command from another process's API: this worker's registry keeps its status, output and stdin.
    if (valid && tool?.job.lane === 'commands' && !this.#o.commands.has(job.id)) this.#o.commands.create(job, job.payload as unknown as CommandRequest);
    this.emit('job:received', job);
    this.#o.active.add(job.projectId);
    const done = this.#process(job, tool, valid).finally(() => {
      this.#inflight.delete(job.id);
      this.#o.active.remove(job.projectId);
    });
    this.#inflight.set(job.id, { job, done });
  }

  async #process(job: Job, tool: JobTool | undefined, valid: boolean): Promise<void> {
    const started = Date.now();
    let outcome: JobOutcome;
    let crashed: ThreadCrash | undefined;
    try {
      if (!tool) throw new ToolhostError('internal', `no tool runs jobs of type "${job.type}" (a queue shared with another version?)`);
      if (!valid) throw new ToolhostError('bad_request', `the job's payload is not a valid ${tool.name} request`);
      outcome = await this.#run(job, tool);
    } catch (err) {
      if (err instanceof ThreadCrash) crashed = err;
      outcome = { ok: false, error: toToolhostError(err).toJSON() };
    }
    if (crashed && this.#o.queue.release) {
      // Its thread died under it: the queue delivers it again, or to the poison queue after too many tries.
      if (tool?.job.lane === 'commands') this.#o.commands.drop(job.id);
      this.emit('job:end', job, outcome, Date.now() - started);
      this.#o.log.error(
        { job_id: job.id, project_id: job.projectId, type: job.type, err: crashed.message },
        'job crashed its thread; handed back to the queue',
      );
      await this.#o.queue
        .release(job, crashed.message)
        .catch((err: unknown) => this.#o.log.error({ job_id: job.id, err: toToolhostError(err).message }, 'could not hand a crashed job back'));
      return;
    }
    if (tool?.job.lane === 'commands') {
      // A command's answer is its record's final view (see CommandJobs).
      const view = this.#o.commands.finished(job.id, outcome);
      if (outcome.ok)
        outcome = view
          ? { ok: true, value: view }
          : { ok: false, error: new ToolhostError('internal', `command job ${job.id} ended without a record`).toJSON() };
    }
    const durationMs = Date.now() - started;
    this.emit('job:end', job, outcome, durationMs);
    this.#o.log.info(
      {
        job_id: job.id,
        request_id: job.requestId,
        project_id: job.projectId,
        type: job.type,
        outcome: outcome.ok ? 'ok' : outcome.error.code,
        duration_ms: durationMs,
      },
      'job',
    );
    try {
      await this.#o.queue.complete(job, outcome);
    } catch (err) {
      this.#o.log.error({ job_id: job.id, err: toToolhostError(err).message }, 'could not report job outcome');
    }
  }

  async #run(job: Job, tool: JobTool): Promise<JobOutcome> {
    const op = 'session' in tool.job ? tool.job.session : undefined;
    // Listing, restarting or ending sessions needs no working copy and no slot: the registry answers.
    if (op === 'list' || op === 'restart' || op === 'end') return this.#o.sessions.run(op, job, '');
    // Checkpoints, restores and forks: the cache does them, materializing the copy itself where it needs one.
    if ('projectOp' in tool.job) return runProjectOp(this.#o.projects, tool.job.projectOp, job);
    const root = await this.#o.projects.ensure(job.projectId);
    const lockPath = tool.job.lockPath?.(job.payload);
    const unlock = lockPath === undefined ? undefined : await this.#fileLocks.lock(await fileLockKey(root, lockPath));
    try {
      const { lane } = tool.job;
      const release = await this.#lanes[lane].acquire(job.projectId, this.#stop.signal);
      if (this.#o.commands.cancelledBeforeStart(job.id)) {
        release();
        return { ok: false, error: new ToolhostError('cancelled', 'the command was cancelled before it started').toJSON() };
      }
      let end: (outcome?: JobOutcome) => void;
      try {
        end = await this.#o.projects.begin(job.projectId, tool.job.mutates);
      } catch (err) {
        release();
        throw err;
      }
      // Again after the wait above: a cancel (or a graceful stop ending background commands) that came meanwhile
      // found no channel to the command and ended its record, so the command must not start now.
      if (this.#o.commands.cancelledBeforeStart(job.id)) {
        end();
        release();
        return { ok: false, error: new ToolhostError('cancelled', 'the command was cancelled before it started').toJSON() };
      }
      this.#runningByType.set(job.type, (this.#runningByType.get(job.type) ?? 0) + 1);
      this.emit('job:start', job);
      const channel = lane === 'commands' ? new MessageChannel() : undefined;
      if (channel) this.#o.commands.started(job.id, channel.port1);
      let outcome: JobOutcome | undefined;
      try {
        try {
          outcome = op
            ? await this.#o.sessions.run(op, job, root, channel?.port2)
            : await this.#o.pools.run(lane, { kind: 'job', job, root, cancelPort: channel?.port2 }, channel?.port2);
          return outcome;
        } catch (err) {
          // The worker file turns every handler error into an outcome: a rejection means the thread itself died.
          throw new ThreadCrash(err);
        }
      } finally {
        channel?.port1.close();
        this.#runningByType.set(job.type, this.#runningByType.get(job.type)! - 1);
        end(outcome);
        release();
        if (tool.job.mutates && this.#o.config.checkpoints.auto) this.#autoCheckpoint(job);
      }
    } finally {
      unlock?.();
    }
  }

  /** With `checkpoints.auto`: a checkpoint after a change, taken beside the answer (it waits for the project's lock). */
  #autoCheckpoint(job: Job): void {
    this.#o.projects.autoCheckpoint(job.projectId).catch((err: unknown) => {
      this.#o.log.warn({ project_id: job.projectId, job_id: job.id, err: toToolhostError(err).message }, 'automatic checkpoint failed');
    });
  }

  /**
   * Stops taking jobs, ends background commands at once (they end `interrupted`: a server never finishes on its
   * own, so waiting for one would only wait out the grace) and lets the other in-flight jobs finish for up to
   * `shutdown.graceS` (none with `force`); then jobs still waiting for a slot fail with `shutting_down` and running
   * commands are cancelled (their trees killed). A second call returns the first call's promise.
   */
  close(opts: { force?: boolean } = {}): Promise<void> {
    this.#closing ??= this.#close(opts.force ?? false);
    if (opts.force) this.#forceStop();
    return this.#closing;
  }

  #forceStop(): void {
    if (!this.#stop.signal.aborted) {
      this.#stop.abort(new ToolhostError('shutting_down', 'the server is shutting down; the job did not start, retry later'));
    }
    this.#o.commands.cancelRunning();
  }

  async #close(force: boolean): Promise<void> {
    this.#intake.abort();
    await this.#loop;
    this.#o.commands.interruptBackground();
    const drained = Promise.allSettled([...this.#inflight.values()].map((f) => f.done));
    if (!force) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((r) => (timer = setTimeout(r, this.#o.config.shutdown.graceS * 1000)));
      await Promise.race([drained, grace]);
      clearTimeout(timer);
    }
    this.#forceStop();
    await Promise.allSettled([...this.#inflight.values()].map((f) => f.done));
  }
}
