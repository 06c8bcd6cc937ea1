/**
 * API side: this process's reply queue (`<prefix>-replies-<nodeId>`), where workers put the outcomes of its jobs
 * and the answers to its calls. One poller reads it while anybody waits, in batches of up to 32, fast right after a
 * request went out and backing off to `pollMaxMs`; it wakes the waiters by id. While nobody waits it sleeps and
 * costs no request.
 */
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import type { JobOutcome } from '../../jobs.js';
import { Waiters } from '../waiters.js';
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
  readonly #stop = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  #wake: () => void = () => {};

  constructor(o: { queue: QueueClient; storage: QueueStorage; log: QueueLog; pollMinMs: number; pollMaxMs: number }) {
    this.#queue = o.queue;
    this.#storage = o.storage;
    this.#log = o.log;
    this.#backoff = new Backoff(o.pollMinMs, o.pollMaxMs);
  }

  /** The queue name workers reply to. */
  get name(): string {
    return this.#queue.name;
  }

  start(): void {
    this.#loop = this.#poll();
  }

  /** A request just went out: poll fast until its answer comes. */
  expect(): void {
    this.#backoff.reset();
    this.#wake();
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
    while (!signal.aborted) {
      if (this.jobs.size === 0 && this.calls.size === 0) {
        await sleep(IDLE_SLEEP_MS, signal, (wake) => (this.#wake = wake));
        continue;
      }
      let found = 0;
      try {
        const res = await this.#queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30, abortSignal: this.#storage.deadline() });
        found = res.receivedMessageItems.length;
        await Promise.all(res.receivedMessageItems.map((m) => this.#take(m)));
      } catch (err) {
        if (!signal.aborted) this.#log.warn({ err: String(err) }, 'reply queue poll failed; retrying');
      }
      const delay = this.#backoff.next(found);
      if (delay > 0) await sleep(delay, signal, (wake) => (this.#wake = wake));
    }
  }

  /** Settles the waiters of one message's outcomes. Never rejects: one bad message does not stop the others. */
  async #take(m: DequeuedMessageItem): Promise<void> {
    try {
      const decoded = await this.#storage.open(this.#queue, m);
      if (!decoded) return;
      const { env, claim } = decoded;
      if (env.k === 'replies') {
        for (const item of env.items) {
          const outcome: JobOutcome = { ...item.outcome, worker: item.node };
          if (this.calls.has(item.id)) this.calls.settle(item.id, outcome);
          else this.jobs.settle(item.id, outcome);
        }
      } else {
        this.#log.warn({ queue: this.name, message_id: m.messageId, kind: env.k }, 'dropped a message sent to a reply queue by mistake');
      }
      await this.#storage.remove(this.#queue, m.messageId, m.popReceipt, claim);
    } catch (err) {
      this.#log.warn({ message_id: m.messageId, err: String(err) }, 'could not read a reply; it will be read again');
    }
  }
}
