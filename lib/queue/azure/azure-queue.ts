/**
 * The JobQueue on Azure Queue Storage, for API and worker processes on many machines.
 *
 * API side: a job goes to the queue of the worker holding its project (a Blob lease says which), or to the shared
 * `<prefix>-jobs` queue when none does. Outcomes come back on this process's own reply queue
 * (`<prefix>-replies-<nodeId>`), read by one poller that wakes the waiting requests by job id.
 *
 * Worker side: one receive loop polls its own queue and the shared one in turn, in batches of up to 32, fast
 * while messages flow and backing off to `pollMaxMs` when idle. A received job stays invisible while it runs
 * (renewed every third of `visibilityS`, always with the newest pop receipt) and is deleted when its outcome has
 * been sent. Before a job runs, the worker takes its project's lease; a job of a project another live worker
 * holds is forwarded there.
 *
 * Delivery is at least once. A job's deliveries are counted across forwards; those that no live worker gave back
 * were to a worker that died. A read, list or search is simply run again; a write, edit or command is not: its
 * caller gets `worker_lost` with the job id. A job whose thread crashed `maxDequeueCount` times goes to the
 * poison queue and its caller gets `job_poisoned`.
 */
import { randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import type { QueueClient, DequeuedMessageItem } from '@azure/storage-queue';
import { ToolhostError, toToolhostError } from '../../errors.js';
import { type Job, type JobOutcome, isMutating } from '../../jobs.js';
import type { JobQueue, WaitOptions } from '../job-queue.js';
import { Waiters } from '../waiters.js';
import { type CallEnvelope, decode, dropClaim, encode, type Envelope, type JobEnvelope } from './codec.js';
import { Leases } from './leases.js';
import { QueueNames } from './names.js';
import { Backoff, sleep } from './poller.js';

/** Settings of {@link AzureQueue}. */
export interface AzureQueueOptions {
  connectionString: string;
  prefix: string;
  nodeId: string;
  /** Runs the API half (enqueue, reply queue). */
  api: boolean;
  /** Runs the worker half (receive, complete, leases, rescue of dead workers' queues). */
  worker: boolean;
  maxOutstanding: number;
  maxDequeueCount: number;
  visibilityS: number;
  leaseS: number;
  pollMinMs: number;
  pollMaxMs: number;
  log: QueueLog;
}

/** What the queue reports. */
export interface QueueLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Worker-side callbacks: calls from API processes, and a project lease lost to another worker. */
export interface WorkerHooks {
  call(op: string, args: unknown): Promise<unknown>;
  leaseLost(projectId: string): void;
}

/** A job this worker received and has not finished. */
interface Inflight {
  queue: QueueClient;
  messageId: string;
  popReceipt: string;
  dequeueCount: number;
  env: JobEnvelope;
  claim: string | undefined;
  renew: NodeJS.Timeout;
  /** Updates and the delete of one message run one after another: each needs the newest pop receipt. */
  chain: Promise<void>;
}

const RETRY = { maxTries: 4, retryDelayInMs: 200, maxRetryDelayInMs: 4_000 };
/** Outcomes of calls and of replies stay in a reply queue this long at most (nobody reads them later). */
const REPLY_TTL_S = 3_600;

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

function unavailable(err: unknown): ToolhostError {
  const e = toToolhostError(err);
  if (e.code !== 'internal') return e;
  return new ToolhostError('queue_unavailable', `the job queue (Azure Queue Storage) cannot be reached: ${(err as Error).message}; retry later`);
}

/** {@link JobQueue} on Azure Queue Storage. */
export class AzureQueue implements JobQueue {
  readonly #o: AzureQueueOptions;
  readonly names: QueueNames;
  readonly #waiters = new Waiters();
  readonly #calls = new Waiters();
  readonly #inflight = new Map<string, Inflight>();
  readonly #replyBuffers = new Map<string, { items: { id: string; outcome: JobOutcome; node: string }[]; sent: Promise<void> }>();
  readonly #stop = new AbortController();
  #hooks: WorkerHooks | undefined;
  #queues!: { jobs: QueueClient; poison: QueueClient; node?: QueueClient; replies?: QueueClient };
  #container!: ContainerClient;
  #service!: { getQueueClient(name: string): QueueClient };
  #leases!: Leases;
  readonly #replyBackoff: Backoff;
  readonly #receiveBackoff: Backoff;
  #wakeReplies: (() => void) | undefined;
  #replyLoop: Promise<void> | undefined;
  #rescueLoop: Promise<void> | undefined;
  #turn = 0;
  #closed = false;
  /** Requests made to the storage account, for the idle-cost figure. */
  requests = 0;

  constructor(o: AzureQueueOptions) {
    this.#o = o;
    this.names = new QueueNames(o.prefix);
    this.#replyBackoff = new Backoff(o.pollMinMs, o.pollMaxMs);
    this.#receiveBackoff = new Backoff(o.pollMinMs, o.pollMaxMs);
  }

  /** This process's name among its peers. */
  get nodeId(): string {
    return this.#o.nodeId;
  }

  /** The leases of this node (project affinity). */
  get leases(): Leases {
    return this.#leases;
  }

  /** Worker side: who answers calls and hears of lost leases. Set before start(). */
  setHooks(hooks: WorkerHooks): void {
    this.#hooks = hooks;
  }

  async start(): Promise<void> {
    // The SDKs are loaded on first use: a single-machine deployment never pays for them.
    const [{ QueueServiceClient }, { BlobServiceClient }] = await Promise.all([import('@azure/storage-queue'), import('@azure/storage-blob')]);
    const service = QueueServiceClient.fromConnectionString(this.#o.connectionString, { retryOptions: RETRY });
    this.#service = service;
    this.#container = BlobServiceClient.fromConnectionString(this.#o.connectionString, { retryOptions: RETRY }).getContainerClient(this.names.container);
    this.#queues = { jobs: service.getQueueClient(this.names.jobs), poison: service.getQueueClient(this.names.poison) };
    if (this.#o.worker) this.#queues.node = service.getQueueClient(this.names.node(this.#o.nodeId));
    if (this.#o.api) this.#queues.replies = service.getQueueClient(this.names.replies(this.#o.nodeId));
    try {
      await this.#container.createIfNotExists();
      await Promise.all(Object.values(this.#queues).map((q) => q.createIfNotExists()));
    } catch (err) {
      throw unavailable(err);
    }
    this.#leases = new Leases({
      container: this.#container,
      nodeId: this.#o.nodeId,
      leaseS: this.#o.leaseS,
      log: this.#o.log,
      onLost: (id) => this.#hooks?.leaseLost(id),
    });
    if (this.#o.worker) {
      await this.#leases.register(this.names.node(this.#o.nodeId));
      this.#rescueLoop = this.#rescue();
    }
  }

  /** Stops polling; waiters get `shutting_down`; a worker gives up its leases (its copies were written back). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort();
    const err = new ToolhostError('shutting_down', 'the server is shutting down; retry against another instance or later');
    this.#waiters.rejectAll(err);
    this.#calls.rejectAll(err);
    await Promise.allSettled([this.#replyLoop, this.#rescueLoop, ...[...this.#replyBuffers.values()].map((b) => b.sent)]);
    for (const f of this.#inflight.values()) clearInterval(f.renew);
    if (this.#o.worker) await this.#leases.close();
    // Nothing reads this process's replies any more.
    await this.#queues.replies?.deleteIfExists().catch(() => {});
  }

  // ---- API side ----

  async enqueue(job: Job): Promise<void> {
    if (this.#closed) throw new ToolhostError('shutting_down', 'the server is shutting down and accepts no new jobs; retry later');
    if (this.#waiters.size >= this.#o.maxOutstanding) {
      throw new ToolhostError('queue_full', `this API process waits for ${this.#o.maxOutstanding} jobs already; retry after the Retry-After delay`, { retry_after_s: 1 });
    }
    const env: JobEnvelope = { k: 'job', job, replyTo: this.names.replies(this.#o.nodeId) };
    try {
      const owner = await this.#leases.ownerOf(job.projectId);
      if (owner) {
        try {
          await this.#send(this.#service.getQueueClient(this.names.node(owner)), env);
        } catch (err) {
          // The holder is gone and its queue was moved and removed: whoever takes the project next gets it.
          if (statusOf(err) !== 404) throw err;
          await this.#send(this.#queues.jobs, env);
        }
      } else {
        await this.#send(this.#queues.jobs, env);
      }
    } catch (err) {
      throw unavailable(err);
    }
    this.#expectReplies();
  }

  waitFor(jobId: string, opts: WaitOptions): Promise<JobOutcome> {
    const p = this.#waiters.wait(jobId, opts);
    this.#expectReplies();
    return p;
  }

  /**
   * Calls `op` on worker `nodeId` (the jobs API for a command it runs) and waits up to `timeoutMs` for the answer;
   * `worker_lost` when none comes.
   */
  async call(nodeId: string, op: string, args: unknown, timeoutMs: number): Promise<unknown> {
    const id = randomUUID();
    const answer = this.#calls.wait(id, { timeoutMs });
    answer.catch(() => {});
    const env: CallEnvelope = { k: 'call', id, op, args, replyTo: this.names.replies(this.#o.nodeId) };
    try {
      await this.#send(this.#service.getQueueClient(this.names.node(nodeId)), env, { messageTimeToLive: Math.ceil(timeoutMs / 1000) + 5 });
    } catch (err) {
      if (statusOf(err) === 404) throw new ToolhostError('worker_lost', `worker ${nodeId} is gone (its queue was removed)`, { node: nodeId });
      throw unavailable(err);
    }
    this.#expectReplies();
    let outcome: JobOutcome;
    try {
      outcome = await answer;
    } catch (err) {
      if (toToolhostError(err).code !== 'job_deadline') throw err;
      throw new ToolhostError('worker_lost', `worker ${nodeId} did not answer within ${Math.round(timeoutMs / 1000)} s`, { node: nodeId });
    }
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** Whether worker `nodeId` still renews its liveness lease. */
  alive(nodeId: string): Promise<boolean> {
    return this.#leases.alive(nodeId);
  }

  /** The coordination container (job records live there). */
  get container(): ContainerClient {
    return this.#container;
  }

  #expectReplies(): void {
    this.#replyBackoff.reset();
    this.#wakeReplies?.();
    this.#replyLoop ??= this.#pollReplies();
  }

  /** One poller per API process, running while anybody waits. */
  async #pollReplies(): Promise<void> {
    const q = this.#queues.replies!;
    while (!this.#closed) {
      if (this.#waiters.size === 0 && this.#calls.size === 0) {
        await sleep(60_000, this.#stop.signal, (wake) => (this.#wakeReplies = wake));
        continue;
      }
      let found = 0;
      try {
        this.requests++;
        const res = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 });
        found = res.receivedMessageItems.length;
        await Promise.all(res.receivedMessageItems.map((m) => this.#takeReply(q, m)));
      } catch (err) {
        if (!this.#closed) this.#o.log.warn({ err: String(err) }, 'reply queue poll failed; retrying');
      }
      const delay = this.#replyBackoff.next(found);
      if (delay > 0) await sleep(delay, this.#stop.signal, (wake) => (this.#wakeReplies = wake));
    }
  }

  async #takeReply(q: QueueClient, m: DequeuedMessageItem): Promise<void> {
    const { env, claim } = await decode(m.messageText, this.#container);
    if (env.k === 'replies') {
      for (const item of env.items) {
        const outcome: JobOutcome = { ...item.outcome, worker: item.node };
        if (this.#calls.has(item.id)) this.#calls.settle(item.id, outcome);
        else this.#waiters.settle(item.id, outcome);
      }
    }
    this.requests++;
    await q.deleteMessage(m.messageId, m.popReceipt).catch(() => {});
    await dropClaim(this.#container, claim);
  }

  // ---- worker side ----

  async receive(max: number, signal: AbortSignal): Promise<Job[]> {
    const queues = [this.#queues.node!, this.#queues.jobs];
    while (!signal.aborted && !this.#closed) {
      const q = queues[this.#turn++ % queues.length]!;
      let items: DequeuedMessageItem[] = [];
      try {
        this.requests++;
        items = (await q.receiveMessages({ numberOfMessages: Math.max(1, Math.min(32, max)), visibilityTimeout: this.#o.visibilityS })).receivedMessageItems;
      } catch (err) {
        this.#o.log.warn({ err: String(err), queue: q.name }, 'queue poll failed; retrying');
      }
      const jobs: Job[] = [];
      const admitted = await Promise.all(items.map((m) => this.#admit(q, m).catch((err: unknown) => this.#failAdmit(m, err))));
      for (const job of admitted) if (job) jobs.push(job);
      const delay = this.#receiveBackoff.next(items.length);
      if (jobs.length > 0) return jobs;
      if (delay > 0) await sleep(delay, signal, () => {});
    }
    return [];
  }

  /** A message that could not be looked at (storage hiccup) becomes visible again on its own. */
  async #failAdmit(m: DequeuedMessageItem, err: unknown): Promise<null> {
    this.#o.log.warn({ message_id: m.messageId, err: String(err) }, 'could not admit a message; it will be delivered again');
    return null;
  }

  /** Decides what a received message is for: a job to run here (returned), or one handled on the spot. */
  async #admit(q: QueueClient, m: DequeuedMessageItem): Promise<Job | null> {
    const { env, claim } = await decode(m.messageText, this.#container);
    if (env.k === 'call') {
      // A call is answered once (at most): it may wait longer than the message stays invisible.
      await this.#delete(q, m.messageId, m.popReceipt, claim);
      void this.#answer(env);
      return null;
    }
    if (env.k !== 'job') {
      await this.#delete(q, m.messageId, m.popReceipt, claim);
      return null;
    }
    const { job } = env;
    const deliveries = (env.prior ?? 0) + m.dequeueCount;
    if (deliveries > this.#o.maxDequeueCount) {
      await this.#poison(env, `it was delivered ${deliveries - 1} times without finishing`);
      await this.#delete(q, m.messageId, m.popReceipt, claim);
      return null;
    }
    const lost = deliveries - 1 - (env.released ?? 0);
    if (lost > 0 && isMutating(job.type)) {
      const error = new ToolhostError(
        'worker_lost',
        `the worker running job ${job.id} (${job.type}) stopped before it finished; it was not run again because it may have changed the project in part. Check the project's state, then retry if needed`,
        { job_id: job.id },
      );
      await this.#reply(env.replyTo, job.id, { ok: false, error: error.toJSON() });
      await this.#delete(q, m.messageId, m.popReceipt, claim);
      return null;
    }
    const claimed = await this.#leases.claim(job.projectId);
    if (!claimed.mine) {
      if ('yield' in claimed) {
        // A peer holds fewer projects: leave it this one for a poll or so (this delivery does not count).
        this.requests++;
        await q.updateMessage(m.messageId, m.popReceipt, await encode({ ...env, prior: (env.prior ?? 0) - 1 }, this.#container), Math.max(1, Math.ceil(this.#o.pollMaxMs / 1000)));
        await dropClaim(this.#container, claim);
      } else if (claimed.alive) {
        // Another worker holds the project: forward (this delivery does not count).
        await this.#send(this.#service.getQueueClient(this.names.node(claimed.owner)), { ...env, prior: deliveries - 1 });
        await this.#delete(q, m.messageId, m.popReceipt, claim);
      } else {
        // Its holder died and its lease has not expired yet: look again in a third of a lease.
        this.requests++;
        await q.updateMessage(m.messageId, m.popReceipt, await encode({ ...env, prior: (env.prior ?? 0) - 1 }, this.#container), Math.ceil(this.#o.leaseS / 3));
        await dropClaim(this.#container, claim);
      }
      return null;
    }
    const f: Inflight = {
      queue: q,
      messageId: m.messageId,
      popReceipt: m.popReceipt,
      dequeueCount: m.dequeueCount,
      env,
      claim,
      chain: Promise.resolve(),
      renew: setInterval(() => this.#renew(f), (this.#o.visibilityS * 1000) / 3),
    };
    f.renew.unref();
    this.#inflight.set(job.id, f);
    return job;
  }

  #renew(f: Inflight): void {
    f.chain = f.chain.then(async () => {
      try {
        this.requests++;
        // Always with a visibility timeout (without one the message would turn visible at once) and the newest receipt.
        const r = await f.queue.updateMessage(f.messageId, f.popReceipt, undefined, this.#o.visibilityS);
        f.popReceipt = r.popReceipt!;
      } catch (err) {
        this.#o.log.warn({ job_id: f.env.job.id, err: String(err) }, 'could not renew a running job\'s invisibility; it may be delivered again');
      }
    });
  }

  async complete(job: Job, outcome: JobOutcome): Promise<void> {
    const f = this.#inflight.get(job.id);
    if (!f) return;
    this.#inflight.delete(job.id);
    clearInterval(f.renew);
    await this.#reply(f.env.replyTo, job.id, outcome);
    await f.chain;
    await this.#delete(f.queue, f.messageId, f.popReceipt, f.claim);
  }

  /**
   * The job's thread died under it: give the message back to be delivered again (counted as a delivery, not as a
   * lost worker), or to the poison queue once it has had `maxDequeueCount` deliveries.
   */
  async release(job: Job, reason: string): Promise<void> {
    const f = this.#inflight.get(job.id);
    if (!f) return;
    this.#inflight.delete(job.id);
    clearInterval(f.renew);
    await f.chain;
    const deliveries = (f.env.prior ?? 0) + f.dequeueCount;
    if (deliveries >= this.#o.maxDequeueCount) {
      await this.#poison(f.env, `its thread crashed on each of ${deliveries} deliveries (${reason})`);
      await this.#delete(f.queue, f.messageId, f.popReceipt, f.claim);
      return;
    }
    this.requests++;
    const text = await encode({ ...f.env, released: (f.env.released ?? 0) + 1 }, this.#container);
    await f.queue.updateMessage(f.messageId, f.popReceipt, text, Math.min(30, 2 ** deliveries));
    await dropClaim(this.#container, f.claim);
  }

  depth(): number {
    return this.#waiters.size;
  }

  async #poison(env: JobEnvelope, why: string): Promise<void> {
    const { job } = env;
    await this.#send(this.#queues.poison, env, { messageTimeToLive: -1 });
    const error = new ToolhostError('job_poisoned', `job ${job.id} (${job.type}) was moved to the ${this.names.poison} queue: ${why}. It will not be retried; report it with the job_id`, {
      job_id: job.id,
      queue: this.names.poison,
    });
    this.#o.log.error({ job_id: job.id, project_id: job.projectId, type: job.type, why }, 'job moved to the poison queue');
    await this.#reply(env.replyTo, job.id, { ok: false, error: error.toJSON() });
  }

  async #answer(env: CallEnvelope): Promise<void> {
    let outcome: JobOutcome;
    try {
      if (!this.#hooks) throw new ToolhostError('internal', 'this process answers no calls');
      outcome = { ok: true, value: await this.#hooks.call(env.op, env.args) };
    } catch (err) {
      outcome = { ok: false, error: toToolhostError(err).toJSON() };
    }
    await this.#reply(env.replyTo, env.id, outcome);
  }

  /** Sends an outcome to a reply queue; outcomes for one queue within one turn of the event loop share a message. */
  #reply(replyTo: string, id: string, outcome: JobOutcome): Promise<void> {
    let buf = this.#replyBuffers.get(replyTo);
    if (!buf) {
      const items: { id: string; outcome: JobOutcome; node: string }[] = [];
      const sent = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.#replyBuffers.delete(replyTo);
        try {
          await this.#send(this.#service.getQueueClient(replyTo), { k: 'replies', items }, { messageTimeToLive: REPLY_TTL_S });
        } catch (err) {
          // 404: the API process is gone (its queue with it); its callers get the outcome from GET /jobs/:id.
          this.#o.log.warn({ reply_to: replyTo, jobs: items.length, err: String(err) }, 'could not send outcomes to their reply queue');
        }
      });
      buf = { items, sent };
      this.#replyBuffers.set(replyTo, buf);
    }
    buf.items.push({ id, outcome, node: this.#o.nodeId });
    return buf.sent;
  }

  async #send(q: QueueClient, env: Envelope, opts: { messageTimeToLive?: number } = {}): Promise<void> {
    this.requests++;
    await q.sendMessage(await encode(env, this.#container), opts);
  }

  async #delete(q: QueueClient, messageId: string, popReceipt: string, claim: string | undefined): Promise<void> {
    this.requests++;
    await q.deleteMessage(messageId, popReceipt).catch((err: unknown) => {
      if (statusOf(err) !== 404) this.#o.log.warn({ message_id: messageId, err: String(err) }, 'could not delete a finished message; it may be delivered again');
    });
    await dropClaim(this.#container, claim);
  }

  /**
   * Moves the queues of dead workers to the shared queue, so their jobs run elsewhere: one adopter per dead
   * worker (its liveness lease), until the queue is empty, jobs it had taken included (they turn visible once
   * their invisibility runs out).
   */
  async #rescue(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      await sleep(this.#o.leaseS * 1000 * (0.5 + Math.random() * 0.5), signal, () => {});
      if (signal.aborted) return;
      try {
        for (const dead of await this.#leases.deadNodes()) {
          if (signal.aborted || !(await this.#leases.adopt(dead.nodeId))) continue;
          this.#o.log.warn({ node: dead.nodeId, queue: dead.queue }, 'worker stopped renewing its lease; moving its queue to the shared one');
          await this.#drain(this.#service.getQueueClient(dead.queue), signal);
          await this.#leases.bury(dead.nodeId);
        }
      } catch (err) {
        this.#o.log.warn({ err: String(err) }, 'rescue of dead workers\' queues failed; retrying');
      }
    }
  }

  async #drain(q: QueueClient, signal: AbortSignal): Promise<void> {
    const until = Date.now() + (this.#o.visibilityS + 60) * 1000;
    while (!signal.aborted && Date.now() < until) {
      this.requests++;
      const { receivedMessageItems: items } = await q.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
      for (const m of items) {
        const { env, claim } = await decode(m.messageText, this.#container);
        if (env.k === 'job') await this.#send(this.#queues.jobs, { ...env, prior: (env.prior ?? 0) + m.dequeueCount - 1 });
        else if (env.k === 'call') {
          const error = new ToolhostError('worker_lost', 'the worker running this job stopped', {});
          await this.#reply(env.replyTo, env.id, { ok: false, error: error.toJSON() });
        }
        await this.#delete(q, m.messageId, m.popReceipt, claim);
      }
      if (items.length === 0) {
        this.requests++;
        const { approximateMessagesCount } = await q.getProperties();
        if (!approximateMessagesCount) break;
        await sleep(1_000, signal, () => {});
      }
    }
    await q.deleteIfExists();
  }
}
