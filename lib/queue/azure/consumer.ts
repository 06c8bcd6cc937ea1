/**
 * Worker side: the receive loop and what becomes of each message it takes. One loop polls this worker's own queue
 * and the shared one in turn, in batches of up to 32, fast while messages flow and backing off to `pollMaxMs` when
 * idle. Before a job runs, the worker takes its project's lease; a job of a project another live worker holds is
 * forwarded there. A call is deleted and handed to the {@link CallAnswerer}. A job admitted here is handed to the
 * {@link HeldJobs}, which keep it invisible while it runs and delete it once its outcome was sent.
 *
 * Delivery is at least once. A job's deliveries are counted across forwards; those that no live worker gave back
 * were to a worker that died. A read, list or search is simply run again; a write, edit or command is not: its
 * caller gets `worker_lost` with the job id. A job delivered more than `maxDequeueCount` times goes to the poison
 * queue (see held-jobs.ts).
 */
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import { ToolhostError } from '../../errors.js';
import type { Job } from '../../jobs.js';
import type { JobEnvelope } from './codec.js';
import type { HeldJobs } from './held-jobs.js';
import type { Leases } from './leases.js';
import { Backoff, sleep } from './poller.js';
import type { ReplyBatcher } from './reply-batcher.js';
import type { QueueStorage } from './storage.js';
import type { QueueLog } from './types.js';
import type { CallAnswerer } from './worker-rpc.js';

/** The settings the receive loop uses. */
export interface ConsumerSettings {
  maxDequeueCount: number;
  visibilityS: number;
  leaseS: number;
  pollMinMs: number;
  pollMaxMs: number;
}

/** The receiving half of a worker. */
export class Consumer {
  readonly #storage: QueueStorage;
  readonly #leases: Leases;
  readonly #held: HeldJobs;
  readonly #replies: ReplyBatcher;
  readonly #answerer: CallAnswerer;
  readonly #node: QueueClient;
  readonly #jobs: QueueClient;
  readonly #s: ConsumerSettings;
  readonly #log: QueueLog;
  readonly #backoff: Backoff;
  #turn = 0;
  #closed = false;

  constructor(o: {
    storage: QueueStorage;
    leases: Leases;
    held: HeldJobs;
    replies: ReplyBatcher;
    answerer: CallAnswerer;
    /** This worker's own queue. */
    node: QueueClient;
    /** The shared queue. */
    jobs: QueueClient;
    settings: ConsumerSettings;
    log: QueueLog;
  }) {
    this.#storage = o.storage;
    this.#leases = o.leases;
    this.#held = o.held;
    this.#replies = o.replies;
    this.#answerer = o.answerer;
    this.#node = o.node;
    this.#jobs = o.jobs;
    this.#s = o.settings;
    this.#log = o.log;
    this.#backoff = new Backoff(o.settings.pollMinMs, o.settings.pollMaxMs);
  }

  /**
   * Takes up to `max` jobs to run here, waiting until at least one comes, `signal` aborts or the consumer closes
   * ([]; within one poll delay).
   */
  async receive(max: number, signal: AbortSignal): Promise<Job[]> {
    while (!signal.aborted && !this.#closed) {
      const q = this.#turn++ % 2 === 0 ? this.#node : this.#jobs;
      let items: DequeuedMessageItem[] = [];
      const polledAt = Date.now();
      try {
        const numberOfMessages = Math.max(1, Math.min(32, max));
        const abortSignal = this.#storage.deadline();
        items = (await q.receiveMessages({ numberOfMessages, visibilityTimeout: this.#s.visibilityS, abortSignal })).receivedMessageItems;
      } catch (err) {
        this.#log.warn({ err: String(err), queue: q.name }, 'queue poll failed; retrying');
      }
      const admitted = await Promise.all(items.map((m) => this.#admit(q, m, polledAt).catch((err: unknown) => this.#failAdmit(m, err))));
      const jobs = admitted.filter((job): job is Job => job !== null);
      const delay = this.#backoff.next(items.length);
      if (jobs.length > 0) return jobs;
      if (delay > 0) await sleep(delay, signal, () => {});
    }
    return [];
  }

  /** Stops the receive loop (a receive in progress returns []). */
  close(): void {
    this.#closed = true;
  }

  /** A message that could not be looked at (storage hiccup) becomes visible again on its own. */
  async #failAdmit(m: DequeuedMessageItem, err: unknown): Promise<null> {
    this.#log.warn({ message_id: m.messageId, err: String(err) }, 'could not admit a message; it will be delivered again');
    return null;
  }

  /**
   * Decides what a received message is for: a job to run here (returned), or one handled on the spot. `polledAt`
   * is when its invisibility began at the latest.
   */
  async #admit(q: QueueClient, m: DequeuedMessageItem, polledAt: number): Promise<Job | null> {
    const decoded = await this.#storage.open(q, m);
    if (!decoded) return null;
    const { env, claim } = decoded;
    if (env.k === 'call') {
      // A call is answered once (at most): it may wait longer than the message stays invisible.
      await this.#storage.remove(q, m.messageId, m.popReceipt, claim);
      void this.#answerer.answer(env);
      return null;
    }
    if (env.k !== 'job') {
      this.#log.warn({ queue: q.name, message_id: m.messageId, kind: env.k }, 'dropped a message sent to a job queue by mistake');
      await this.#storage.remove(q, m.messageId, m.popReceipt, claim);
      return null;
    }
    const { job } = env;
    const deliveries = (env.prior ?? 0) + m.dequeueCount;
    if (deliveries > this.#s.maxDequeueCount) {
      await this.#held.poison(env, `it was delivered ${deliveries - 1} times without finishing`);
      await this.#storage.remove(q, m.messageId, m.popReceipt, claim);
      return null;
    }
    const lost = deliveries - 1 - (env.released ?? 0);
    if (lost > 0 && job.mutates) {
      const error = new ToolhostError(
        'worker_lost',
        `the worker running job ${job.id} (${job.type}) stopped before it finished; it was not run again because it may have changed the project in part. Check the project's state, then retry if needed`,
        { job_id: job.id },
      );
      await this.#replies.send(env.replyTo, job.id, { ok: false, error: error.toJSON() });
      await this.#storage.remove(q, m.messageId, m.popReceipt, claim);
      return null;
    }
    const claimed = await this.#leases.claim(job.projectId);
    if (claimed.mine) {
      this.#held.hold({ queue: q, messageId: m.messageId, popReceipt: m.popReceipt, dequeueCount: m.dequeueCount, env, claim, polledAt });
      return job;
    }
    if ('yield' in claimed) {
      // A peer holds fewer projects: leave it this one for a poll or so (this delivery does not count).
      await this.#putBack(q, m, env, claim, Math.max(1, Math.ceil(this.#s.pollMaxMs / 1000)));
    } else if (claimed.alive) {
      // Another worker holds the project: forward (this delivery does not count).
      await this.#storage.send(this.#storage.queue(this.#storage.names.node(claimed.owner)), { ...env, prior: deliveries - 1 });
      await this.#storage.remove(q, m.messageId, m.popReceipt, claim);
    } else {
      // Its holder died and its lease has not expired yet: look again in a third of a lease.
      await this.#putBack(q, m, env, claim, Math.ceil(this.#s.leaseS / 3));
    }
    return null;
  }

  /** Makes a job visible again after `afterS`, this delivery uncounted. */
  async #putBack(q: QueueClient, m: DequeuedMessageItem, env: JobEnvelope, claim: string | undefined, afterS: number): Promise<void> {
    const text = await this.#storage.codec.encode({ ...env, prior: (env.prior ?? 0) - 1 });
    await q.updateMessage(m.messageId, m.popReceipt, text, afterS, { abortSignal: this.#storage.deadline(text.length) });
    await this.#storage.codec.dropClaim(claim);
  }
}
