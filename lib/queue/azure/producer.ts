/**
 * API side: where a job goes. A job goes to the queue of the worker holding its project (a Blob lease says which),
 * or to the shared `<prefix>-jobs` queue when none does; its outcome comes back on this process's reply queue,
 * where the {@link ReplyInbox} wakes whoever waits for it.
 */
import type { QueueClient } from '@azure/storage-queue';
import { ToolhostError } from '../../errors.js';
import type { Job, JobOutcome } from '../../jobs.js';
import type { WaitOptions } from '../job-queue.js';
import type { JobEnvelope } from './codec.js';
import type { Leases } from './leases.js';
import type { ReplyInbox } from './reply-inbox.js';
import { type QueueStorage, statusOf, unavailable } from './storage.js';

/** The enqueueing half of an API process. */
export class Producer {
  readonly #storage: QueueStorage;
  readonly #leases: Leases;
  readonly #inbox: ReplyInbox;
  readonly #jobs: QueueClient;
  readonly #maxOutstanding: number;

  constructor(o: { storage: QueueStorage; leases: Leases; inbox: ReplyInbox; jobs: QueueClient; maxOutstanding: number }) {
    this.#storage = o.storage;
    this.#leases = o.leases;
    this.#inbox = o.inbox;
    this.#jobs = o.jobs;
    this.#maxOutstanding = o.maxOutstanding;
  }

  /** Sends a job towards its project's worker; `queue_full` beyond `maxOutstanding` waits, `queue_unavailable` on storage errors. */
  async enqueue(job: Job): Promise<void> {
    if (this.#inbox.jobs.size >= this.#maxOutstanding) {
      throw new ToolhostError('queue_full', `this API process waits for ${this.#maxOutstanding} jobs already; retry after the Retry-After delay`, {
        retry_after_s: 1,
      });
    }
    const env: JobEnvelope = { k: 'job', job, replyTo: this.#inbox.name };
    try {
      const owner = await this.#leases.ownerOf(job.projectId);
      if (owner) {
        try {
          await this.#storage.send(this.#storage.queue(this.#storage.names.node(owner)), env);
        } catch (err) {
          // The holder is gone and its queue was moved and removed: whoever takes the project next gets it.
          if (statusOf(err) !== 404) throw err;
          await this.#storage.send(this.#jobs, env);
        }
      } else {
        await this.#storage.send(this.#jobs, env);
      }
    } catch (err) {
      throw unavailable(err);
    }
    this.#inbox.expect();
  }

  /** Waits for a job's outcome; register before {@link enqueue}. */
  waitFor(jobId: string, opts: WaitOptions): Promise<JobOutcome> {
    const p = this.#inbox.jobs.wait(jobId, opts);
    this.#inbox.expect();
    return p;
  }

  /** Jobs somebody here waits for. */
  depth(): number {
    return this.#inbox.jobs.size;
  }
}
