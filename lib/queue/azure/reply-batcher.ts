/**
 * Worker side: outcomes of jobs and answers to calls on their way back to the API process that waits for them (its
 * reply queue). Outcomes for one reply queue share a message: those of one turn of the event loop, and all those
 * that finish while the previous message to that queue is being sent (at most one send per reply queue is in flight,
 * so under load a message carries many outcomes and costs no wait when there is none). A message stays under the
 * inline limit, so it needs no claim check unless one outcome alone is that large. A reply queue that is gone (404)
 * means its API process is gone: its callers read the outcome from GET /jobs/:id, so the outcome is only logged as
 * undelivered. Outcomes for the reply queue of this very process (role "all") are handed to its inbox directly.
 */
import type { JobOutcome } from '../../jobs.js';
import { INLINE_LIMIT, type ReplyItem } from './codec.js';
import type { QueueStorage } from './storage.js';
import type { QueueLog } from './types.js';

/** Outcomes stay in a reply queue this long at most (nobody reads them later). */
const REPLY_TTL_S = 3_600;
/** Bytes of JSON one message carries at most before a new one is started (room left for the envelope). */
const BATCH_BYTES = INLINE_LIMIT - 1_024;

/** Where outcomes for this process's own reply queue go instead of a message. */
export interface LocalInbox {
  /** The reply queue's name. */
  readonly name: string;
  /** Settles the waiters of `items`. */
  deliver(items: readonly ReplyItem[]): void;
}

/** Outcomes bound for one message. */
interface Batch {
  items: ReplyItem[];
  bytes: number;
  sent: Promise<void>;
  resolve: () => void;
}

/** The outcomes for one reply queue: batches not yet sent, and whether a send is in flight. */
interface Lane {
  waiting: Batch[];
  busy: boolean;
}

/** The outcomes of one worker, batched per reply queue. */
export class ReplyBatcher {
  readonly #storage: QueueStorage;
  readonly #nodeId: string;
  readonly #log: QueueLog;
  readonly #local: LocalInbox | undefined;
  readonly #lanes = new Map<string, Lane>();
  readonly #flushing = new Set<Promise<void>>();

  constructor(o: { storage: QueueStorage; nodeId: string; log: QueueLog; local?: LocalInbox | undefined }) {
    this.#storage = o.storage;
    this.#nodeId = o.nodeId;
    this.#log = o.log;
    this.#local = o.local;
  }

  /** Sends `outcome` of job or call `id` to `replyTo`; settles once its batch was sent (or could not be). Never rejects. */
  send(replyTo: string, id: string, outcome: JobOutcome): Promise<void> {
    const item: ReplyItem = { id, outcome, node: this.#nodeId };
    if (replyTo === this.#local?.name) {
      this.#local.deliver([item]);
      return Promise.resolve();
    }
    const bytes = Buffer.byteLength(JSON.stringify(item));
    let lane = this.#lanes.get(replyTo);
    if (!lane) {
      lane = { waiting: [], busy: false };
      this.#lanes.set(replyTo, lane);
    }
    let batch = lane.waiting.at(-1);
    if (!batch || (batch.items.length > 0 && batch.bytes + bytes > BATCH_BYTES)) {
      let resolve!: () => void;
      const sent = new Promise<void>((r) => {
        resolve = r;
      });
      batch = { items: [], bytes: 0, sent, resolve };
      lane.waiting.push(batch);
      if (!lane.busy) {
        lane.busy = true;
        const flushing = new Promise<void>((r) => setImmediate(r)).then(() => this.#flush(replyTo, lane));
        this.#flushing.add(flushing);
        void flushing.finally(() => this.#flushing.delete(flushing));
      }
    }
    batch.items.push(item);
    batch.bytes += bytes;
    return batch.sent;
  }

  /** Waits for the batches on their way. */
  async close(): Promise<void> {
    while (this.#flushing.size > 0) await Promise.allSettled([...this.#flushing]);
  }

  /** Sends the lane's batches, and those that gather meanwhile, until none is left. */
  async #flush(replyTo: string, lane: Lane): Promise<void> {
    while (lane.waiting.length > 0) {
      const batches = lane.waiting.splice(0);
      await Promise.all(batches.map((b) => this.#send(replyTo, b)));
    }
    lane.busy = false;
    this.#lanes.delete(replyTo);
  }

  async #send(replyTo: string, batch: Batch): Promise<void> {
    try {
      await this.#storage.send(this.#storage.queue(replyTo), { k: 'replies', items: batch.items }, { messageTimeToLive: REPLY_TTL_S });
    } catch (err) {
      this.#log.warn({ reply_to: replyTo, jobs: batch.items.length, err: String(err) }, 'could not send outcomes to their reply queue');
    }
    batch.resolve();
  }
}
