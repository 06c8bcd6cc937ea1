/**
 * Worker side: the jobs this worker received and has not finished. A held job's message stays invisible while the
 * job runs (renewed every third of `visibilityS`, always with the newest pop receipt) and is deleted once its
 * outcome was sent. A job whose thread died under it is given back to be delivered again (counted as a delivery,
 * not as a lost worker), and after its `maxDequeueCount`-th delivery goes to the poison queue instead: its caller
 * gets `job_poisoned`.
 */
import type { QueueClient } from '@azure/storage-queue';
import { ToolhostError } from '../../errors.js';
import type { Job, JobOutcome } from '../../jobs.js';
import type { JobEnvelope } from './codec.js';
import type { ReplyBatcher } from './reply-batcher.js';
import type { QueueStorage } from './storage.js';
import type { QueueLog } from './types.js';

/** A received job's message. */
export interface HeldMessage {
  queue: QueueClient;
  messageId: string;
  popReceipt: string;
  dequeueCount: number;
  env: JobEnvelope;
  claim: string | undefined;
  /** When the poll that received it was sent: its invisibility runs from then at the latest. */
  polledAt: number;
}

interface Held extends HeldMessage {
  /** The next renewal of the message's invisibility, once scheduled. */
  renewal?: NodeJS.Timeout;
  /** Updates and the delete of one message run one after another: each needs the newest pop receipt. */
  chain: Promise<void>;
}

/** The held jobs of one worker, by job id. */
export class HeldJobs {
  readonly #storage: QueueStorage;
  readonly #replies: ReplyBatcher;
  readonly #poison: QueueClient;
  readonly #visibilityS: number;
  readonly #maxDequeueCount: number;
  readonly #log: QueueLog;
  readonly #held = new Map<string, Held>();
  /** Deletes of finished jobs' messages on their way. */
  readonly #deleting = new Set<Promise<void>>();
  #closed = false;

  constructor(o: { storage: QueueStorage; replies: ReplyBatcher; poison: QueueClient; visibilityS: number; maxDequeueCount: number; log: QueueLog }) {
    this.#storage = o.storage;
    this.#replies = o.replies;
    this.#poison = o.poison;
    this.#visibilityS = o.visibilityS;
    this.#maxDequeueCount = o.maxDequeueCount;
    this.#log = o.log;
  }

  /** Holds a job that is about to run here. */
  hold(m: HeldMessage): void {
    const h: Held = { ...m, chain: Promise.resolve() };
    this.#held.set(m.env.job.id, h);
    // Admission (the project's lease) took part of the invisibility already: the first renewal comes that much sooner.
    this.#scheduleRenewal(h, Math.max(0, this.#renewEveryMs - (Date.now() - m.polledAt)));
  }

  /**
   * Sends a job's outcome to its caller, then deletes its message. Resolves once the outcome was sent: the delete
   * follows on its own ({@link close} waits for it), so the worker's slot is free a request sooner.
   */
  async complete(job: Job, outcome: JobOutcome): Promise<void> {
    const h = this.#let(job.id);
    if (!h) return;
    await this.#replies.send(h.env.replyTo, job.id, outcome);
    // remove() never rejects, nor does the chain (a failed renewal is logged).
    const deleted = h.chain.then(() => this.#storage.remove(h.queue, h.messageId, h.popReceipt, h.claim));
    this.#deleting.add(deleted);
    void deleted.finally(() => this.#deleting.delete(deleted));
  }

  /** The job's thread died under it: deliver it again after a while, or poison it after `maxDequeueCount` deliveries. */
  async release(job: Job, reason: string): Promise<void> {
    const h = this.#let(job.id);
    if (!h) return;
    await h.chain;
    const deliveries = (h.env.prior ?? 0) + h.dequeueCount;
    if (deliveries >= this.#maxDequeueCount) {
      await this.poison(h.env, `its thread crashed on each of ${deliveries} deliveries (${reason})`);
      await this.#storage.remove(h.queue, h.messageId, h.popReceipt, h.claim);
      return;
    }
    const text = await this.#storage.codec.encode({ ...h.env, released: (h.env.released ?? 0) + 1 });
    await h.queue.updateMessage(h.messageId, h.popReceipt, text, Math.min(30, 2 ** deliveries), { abortSignal: this.#storage.deadline(text.length) });
    await this.#storage.codec.dropClaim(h.claim);
  }

  /** Moves a job to the poison queue (kept until someone looks) and tells its caller `job_poisoned`. */
  async poison(env: JobEnvelope, why: string): Promise<void> {
    const { job } = env;
    const queue = this.#poison.name;
    await this.#storage.send(this.#poison, env, { messageTimeToLive: -1 });
    const error = new ToolhostError(
      'job_poisoned',
      `job ${job.id} (${job.type}) was moved to the ${queue} queue: ${why}. It will not be retried; report it with the job_id`,
      {
        job_id: job.id,
        queue,
      },
    );
    this.#log.error({ job_id: job.id, project_id: job.projectId, type: job.type, why }, 'job moved to the poison queue');
    await this.#replies.send(env.replyTo, job.id, { ok: false, error: error.toJSON() });
  }

  /**
   * Stops renewing: the messages of jobs still held turn visible once their invisibility runs out. Resolves once the
   * messages of finished jobs are deleted.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const h of this.#held.values()) clearTimeout(h.renewal);
    await Promise.all([...this.#deleting]);
  }

  /** Lets go of a held job: no more renewals. */
  #let(jobId: string): Held | undefined {
    const h = this.#held.get(jobId);
    if (!h) return undefined;
    this.#held.delete(jobId);
    clearTimeout(h.renewal);
    return h;
  }

  /** A third of `visibilityS`: after a renewal, one more may fail and the next still comes in time. */
  get #renewEveryMs(): number {
    return (this.#visibilityS * 1000) / 3;
  }

  /** The next renewal `delayMs` after the last one ended (so two never overlap). */
  #scheduleRenewal(h: Held, delayMs = this.#renewEveryMs): void {
    if (this.#closed) return;
    h.renewal = setTimeout(() => {
      h.chain = h.chain.then(async () => {
        await this.#renew(h);
        if (this.#held.get(h.env.job.id) === h) this.#scheduleRenewal(h);
      });
    }, delayMs);
    h.renewal.unref();
  }

  async #renew(h: Held): Promise<void> {
    try {
      // Always with a visibility timeout (without one the message would turn visible at once) and the newest receipt.
      const r = await h.queue.updateMessage(h.messageId, h.popReceipt, undefined, this.#visibilityS, { abortSignal: this.#storage.deadline() });
      if (r.popReceipt) h.popReceipt = r.popReceipt;
    } catch (err) {
      this.#log.warn({ job_id: h.env.job.id, err: String(err) }, "could not renew a running job's invisibility; it may be delivered again");
    }
  }
}
