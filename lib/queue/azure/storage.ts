/**
 * The storage account as every part of the Azure queue sees it: the queue and blob clients, made once by
 * {@link openStorage} before any part is built, and the three things every part does with a message: send an
 * envelope, open one it received (checked by the codec; a malformed message is logged and deleted here, so no loop
 * ever sees it) and delete one it is done with.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { DequeuedMessageItem, QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { DEFAULT_DEADLINES, type DeadlineSettings, type DeadlineSignal, deadlineSignals } from '../../azure-deadline.js';
import { ToolhostError, toToolhostError } from '../../errors.js';
import { Codec, type Decoded, type Envelope } from './codec.js';
import type { QueueNames } from './names.js';
import type { QueueLog } from './types.js';

const RETRY = { maxTries: 4, retryDelayInMs: 200, maxRetryDelayInMs: 4_000 };

/** The HTTP status of a storage error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode;
}

/** A storage error as the caller of the queue sees it: `queue_unavailable`, unless it already has a code. */
export function unavailable(err: unknown): ToolhostError {
  const e = toToolhostError(err);
  if (e.code !== 'internal') return e;
  // Queue calls are aborted for one reason only: their deadline (AbortSignal.timeout) passed.
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return new ToolhostError(
      'queue_unavailable',
      'the job queue (Azure Queue Storage) did not answer within its client-side deadline (queue.azure.deadlineBaseS + size / queue.azure.minBytesPerS), so the call was dropped; retry later',
      { retry_after_s: 10 },
    );
  }
  return new ToolhostError(
    'queue_unavailable',
    `the job queue (Azure Queue Storage) cannot be reached: ${err instanceof Error ? err.message : String(err)}; retry later`,
  );
}

/** The clients of one deployment's queues and coordination container. */
export class QueueStorage {
  readonly #service: QueueServiceClient;
  readonly container: ContainerClient;
  readonly names: QueueNames;
  readonly codec: Codec;
  /** The abort signal of one call moving `bytes`: its client-side deadline (lib/azure-deadline.ts). */
  readonly deadline: DeadlineSignal;
  readonly #log: QueueLog;

  constructor(o: {
    service: QueueServiceClient;
    container: ContainerClient;
    names: QueueNames;
    log: QueueLog;
    maxBodyBytes?: number;
    deadlines?: DeadlineSettings;
  }) {
    this.#service = o.service;
    this.container = o.container;
    this.names = o.names;
    this.#log = o.log;
    this.deadline = deadlineSignals(o.deadlines ?? DEFAULT_DEADLINES);
    this.codec = new Codec({ container: o.container, names: o.names, maxBodyBytes: o.maxBodyBytes, deadline: this.deadline });
  }

  /** The client of queue `name` (no request). */
  queue(name: string): QueueClient {
    return this.#service.getQueueClient(name);
  }

  /** Clients of the queues `names`, each created unless it exists; `queue_unavailable` when storage cannot be reached. */
  async ensure(names: string[]): Promise<QueueClient[]> {
    const queues = names.map((n) => this.queue(n));
    try {
      await Promise.all(queues.map((q) => q.createIfNotExists({ abortSignal: this.deadline() })));
    } catch (err) {
      throw unavailable(err);
    }
    return queues;
  }

  /** Sends an envelope (by claim check when large). */
  async send(q: QueueClient, env: Envelope, opts: { messageTimeToLive?: number } = {}): Promise<void> {
    const text = await this.codec.encode(env);
    await q.sendMessage(text, { ...opts, abortSignal: this.deadline(text.length) });
  }

  /**
   * The checked envelope of a received message, or null when it is none: then it was logged and deleted (with its
   * claim-check blob). Throws when storage fails; the message turns visible again and is retried.
   */
  async open(q: QueueClient, m: DequeuedMessageItem): Promise<Decoded | null> {
    const decoded = await this.codec.decode(m.messageText);
    if (decoded.ok) return decoded;
    this.#log.warn(
      { queue: q.name, message_id: m.messageId, dequeue_count: m.dequeueCount, why: decoded.why, text: m.messageText.slice(0, 120) },
      'dropped a queue message that is no envelope of ours',
    );
    await this.remove(q, m.messageId, m.popReceipt, decoded.claim);
    return null;
  }

  /** Deletes a message it is done with, and its claim-check blob; one already gone is no error. */
  async remove(q: QueueClient, messageId: string, popReceipt: string, claim: string | undefined): Promise<void> {
    await q.deleteMessage(messageId, popReceipt, { abortSignal: this.deadline() }).catch((err: unknown) => {
      if (statusOf(err) !== 404) this.#log.warn({ message_id: messageId, err: String(err) }, 'could not delete a finished message; it may be delivered again');
    });
    await this.codec.dropClaim(claim);
  }
}

/** Loads the SDKs, makes the clients and the coordination container; `queue_unavailable` when storage cannot be reached. */
export async function openStorage(o: { connectionString: string; names: QueueNames; log: QueueLog; deadlines?: DeadlineSettings }): Promise<QueueStorage> {
  // The SDKs are loaded on first use: a single-machine deployment never pays for them.
  const [{ QueueServiceClient }, { BlobServiceClient }] = await Promise.all([import('@azure/storage-queue'), import('@azure/storage-blob')]);
  const service = QueueServiceClient.fromConnectionString(o.connectionString, { retryOptions: RETRY });
  const container = BlobServiceClient.fromConnectionString(o.connectionString, { retryOptions: RETRY }).getContainerClient(o.names.container);
  const storage = new QueueStorage({ service, container, names: o.names, log: o.log, deadlines: o.deadlines });
  try {
    await container.createIfNotExists({ abortSignal: storage.deadline() });
  } catch (err) {
    throw unavailable(err);
  }
  return storage;
}
