/**
 * Worker side: outcomes of jobs and answers to calls on their way back to the API process that waits for them (its
 * reply queue). Outcomes for one reply queue within one turn of the event loop share a message, so a burst of
 * finished jobs costs one request. A reply queue that is gone (404) means its API process is gone: its callers read
 * the outcome from GET /jobs/:id, so the outcome is only logged as undelivered.
 */
import type { JobOutcome } from '../../jobs.js';
import type { ReplyItem } from './codec.js';
import type { QueueStorage } from './storage.js';
import type { QueueLog } from './types.js';

/** Outcomes stay in a reply queue this long at most (nobody reads them later). */
const REPLY_TTL_S = 3_600;

/** The outcomes of one worker, batched per reply queue. */
export class ReplyBatcher {
  readonly #storage: QueueStorage;
  readonly #nodeId: string;
  readonly #log: QueueLog;
  readonly #batches = new Map<string, { items: ReplyItem[]; sent: Promise<void> }>();

  constructor(o: { storage: QueueStorage; nodeId: string; log: QueueLog }) {
    this.#storage = o.storage;
    this.#nodeId = o.nodeId;
    this.#log = o.log;
  }

  /** Sends `outcome` of job or call `id` to `replyTo`; settles once its batch was sent (or could not be). Never rejects. */
  send(replyTo: string, id: string, outcome: JobOutcome): Promise<void> {
    let batch = this.#batches.get(replyTo);
    if (!batch) {
      const items: ReplyItem[] = [];
      const sent = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.#batches.delete(replyTo);
        try {
          await this.#storage.send(this.#storage.queue(replyTo), { k: 'replies', items }, { messageTimeToLive: REPLY_TTL_S });
        } catch (err) {
          this.#log.warn({ reply_to: replyTo, jobs: items.length, err: String(err) }, 'could not send outcomes to their reply queue');
        }
      });
      batch = { items, sent };
      this.#batches.set(replyTo, batch);
    }
    batch.items.push({ id, outcome, node: this.#nodeId });
    return batch.sent;
  }

  /** Waits for the batches on their way. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#batches.values()].map((b) => b.sent));
  }
}
