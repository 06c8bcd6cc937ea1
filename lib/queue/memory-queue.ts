/**
 * The embedded job queue: an in-process FIFO plus a map of waiters keyed by job id. Outcomes reach waiters by a
 * direct call when the job completes (no polling); each waiter holds one timer, for its deadline.
 */
import { ToolhostError } from '../errors.js';
import type { Job, JobOutcome } from '../jobs.js';
import type { JobQueue, WaitOptions } from './job-queue.js';

interface Waiter {
  resolve(outcome: JobOutcome): void;
  reject(err: unknown): void;
}

/** In-process {@link JobQueue}. */
export class MemoryQueue implements JobQueue {
  readonly #maxOutstanding: number;
  readonly #pending: Job[] = [];
  #head = 0;
  /** Jobs accepted and not yet completed (pending + received). */
  #outstanding = 0;
  readonly #waiters = new Map<string, Set<Waiter>>();
  #receiver: (() => void) | undefined;
  #closed = false;

  /** @param maxOutstanding most jobs accepted and not yet completed before `queue_full`. */
  constructor(maxOutstanding: number) {
    this.#maxOutstanding = maxOutstanding;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#closed = true;
    this.#receiver?.();
    const err = new ToolhostError('shutting_down', 'the server is shutting down; retry against another instance or later');
    for (const set of this.#waiters.values()) for (const w of set) w.reject(err);
    this.#waiters.clear();
  }

  async enqueue(job: Job): Promise<void> {
    if (this.#closed) {
      throw new ToolhostError('shutting_down', 'the server is shutting down and accepts no new jobs; retry later');
    }
    if (this.#outstanding >= this.#maxOutstanding) {
      throw new ToolhostError(
        'queue_full',
        `the job queue is full (${this.#maxOutstanding} jobs outstanding); retry after the Retry-After delay`,
        { retry_after_s: 1 },
      );
    }
    this.#outstanding++;
    this.#pending.push(job);
    this.#receiver?.();
  }

  waitFor(jobId: string, opts: WaitOptions): Promise<JobOutcome> {
    return new Promise<JobOutcome>((resolve, reject) => {
      let set = this.#waiters.get(jobId);
      if (!set) this.#waiters.set(jobId, (set = new Set()));
      const waiters = set;
      const done = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        waiters.delete(waiter);
        if (waiters.size === 0 && this.#waiters.get(jobId) === waiters) this.#waiters.delete(jobId);
      };
      const waiter: Waiter = {
        resolve: (o) => (done(), resolve(o)),
        reject: (e) => (done(), reject(e)),
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new ToolhostError('job_deadline', `job ${jobId} did not finish within ${Math.round(opts.timeoutMs / 1000)} s; it may still complete`, {
              job_id: jobId,
            }),
          ),
        opts.timeoutMs,
      );
      const onAbort = (): void => waiter.reject(opts.signal?.reason);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      waiters.add(waiter);
    });
  }

  async receive(max: number, signal: AbortSignal): Promise<Job[]> {
    while (this.depth() === 0 && !this.#closed && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.#receiver = undefined;
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.#receiver = wake;
        signal.addEventListener('abort', wake, { once: true });
      });
    }
    if (this.#closed || signal.aborted) return [];
    const n = Math.min(max, this.depth());
    const jobs = this.#pending.slice(this.#head, this.#head + n);
    this.#head += n;
    // Compact occasionally so the array does not grow without bound.
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#head);
      this.#head = 0;
    }
    return jobs;
  }

  async complete(job: Job, outcome: JobOutcome): Promise<void> {
    this.#outstanding--;
    const set = this.#waiters.get(job.id);
    if (!set) return;
    for (const w of [...set]) w.resolve(outcome);
  }

  depth(): number {
    return this.#pending.length - this.#head;
  }
}
