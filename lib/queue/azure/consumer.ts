/**
 * Worker side: the receive loop and what becomes of each message it takes. One loop reads this worker's own queue
 * and the shared one, in batches of up to 32, each queue on its own backoff: one that returns messages is polled
 * again at once, an empty one less and less often, so a busy worker's own queue does not wait on polls of an idle
 * shared queue, and an idle worker polls the two in turn about once per `pollMaxMs`. A job this very process sent
 * (role "all") wakes the loop at once ({@link Consumer.nudge}). Before a job runs, the worker takes its project's
 * lease; a job of a project another live worker holds is forwarded there, and a free project is left to a live peer
 * holding fewer (forwarded to it, marked so it takes it). A call is deleted and handed to the
 * {@link CallAnswerer}. A job admitted here is handed to the {@link HeldJobs}, which keep it invisible while it runs
 * and delete it once its outcome was sent.
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

/** Seconds before a job whose project's holder is not known alive is looked at again. */
const LOOK_AGAIN_S = 2;

/** The settings the receive loop uses. */
export interface ConsumerSettings {
  maxDequeueCount: number;
  visibilityS: number;
  leaseS: number;
  pollMinMs: number;
  pollMaxMs: number;
}

/** One queue the loop reads, with its own backoff: a flowing queue is polled at once, a quiet one backs off. */
interface Source {
  queue: QueueClient;
  backoff: Backoff;
  /** When it is polled next (epoch ms). */
  due: number;
  /** Nudges so far: one during a poll keeps the next poll at once. */
  nudges: number;
  /** Nudges when the last poll started: a poll made for a nudge leaves the queue cold. */
  polledNudges: number;
}

/** The receiving half of a worker. */
export class Consumer {
  readonly #storage: QueueStorage;
  readonly #leases: Leases;
  readonly #held: HeldJobs;
  readonly #replies: ReplyBatcher;
  readonly #answerer: CallAnswerer;
  readonly #s: ConsumerSettings;
  readonly #log: QueueLog;
  /** This worker's own queue, then the shared one. */
  readonly #sources: Source[];
  #wake: () => void = () => {};
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
    this.#s = o.settings;
    this.#log = o.log;
    // Each queue backs off to twice pollMaxMs: idle, the two together cost about one poll per pollMaxMs.
    this.#sources = [o.node, o.jobs].map((queue) => ({
      queue,
      backoff: new Backoff(o.settings.pollMinMs, 2 * o.settings.pollMaxMs),
      due: 0,
      nudges: 0,
      polledNudges: 0,
    }));
  }

  /**
   * Something was just sent to queue `name` from this process (its API half enqueued a job): poll that queue next,
   * at once, instead of when its backoff says.
   */
  nudge(name: string): void {
    const src = this.#sources.find((s) => s.queue.name === name);
    if (!src) return;
    // The backoff is left as it is: the poll made for this job says nothing of jobs from other processes.
    src.due = Date.now();
    src.nudges++;
    this.#wake();
  }

  /**
   * Takes up to `max` jobs to run here, waiting until at least one comes, `signal` aborts or the consumer closes
   * ([]; within one poll delay).
   */
  async receive(max: number, signal: AbortSignal): Promise<Job[]> {
    while (!signal.aborted && !this.#closed) {
      const src = this.#sources.reduce((a, b) => (b.due < a.due ? b : a));
      const wait = src.due - Date.now();
      if (wait > 0) {
        await sleep(wait, signal, (wake) => (this.#wake = wake));
        continue;
      }
      const q = src.queue;
      const numberOfMessages = Math.max(1, Math.min(32, max));
      let items: DequeuedMessageItem[] = [];
      const polledAt = Date.now();
      const nudges = src.nudges;
      try {
        const abortSignal = this.#storage.deadline();
        items = (await q.receiveMessages({ numberOfMessages, visibilityTimeout: this.#s.visibilityS, abortSignal })).receivedMessageItems;
      } catch (err) {
        this.#log.warn({ err: String(err), queue: q.name }, 'queue poll failed; retrying');
      }
      const delay = src.backoff.next(items.length, numberOfMessages, nudges !== src.polledNudges);
      src.polledNudges = nudges;
      // A nudge during the poll brings the next one forward, but never back to back: while this process sends
      // jobs in a stream, every poll would otherwise follow the last at once.
      src.due = Date.now() + (src.nudges === nudges ? delay : Math.min(delay, this.#s.pollMinMs));
      const admitted = await Promise.all(items.map((m) => this.#admit(q, m, polledAt).catch((err: unknown) => this.#failAdmit(m, err))));
      const jobs = admitted.filter((job): job is Job => job !== null);
      if (jobs.length > 0) return jobs;
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
    const claimed = await this.#leases.claim(job.projectId, { yielding: !env.yielded });
    if (claimed.mine) {
      this.#held.hold({ queue: q, messageId: m.messageId, popReceipt: m.popReceipt, dequeueCount: m.dequeueCount, env, claim, polledAt });
      return job;
    }
    if ('yieldTo' in claimed) {
      // A live peer holds fewer projects: the job goes to its own queue, marked so that it takes the project
      // instead of passing it on again (this delivery does not count). Put back on the shared queue, it would come
      // back here first as often as not: this worker polls faster than an idle peer.
      await this.#forward(q, m, { ...env, prior: deliveries - 1, yielded: true }, claim, claimed.yieldTo);
    } else if (claimed.alive) {
      // Another worker holds the project: forward (this delivery does not count).
      await this.#forward(q, m, { ...env, prior: deliveries - 1 }, claim, claimed.owner);
    } else {
      // Its holder died and its lease has not expired yet, or a worker took the lease a moment ago and has not
      // named itself on it yet: look again shortly (each look costs three requests, a job left waiting costs more).
      await this.#putBack(q, m, env, claim, Math.min(LOOK_AGAIN_S, Math.ceil(this.#s.leaseS / 3)));
    }
    return null;
  }

  /** Moves a job to worker `nodeId`'s own queue. */
  async #forward(q: QueueClient, m: DequeuedMessageItem, env: JobEnvelope, claim: string | undefined, nodeId: string): Promise<void> {
    await this.#storage.send(this.#storage.queue(this.#storage.names.node(nodeId)), env);
    await this.#storage.remove(q, m.messageId, m.popReceipt, claim);
  }

  /** Makes a job visible again after `afterS`, this delivery uncounted. */
  async #putBack(q: QueueClient, m: DequeuedMessageItem, env: JobEnvelope, claim: string | undefined, afterS: number): Promise<void> {
    const text = await this.#storage.codec.encode({ ...env, prior: (env.prior ?? 0) - 1 });
    await q.updateMessage(m.messageId, m.popReceipt, text, afterS, { abortSignal: this.#storage.deadline(text.length) });
    await this.#storage.codec.dropClaim(claim);
  }
}
