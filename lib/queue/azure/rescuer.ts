/**
 * Worker side: moves the queues of dead workers to the shared queue, so their jobs run elsewhere. About once a
 * lease (with jitter, so peers do not look in step) each worker lists the workers that stopped renewing their
 * liveness lease. One adopter per dead worker (it takes that lease) moves its queue until it is empty, jobs the
 * dead worker had taken included (they turn visible once their invisibility runs out), then deletes it. A moved job
 * keeps its delivery count, so the next worker knows a dead one had it; a pending call is answered `worker_lost`.
 */
import type { QueueClient } from '@azure/storage-queue';
import { ToolhostError } from '../../errors.js';
import type { Leases } from './leases.js';
import { sleep } from './poller.js';
import type { ReplyBatcher } from './reply-batcher.js';
import type { QueueStorage } from './storage.js';
import type { QueueLog } from './types.js';

/** The rescuer of one worker. */
export class Rescuer {
  readonly #storage: QueueStorage;
  readonly #leases: Leases;
  readonly #replies: ReplyBatcher;
  readonly #jobs: QueueClient;
  readonly #leaseS: number;
  readonly #visibilityS: number;
  readonly #log: QueueLog;
  readonly #stop = new AbortController();
  #loop: Promise<void> = Promise.resolve();

  constructor(o: { storage: QueueStorage; leases: Leases; replies: ReplyBatcher; jobs: QueueClient; leaseS: number; visibilityS: number; log: QueueLog }) {
    this.#storage = o.storage;
    this.#leases = o.leases;
    this.#replies = o.replies;
    this.#jobs = o.jobs;
    this.#leaseS = o.leaseS;
    this.#visibilityS = o.visibilityS;
    this.#log = o.log;
  }

  start(): void {
    this.#loop = this.#run();
  }

  /** Stops looking; a queue being moved is left for the next adopter. */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      await sleep(this.#leaseS * 1000 * (0.5 + Math.random() * 0.5), signal, () => {});
      if (signal.aborted) return;
      try {
        for (const dead of await this.#leases.deadNodes()) {
          if (signal.aborted || !(await this.#leases.adopt(dead.nodeId))) continue;
          if (this.#storage.names.isNode(dead.queue)) {
            this.#log.warn({ node: dead.nodeId, queue: dead.queue }, 'worker stopped renewing its lease; moving its queue to the shared one');
            // Stopped half-way (shutdown): the adoption runs out and another worker takes over.
            if (!(await this.#drain(this.#storage.queue(dead.queue), signal))) return;
          } else {
            // Only a worker's own queue is moved and deleted, never the shared one or a reply queue.
            this.#log.warn(
              { node: dead.nodeId, queue: dead.queue },
              "a dead worker's lease names no worker queue; forgetting the worker, leaving the queue alone",
            );
          }
          await this.#leases.bury(dead.nodeId);
        }
      } catch (err) {
        this.#log.warn({ err: String(err) }, "rescue of dead workers' queues failed; retrying");
      }
    }
  }

  /** Moves queue `q`'s messages until it is empty (or its last jobs' invisibility has surely run out), then deletes it. */
  async #drain(q: QueueClient, signal: AbortSignal): Promise<boolean> {
    const until = Date.now() + (this.#visibilityS + 60) * 1000;
    while (!signal.aborted && Date.now() < until) {
      const abortSignal = this.#storage.deadline();
      const { receivedMessageItems: items } = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60, abortSignal });
      for (const m of items) {
        const decoded = await this.#storage.open(q, m);
        if (!decoded) continue;
        const { env, claim } = decoded;
        if (env.k === 'job') await this.#storage.send(this.#jobs, { ...env, prior: (env.prior ?? 0) + m.dequeueCount - 1 });
        else if (env.k === 'call') {
          const error = new ToolhostError('worker_lost', 'the worker running this job stopped', {});
          await this.#replies.send(env.replyTo, env.id, { ok: false, error: error.toJSON() });
        }
        await this.#storage.remove(q, m.messageId, m.popReceipt, claim);
      }
      if (items.length === 0) {
        const { approximateMessagesCount } = await q.getProperties({ abortSignal: this.#storage.deadline() });
        if (!approximateMessagesCount) break;
        await sleep(1_000, signal, () => {});
      }
    }
    if (signal.aborted) return false;
    await q.deleteIfExists({ abortSignal: this.#storage.deadline() });
    return true;
  }
}
