/**
 * The seam between the API side (enqueue, wait for the outcome) and the worker side (receive, complete). The
 * embedded implementation is in-process (memory-queue.ts); a distributed one plugs in behind the same interface.
 */
import type { Job, JobOutcome } from '../jobs.js';

/** Options of {@link JobQueue.waitFor}. */
export interface WaitOptions {
  /** Reject with `job_deadline` after this many ms. */
  timeoutMs: number;
  /** Stop waiting (the caller went away); the promise rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
}

/** A job queue with result routing back to the waiting caller. */
export interface JobQueue {
  /** Starts the backend (connections, pollers). */
  start(): Promise<void>;
  /** Stops intake and releases resources; waiters that remain are rejected with `shutting_down`. */
  close(opts?: { force?: boolean }): Promise<void>;
  /**
   * Accepts a job. Rejects with `queue_full` when too many jobs are outstanding, `shutting_down` after close.
   * Register {@link waitFor} first so an outcome cannot arrive unobserved.
   */
  enqueue(job: Job): Promise<void>;
  /**
   * Resolves with the job's outcome as soon as the worker completes it (an event, not a poll). Registration is
   * synchronous: call it before {@link enqueue}.
   */
  waitFor(jobId: string, opts: WaitOptions): Promise<JobOutcome>;
  /** Worker side: takes up to `max` jobs, waiting until at least one is available or `signal` aborts ([]). */
  receive(max: number, signal: AbortSignal): Promise<Job[]>;
  /** Worker side: records the outcome of a received job and wakes its waiters. */
  complete(job: Job, outcome: JobOutcome): Promise<void>;
  /**
   * Worker side, optional: the job's thread died under it; deliver it again later (or give up on it). Without
   * it the job completes with an `internal` error.
   */
  release?(job: Job, reason: string): Promise<void>;
  /** Jobs accepted and not yet received by a worker. */
  depth(): number;
}
