/**
 * API side: this process's reply queue (`<prefix>-replies-<nodeId>`), where workers put the outcomes of its jobs
 * and the answers to its calls. One poller reads it while anybody waits, in batches of up to 32, fast right after a
 * request went out to another process and backing off to `pollMaxMs`; it wakes the waiters by id. A job sent to
 * this process's own worker is answered in-process ({@link ReplyInbox.deliver}), so its wait only keeps the
 * poller going at its slow pace (in case the job is forwarded to another worker). While nobody waits it sleeps and
 * costs no request.
 */
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import type { JobOutcome } from '../../jobs.js';
import { Waiters } from '../waiters.js';
import type { ReplyItem } from './codec.js';
import { Backoff, sleep } from './poller.js';
import type { QueueStorage } from './storage.js';
import type { QueueLog } from './types.js';

/** How long the poller sleeps when nobody waits, unless a new waiter wakes it. */
const IDLE_SLEEP_MS = 60_000;

/** The reply queue of one API process and the callers waiting on it. */
export class ReplyInbox {
  /** Callers waiting for the outcome of a job, by job id. */
  readonly jobs = new Waiters();
  /** Callers waiting for the answer to a call, by call id. */
  readonly calls = new Waiters();
  readonly #queue: QueueClient;
  readonly #storage: QueueStorage;
  readonly #log: QueueLog;
  readonly #backoff: Backoff;
  readonly #pollMaxMs: number;
  readonly #pollMinMs: number;
  readonly #stop = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  #wake: () => void = () => {};
  /** When the queue is polled next, while anybody waits (epoch ms). */
  #due = 0;
  /** expect() calls so far: one during a poll keeps the next poll at once. */
  #expects = 0;

  constructor(o: { queue: QueueClient; storage: QueueStorage; log: QueueLog; pollMinMs: number; pollMaxMs: number }) {
    this.#queue = o.queue;
    this.#storage = o.storage;
    this.#log = o.log;
    this.#backoff = new Backoff(o.pollMinMs, o.pollMaxMs);
    this.#pollMaxMs = o.pollMaxMs;
    this.#pollMinMs = o.pollMinMs;
  }

  /** The queue name workers reply to. */
  get name(): string {
    return this.#queue.name;
  }

  start(): void {
    this.#loop = this.#poll();
  }

  /** A request just went out to another process: poll fast until its answer comes. */
  expect(): void {
    this.#backoff.reset();
    this.#due = Date.now();
    this.#expects++;
    this.#wake();
  }

  /**
   * A job went to this process's own worker, which answers in-process: poll no sooner than `pollMaxMs` from now
   * (the answer comes here only if the job was forwarded to another worker).
   */
  watch(): void {
    if (this.#due === Number.POSITIVE_INFINITY) {
      this.#backoff.slow();
      this.#due = Date.now() + this.#pollMaxMs;
      this.#wake();
    }
  }

  /** Outcomes from this process's own worker: settles their waiters. */
  deliver(items: readonly ReplyItem[]): void {
    for (const item of items) {
      const outcome: JobOutcome = { ...item.outcome, worker: item.node };
      if (this.calls.has(item.id)) this.calls.settle(item.id, outcome);
      else this.jobs.settle(item.id, outcome);
    }
  }

  /** Rejects every waiter with `err`, stops polling and deletes the queue (nobody reads it any more). */
  async close(err: Error): Promise<void> {
    this.#stop.abort();
    this.jobs.rejectAll(err);
    this.calls.rejectAll(err);
    await this.#loop;
    await this.#queue.deleteIfExists({ abortSignal: this.#storage.deadline() }).catch(() => {});
  }

  async #poll(): Promise<void> {
    const signal = this.#stop.signal;
    const onWake = (wake: () => void): void => {
      this.#wake = wake;
    };
    while (!signal.aborted) {
      if (this.jobs.size === 0 && this.calls.size === 0) {
        this.#due = Number.POSITIVE_INFINITY;
        await sleep(IDLE_SLEEP_MS, signal, onWake);
        continue;
      }
      const wait = this.#due - Date.now();
      if (wait > 0) {
        await sleep(wait, signal, onWake);
        continue;
      }
      let found = 0;
      const expects = this.#expects;
      try {
        const res = await this.#queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30, abortSignal: this.#storage.deadline() });
        found = res.receivedMessageItems.length;
        await Promise.all(res.receivedMessageItems.map((m) => this.#take(m)));
      } catch (err) {
        if (!signal.aborted) this.#log.warn({ err: String(err) }, 'reply queue poll failed; retrying');
      }
      // An expect() during the poll brings the next one forward, but never back to back: while requests stream
      // out, every poll would otherwise follow the last at once.
      const delay = this.#expects === expects ? this.#backoff.next(found, 32) : Math.min(this.#pollMinMs, this.#backoff.next(found, 32));
      this.#due = Date.now() + delay;
    }
  }

  /** Settles the waiters of one message's outcomes. Never rejects: one bad message does not stop the others. */
  async #take(m: DequeuedMessageItem): Promise<void> {
    try {
      const decoded = await this.#storage.open(this.#queue, m);
      if (!decoded) return;
      const { env, claim } = decoded;
      if (env.k === 'replies') {
        this.deliver(env.items);
      } else {
        this.#log.warn({ queue: this.name, message_id: m.messageId, kind: env.k }, 'dropped a message sent to a reply queue by mistake');
      }
      // Off the path of the next poll (remove never rejects): the waiters are settled already.
      void this.#storage.remove(this.#queue, m.messageId, m.popReceipt, claim);
    } catch (err) {
      this.#log.warn({ message_id: m.messageId, err: String(err) }, 'could not read a reply; it will be read again');
    }
  }
}
