/**
 * The JobQueue on Azure Queue Storage, for API and worker processes on many machines. This class only composes:
 * start() opens the storage clients (storage.ts) and the Blob leases (leases.ts), then builds the parts of this
 * process's roles, each in its own file, and nothing of a role it does not have.
 *
 * - API: producer.ts sends a job to the queue of the worker holding its project (a Blob lease says which), or to
 *   the shared `<prefix>-jobs` queue when none does; reply-inbox.ts reads this process's own reply queue
 *   (`<prefix>-replies-<nodeId>`) and wakes the waiting requests by job id; worker-rpc.ts calls a worker about a
 *   command it runs.
 * - Worker: consumer.ts receives from the worker's own queue and the shared one, takes project leases and forwards
 *   jobs of projects another live worker holds; held-jobs.ts keeps a running job invisible, then deletes it or
 *   gives it back; reply-batcher.ts sends outcomes back; worker-rpc.ts answers calls; rescuer.ts moves the queues
 *   of dead workers to the shared one.
 *
 * Delivery is at least once. A job's deliveries are counted across forwards; those that no live worker gave back
 * were to a worker that died. A read, list or search is simply run again; a write, edit or command is not: its
 * caller gets `worker_lost` with the job id. A job whose thread crashed `maxDequeueCount` times goes to the poison
 * queue and its caller gets `job_poisoned`. Every message read from a queue is checked first (codec.ts): one that is
 * no envelope of ours is logged and deleted.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { DEFAULT_DEADLINES } from '../../azure-deadline.js';
import { ToolhostError } from '../../errors.js';
import type { Job, JobOutcome } from '../../jobs.js';
import type { JobQueue, WaitOptions } from '../job-queue.js';
import { Consumer } from './consumer.js';
import { HeldJobs } from './held-jobs.js';
import { Leases } from './leases.js';
import { QueueNames } from './names.js';
import { Producer } from './producer.js';
import { ReplyBatcher } from './reply-batcher.js';
import { ReplyInbox } from './reply-inbox.js';
import { Rescuer } from './rescuer.js';
import { openStorage, type QueueStorage } from './storage.js';
import type { AzureQueueOptions, WorkerHooks } from './types.js';
import { CallAnswerer, WorkerCalls } from './worker-rpc.js';

export type { AzureQueueOptions, QueueLog, WorkerHooks } from './types.js';

/** What an API process runs. */
interface ApiParts {
  inbox: ReplyInbox;
  producer: Producer;
  calls: WorkerCalls;
}

/** What a worker runs. */
interface WorkerParts {
  consumer: Consumer;
  held: HeldJobs;
  replies: ReplyBatcher;
  rescuer: Rescuer;
}

/** Everything a started queue holds: the shared clients, and the parts of this process's roles. */
interface Parts {
  storage: QueueStorage;
  leases: Leases;
  api: ApiParts | undefined;
  worker: WorkerParts | undefined;
}

/** {@link JobQueue} on Azure Queue Storage. */
export class AzureQueue implements JobQueue {
  readonly #o: AzureQueueOptions;
  readonly names: QueueNames;
  #hooks: WorkerHooks | undefined;
  #parts: Parts | undefined;
  #closing: Promise<void> | undefined;

  constructor(o: AzureQueueOptions) {
    this.#o = o;
    this.names = new QueueNames(o.prefix);
  }

  /** This process's name among its peers. */
  get nodeId(): string {
    return this.#o.nodeId;
  }

  /** The leases of this node (project affinity). Available once started. */
  get leases(): Leases {
    return this.#started().leases;
  }

  /** The coordination container (job records live there). Available once started. */
  get container(): ContainerClient {
    return this.#started().storage.container;
  }

  /** Worker side: who answers calls and hears of lost leases. Looked up on each use, so it may be set after start(). */
  setHooks(hooks: WorkerHooks): void {
    this.#hooks = hooks;
  }

  async start(): Promise<void> {
    if (this.#parts) return;
    const { nodeId, log } = this.#o;
    const names = this.names;
    const { deadlineBaseS = DEFAULT_DEADLINES.deadlineBaseS, minBytesPerS = DEFAULT_DEADLINES.minBytesPerS } = this.#o;
    const storage = await openStorage({ connectionString: this.#o.connectionString, names, log, deadlines: { deadlineBaseS, minBytesPerS } });
    await storage.ensure([names.jobs, ...(this.#o.api ? [names.replies(nodeId)] : []), ...(this.#o.worker ? [names.poison, names.node(nodeId)] : [])]);
    const onLost = (id: string): void => this.#hooks?.leaseLost(id);
    const leases = new Leases({ container: storage.container, nodeId, leaseS: this.#o.leaseS, log, onLost, deadline: storage.deadline });
    if (this.#o.worker) await leases.register(names.node(nodeId));
    // The inbox first, then the worker (its outcomes for this process go straight to the inbox), then the rest of
    // the api half (its producer tells the worker's receive loop about jobs it sends).
    const inbox = this.#o.api ? this.#inbox(storage) : undefined;
    const worker = this.#o.worker ? this.#workerParts(storage, leases, inbox) : undefined;
    const parts: Parts = { storage, leases, api: inbox ? this.#apiParts(storage, leases, inbox, worker?.consumer) : undefined, worker };
    this.#parts = parts;
    parts.api?.inbox.start();
    parts.worker?.rescuer.start();
  }

  /** Stops polling; waiters get `shutting_down`; a worker gives up its leases (its copies were written back). */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (!this.#parts) return;
    const { api, worker, leases } = this.#parts;
    await api?.inbox.close(new ToolhostError('shutting_down', 'the server is shutting down; retry against another instance or later'));
    if (worker) {
      worker.consumer.close();
      await worker.rescuer.close();
      await worker.replies.close();
      await worker.held.close();
      await leases.close();
    }
  }

  // ---- API side ----

  async enqueue(job: Job): Promise<void> {
    if (this.#closing) throw new ToolhostError('shutting_down', 'the server is shutting down and accepts no new jobs; retry later');
    await this.#api().producer.enqueue(job);
  }

  /** Registers the waiter synchronously (before the first await), as {@link JobQueue.waitFor} requires. */
  async waitFor(jobId: string, opts: WaitOptions): Promise<JobOutcome> {
    return this.#api().producer.waitFor(jobId, opts);
  }

  /**
   * Calls `op` on worker `nodeId` (the jobs API for a command it runs) and waits up to `timeoutMs` for the answer;
   * `worker_lost` when none comes.
   */
  async call(nodeId: string, op: string, args: unknown, timeoutMs: number): Promise<unknown> {
    return this.#api().calls.call(nodeId, op, args, timeoutMs);
  }

  /** Whether worker `nodeId` still renews its liveness lease. */
  async alive(nodeId: string): Promise<boolean> {
    return this.#started().leases.alive(nodeId);
  }

  /** Jobs this process waits for (0 on a worker-only process). */
  depth(): number {
    return this.#parts?.api?.producer.depth() ?? 0;
  }

  // ---- worker side ----

  async receive(max: number, signal: AbortSignal): Promise<Job[]> {
    return this.#worker().consumer.receive(max, signal);
  }

  async complete(job: Job, outcome: JobOutcome): Promise<void> {
    return this.#worker().held.complete(job, outcome);
  }

  /**
   * The job's thread died under it: give the message back to be delivered again (counted as a delivery, not as a
   * lost worker), or to the poison queue once it has had `maxDequeueCount` deliveries.
   */
  async release(job: Job, reason: string): Promise<void> {
    return this.#worker().held.release(job, reason);
  }

  // ---- composition ----

  #inbox(storage: QueueStorage): ReplyInbox {
    const { nodeId, log, pollMinMs, pollMaxMs } = this.#o;
    return new ReplyInbox({ queue: storage.queue(this.names.replies(nodeId)), storage, log, pollMinMs, pollMaxMs });
  }

  #apiParts(storage: QueueStorage, leases: Leases, inbox: ReplyInbox, consumer: Consumer | undefined): ApiParts {
    const local = consumer && { nodeId: this.#o.nodeId, nudge: (name: string) => consumer.nudge(name) };
    const producer = new Producer({ storage, leases, inbox, jobs: storage.queue(this.names.jobs), maxOutstanding: this.#o.maxOutstanding, local });
    return { inbox, producer, calls: new WorkerCalls({ storage, inbox }) };
  }

  #workerParts(storage: QueueStorage, leases: Leases, inbox: ReplyInbox | undefined): WorkerParts {
    const { nodeId, log, visibilityS, leaseS, maxDequeueCount } = this.#o;
    const jobs = storage.queue(this.names.jobs);
    const replies = new ReplyBatcher({ storage, nodeId, log, local: inbox });
    const held = new HeldJobs({ storage, replies, poison: storage.queue(this.names.poison), visibilityS, maxDequeueCount, log });
    const hooks: WorkerHooks = {
      call: (op, args) => {
        if (!this.#hooks) throw new ToolhostError('internal', 'this process answers no calls');
        return this.#hooks.call(op, args);
      },
      leaseLost: (id) => this.#hooks?.leaseLost(id),
    };
    const answerer = new CallAnswerer({ hooks, replies });
    const consumer = new Consumer({ storage, leases, held, replies, answerer, node: storage.queue(this.names.node(nodeId)), jobs, settings: this.#o, log });
    const rescuer = new Rescuer({ storage, leases, replies, jobs, leaseS, visibilityS, log });
    return { consumer, held, replies, rescuer };
  }

  #started(): Parts {
    if (!this.#parts) throw new ToolhostError('internal', 'the Azure queue was used before start(); await start() first');
    return this.#parts;
  }

  #api(): ApiParts {
    const { api } = this.#started();
    if (!api)
      throw new ToolhostError(
        'not_on_this_role',
        `node ${this.nodeId} runs no API role: it neither enqueues jobs nor calls workers; use a process with role "api" or "all"`,
      );
    return api;
  }

  #worker(): WorkerParts {
    const { worker } = this.#started();
    if (!worker)
      throw new ToolhostError('not_on_this_role', `node ${this.nodeId} runs no worker role: it receives no jobs; use a process with role "worker" or "all"`);
    return worker;
  }
}
