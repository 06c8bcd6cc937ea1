/**
 * API side: where a job goes. A job goes to the queue of the worker holding its project (a Blob lease says which),
 * or to the shared `<prefix>-jobs` queue when none does; its outcome comes back on this process's reply queue,
 * where the {@link ReplyInbox} wakes whoever waits for it. In a process that is a worker too (role "all"), the
 * worker's receive loop is told at once about a job sent to a queue it reads, and a job sent to its own queue is
 * answered in-process (the reply queue is then only watched, in case the job moves to another worker).
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
/** The worker half of this same process, as the producer sees it. */
export interface LocalWorker {
  /** Its node id: jobs of the projects it holds go to its own queue. */
  nodeId: string;
  /** Tells its receive loop that queue `name` has a job now. */
  nudge(name: string): void;
}

/** The enqueueing half of an API process. */
export class Producer {
  readonly #storage: QueueStorage;
  readonly #leases: Leases;
  readonly #inbox: ReplyInbox;
  readonly #jobs: QueueClient;
  readonly #maxOutstanding: number;
  readonly #local: LocalWorker | undefined;

  constructor(o: { storage: QueueStorage; leases: Leases; inbox: ReplyInbox; jobs: QueueClient; maxOutstanding: number; local?: LocalWorker | undefined }) {
    this.#storage = o.storage;
    this.#leases = o.leases;
    this.#inbox = o.inbox;
    this.#jobs = o.jobs;
    this.#maxOutstanding = o.maxOutstanding;
    this.#local = o.local;
  }

  /** Sends a job towards its project's worker; `queue_full` beyond `maxOutstanding` waits, `queue_unavailable` on storage errors. */
  async enqueue(job: Job): Promise<void> {
    if (this.#inbox.jobs.size >= this.#maxOutstanding) {
      throw new ToolhostError('queue_full', `this API process waits for ${this.#maxOutstanding} jobs already; retry after the Retry-After delay`, {
        retry_after_s: 1,
      });
    }
    const env: JobEnvelope = { k: 'job', job, replyTo: this.#inbox.name };
    let queue: QueueClient;
    let owner: string | null;
    try {
      owner = await this.#leases.ownerOf(job.projectId);
      queue = owner ? this.#storage.queue(this.#storage.names.node(owner)) : this.#jobs;
      try {
        await this.#storage.send(queue, env);
      } catch (err) {
        // The holder is gone and its queue was moved and removed: whoever takes the project next gets it.
        if (!owner || statusOf(err) !== 404) throw err;
        owner = null;
        queue = this.#jobs;
        await this.#storage.send(queue, env);
      }
    } catch (err) {
      throw unavailable(err);
    }
    this.#local?.nudge(queue.name);
    if (this.#local && owner === this.#local.nodeId) this.#inbox.watch();
    else this.#inbox.expect();
  }

  /** Waits for a job's outcome; register before {@link enqueue}. */
  waitFor(jobId: string, opts: WaitOptions): Promise<JobOutcome> {
    const p = this.#inbox.jobs.wait(jobId, opts);
    this.#inbox.watch();
    return p;
  }

  /** Jobs somebody here waits for. */
  depth(): number {
    return this.#inbox.jobs.size;
  }
}
