/**
 * The embedded job queue: an in-process FIFO plus the waiters of lib/queue/waiters.ts. Outcomes reach waiters by a
 * direct call when the job completes (no polling).
 */
import { ToolhostError } from '../errors.js';
import type { Job, JobOutcome } from '../jobs.js';
import type { JobQueue, WaitOptions } from './job-queue.js';
import { Waiters } from './waiters.js';

/** In-process {@link JobQueue}. */
export class MemoryQueue implements JobQueue {
  readonly #maxOutstanding: number;
  readonly #pending: Job[] = [];
  #head = 0;
  /** Jobs accepted and not yet completed (pending + received). */
  #outstanding = 0;
  readonly #waiters = new Waiters();
  /** Wake-ups of the receives waiting for a job; each removes itself when called. */
  readonly #receivers = new Set<() => void>();
  #closed = false;

  /** @param maxOutstanding most jobs accepted and not yet completed before `queue_full`. */
  constructor(maxOutstanding: number) {
    this.#maxOutstanding = maxOutstanding;
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#closed = true;
    this.#wakeReceivers();
    const err = new ToolhostError('shutting_down', 'the server is shutting down; retry against another instance or later');
    this.#waiters.rejectAll(err);
  }

  async enqueue(job: Job): Promise<void> {
    if (this.#closed) {
      throw new ToolhostError('shutting_down', 'the server is shutting down and accepts no new jobs; retry later');
    }
    if (this.#outstanding >= this.#maxOutstanding) {
      throw new ToolhostError('queue_full', `the job queue is full (${this.#maxOutstanding} jobs outstanding); retry after the Retry-After delay`, {
        retry_after_s: 1,
      });
    }
    this.#outstanding++;
    this.#pending.push(job);
    this.#wakeReceivers();
  }

  waitFor(jobId: string, opts: WaitOptions): Promise<JobOutcome> {
    return this.#waiters.wait(jobId, opts);
  }

  async receive(max: number, signal: AbortSignal): Promise<Job[]> {
    while (this.depth() === 0 && !this.#closed && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.#receivers.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.#receivers.add(wake);
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
    this.#waiters.settle(job.id, outcome);
  }

  /** Wakes every waiting receive; those that find the queue empty again (another took the job) wait again. */
  #wakeReceivers(): void {
    for (const wake of [...this.#receivers]) wake();
  }

  depth(): number {
    return this.#pending.length - this.#head;
  }
}
