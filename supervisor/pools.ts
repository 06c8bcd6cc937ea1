/**
 * The two Piscina pools, one per lane. Commands run on their own threads (each thread hosts several commands,
 * which mostly wait on their child process), so a file read, list or search never shares a thread or a slot with
 * a command: short jobs cannot wait behind long ones, by construction.
 */
import { Piscina } from 'piscina';
import type { Config } from '../config/schema.js';
import type { PoolTask, PoolWorkerData } from '../handlers/worker.js';
import type { JobOutcome, Lane } from '../lib/jobs.js';
import type { MessagePort } from 'node:worker_threads';

// Under tsx (tests, bench) the supervisor runs from .ts sources and pool threads load the .ts worker; built code
// runs from dist/ with .js. Worker threads inherit the parent's --import=tsx.
const WORKER_FILE = new URL(`../handlers/worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

/** Both pools, sized from the configuration. */
export class Pools {
  readonly #pools: Record<Lane, Piscina<PoolTask, JobOutcome>>;
  readonly #busy: Record<Lane, number> = { files: 0, commands: 0 };

  constructor(config: Config) {
    const workerData: PoolWorkerData = { config };
    const common = { filename: WORKER_FILE, workerData, idleTimeout: config.pool.idleTimeoutS * 1000 };
    const commandThreads = config.commands.threads;
    this.#pools = {
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
        concurrentTasksPerWorker: Math.ceil(config.commands.maxConcurrent / commandThreads),
      }),
    };
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

  /** Threads alive and tasks running, per lane and in all. */
  stats(): { threads: number; busy: number; lanes: Record<Lane, { threads: number; busy: number }> } {
    const lane = (l: Lane) => ({ threads: this.#pools[l].threads.length, busy: this.#busy[l] });
    const lanes = { files: lane('files'), commands: lane('commands') };
    return { threads: lanes.files.threads + lanes.commands.threads, busy: lanes.files.busy + lanes.commands.busy, lanes };
  }

  /** Waits for running tasks and stops the threads. Callers cancel commands first; threads are never killed under a child. */
  async close(): Promise<void> {
    await Promise.all([this.#pools.files.close(), this.#pools.commands.close()]);
  }
}

/**
 * Concurrent tasks per file-pool thread. File handlers are asynchronous I/O, so a thread interleaves a few; the
 * pump's file lane admits at most `threads x FILE_LANE_PER_THREAD` jobs plus extractions, which stays within
 * `threads x FILE_TASKS_PER_THREAD`, so Piscina's own queue stays empty.
 */
export const FILE_TASKS_PER_THREAD = 4;
/** File-lane jobs admitted per file-pool thread. */
export const FILE_LANE_PER_THREAD = 2;
