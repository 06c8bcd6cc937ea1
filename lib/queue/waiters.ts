/**
 * Callers waiting for job outcomes, keyed by job id: the API half of every queue backend. An outcome reaches its
 * waiters by a direct call (no polling); each waiter holds one timer, for its deadline.
 */
import { ToolhostError } from '../errors.js';
import type { JobOutcome } from '../jobs.js';
import type { WaitOptions } from './job-queue.js';

/** The longest delay one setTimeout holds. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Waiter {
  resolve(outcome: JobOutcome): void;
  reject(err: unknown): void;
}

/** The waiters of one process. */
export class Waiters {
  readonly #byJob = new Map<string, Set<Waiter>>();

  /** Jobs somebody waits for. */
  get size(): number {
    return this.#byJob.size;
  }

  /** True when somebody waits for `jobId`. */
  has(jobId: string): boolean {
    return this.#byJob.has(jobId);
  }

  /** Waits for `jobId`'s outcome; rejects with `job_deadline` after `timeoutMs` or with the signal's reason. */
  wait(jobId: string, opts: WaitOptions): Promise<JobOutcome> {
    return new Promise<JobOutcome>((resolve, reject) => {
      let waiters = this.#byJob.get(jobId);
      if (!waiters) {
        waiters = new Set();
        this.#byJob.set(jobId, waiters);
      }
      const done = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        waiters.delete(waiter);
        if (waiters.size === 0 && this.#byJob.get(jobId) === waiters) this.#byJob.delete(jobId);
      };
      const waiter: Waiter = {
        resolve: (o) => {
          done();
          resolve(o);
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      let timer: NodeJS.Timeout | undefined;
      const arm = (left: number): void => {
        // Node fires a setTimeout beyond 2^31 - 1 ms after 1 ms instead, so a long deadline waits in steps.
        timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : expire()), Math.min(left, MAX_TIMER_MS));
      };
      const expire = (): void =>
        waiter.reject(
          new ToolhostError('job_deadline', `job ${jobId} did not finish within ${Math.round(opts.timeoutMs / 1000)} s; it may still complete`, {
            job_id: jobId,
          }),
        );
      arm(opts.timeoutMs);
      const onAbort = (): void => waiter.reject(opts.signal?.reason);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      waiters.add(waiter);
    });
  }

  /** Hands `outcome` to everyone waiting for `jobId`. */
  settle(jobId: string, outcome: JobOutcome): void {
    const set = this.#byJob.get(jobId);
    if (!set) return;
    for (const w of [...set]) w.resolve(outcome);
  }

  /** Rejects every waiter (shutdown). */
  rejectAll(err: unknown): void {
    for (const set of [...this.#byJob.values()]) for (const w of [...set]) w.reject(err);
    this.#byJob.clear();
  }
}
