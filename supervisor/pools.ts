/**
 * The two Piscina pools, one per lane. Commands run on their own threads (each thread hosts several commands,
 * which mostly wait on their child process), so a file read, list or search never shares a thread or a slot with
 * a command: short jobs cannot wait behind long ones, by construction.
 */

import type { MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Config } from '../config/schema.js';
import type { PoolTask, PoolWorkerData, SessionTask } from '../handlers/protocol.js';
import type { JobOutcome } from '../lib/jobs.js';
import type { Lane } from '../lib/tool.js';

// Threads load a CommonJS entry that imports the ESM handler (handlers/worker-entry.cts says why). Under tsx (tests)
// the supervisor runs from .ts sources and threads load the .cts entry; built code runs from dist/ with .cjs.
// Worker threads inherit the parent's --import=tsx.
const WORKER_FILE = new URL(`../handlers/worker-entry${import.meta.url.endsWith('.ts') ? '.cts' : '.cjs'}`, import.meta.url).href;

type Pool = Piscina<PoolTask, JobOutcome>;

/** Both pools, sized from the configuration. */
export class Pools {
  #pools: Record<Lane, Pool>;
  /** Pools replaced by {@link Pools.reconfigure}, finishing what they run; settles when each has closed. */
  readonly #retiring = new Map<Pool, { lane: Lane; closed: Promise<void> }>();
  readonly #busy: Record<Lane, number> = { files: 0, commands: 0 };

  constructor(config: Config) {
    this.#pools = buildPools(config);
  }

  /**
   * Applies a reloaded configuration (thread counts, command slots per thread, and the limits handlers read):
   * Piscina cannot resize a pool in place, so new pools take every new task and the old ones retire once their
   * running tasks end — a running command keeps its thread until it completes.
   */
  reconfigure(config: Config): void {
    const old = this.#pools;
    this.#pools = buildPools(config);
    for (const lane of ['files', 'commands'] as const) {
      const pool = old[lane];
      // close() waits for running tasks (the closeTimeout of buildPools outlasts any command), then ends the threads.
      const closed = pool
        .close()
        .catch(() => {})
        .finally(() => this.#retiring.delete(pool));
      this.#retiring.set(pool, { lane, closed });
    }
  }

  /** Runs a task in the lane's pool; the cancel port, if any, is transferred to the thread. */
  async run(lane: Lane, task: PoolTask, cancelPort?: MessagePort): Promise<JobOutcome> {
    this.#busy[lane]++;
    try {
      return await this.#pools[lane].run(task, cancelPort ? { transferList: [cancelPort] } : {});
    } finally {
      this.#busy[lane]--;
    }
  }

  /**
   * Hosts a persistent shell session on the commands pool for as long as it lives (handlers/session-host.ts). It
   * takes no lane slot: only its execs do, through the pump. Settles when the session has ended.
   */
  host(task: SessionTask): Promise<JobOutcome> {
    return this.#pools.commands.run(task, { transferList: [task.port] });
  }

  /** Threads alive and tasks running, per lane and in all. */
  stats(): { threads: number; busy: number; lanes: Record<Lane, { threads: number; busy: number }> } {
    const retiring = (l: Lane): number => [...this.#retiring].reduce((n, [p, r]) => n + (r.lane === l ? p.threads.length : 0), 0);
    const lane = (l: Lane) => ({ threads: this.#pools[l].threads.length + retiring(l), busy: this.#busy[l] });
    const lanes = { files: lane('files'), commands: lane('commands') };
    return { threads: lanes.files.threads + lanes.commands.threads, busy: lanes.files.busy + lanes.commands.busy, lanes };
  }

  /** Waits for running tasks and stops the threads. Callers cancel commands first; threads are never killed under a child. */
  async close(): Promise<void> {
    await Promise.all([this.#pools.files.close(), this.#pools.commands.close(), ...[...this.#retiring.values()].map((r) => r.closed)]);
  }
}

function buildPools(config: Config): Record<Lane, Pool> {
  const workerData: PoolWorkerData = { config };
  const common = {
    filename: WORKER_FILE,
    workerData,
    idleTimeout: config.pool.idleTimeoutS * 1000,
    // Tasks reach threads as plain messages. Piscina's default ("sync") parks an idle thread in Atomics.wait, which
    // also freezes that thread's own timers and I/O between tasks, and every task then pays a futex wake on the
    // supervisor's thread: the largest single item of its profile under 64 concurrent reads (#18).
    atomics: 'disabled' as const,
    // Piscina's close() ends threads that are still busy after closeTimeout (30 s by default), which would kill a
    // thread under a running command; wait out the longest command instead (capped at setTimeout's maximum).
    closeTimeout: Math.min(2 ** 31 - 1, (config.commands.maxTimeoutS + config.commands.killGraceS + 60) * 1000),
  };
  const commandThreads = config.commands.threads;
  return {
    files: new Piscina({
      ...common,
      minThreads: Math.min(2, config.pool.maxThreads),
      maxThreads: config.pool.maxThreads,
      concurrentTasksPerWorker: FILE_TASKS_PER_THREAD,
    }),
    commands: new Piscina({
      ...common,
      minThreads: commandThreads,
      maxThreads: commandThreads,
      // Room for every command slot and every session's host task (which mostly waits for its next exec).
      concurrentTasksPerWorker: Math.ceil((config.commands.maxConcurrent + config.sessions.max) / commandThreads),
    }),
  };
}

/**
 * Concurrent tasks per file-pool thread. Handlers do their file system calls synchronously, but still await
 * ripgrep, stream large files and yield between extraction chunks, so a thread interleaves a few; the
 * pump's file lane admits at most `threads x FILE_LANE_PER_THREAD` jobs plus extractions, which stays within
 * `threads x FILE_TASKS_PER_THREAD`, so Piscina's own queue stays empty.
 */
export const FILE_TASKS_PER_THREAD = 4;
/** File-lane jobs admitted per file-pool thread. */
export const FILE_LANE_PER_THREAD = 2;
