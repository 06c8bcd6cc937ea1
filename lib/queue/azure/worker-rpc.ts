/**
 * Calls from an API process to one worker: the jobs API for a command that worker runs (status, stdin, cancel).
 * {@link WorkerCalls} (API side) puts the call on the worker's own queue and waits on its reply queue;
 * {@link CallAnswerer} (worker side) answers through the worker's hooks, by the {@link ReplyBatcher}. A call is
 * answered at most once: the worker deletes it before answering, since an answer may take longer than a message
 * stays invisible. A caller that hears nothing in time, or whose worker's queue is gone, gets `worker_lost`.
 */
import { randomUUID } from 'node:crypto';
import { fromSerialized, ToolhostError, toToolhostError } from '../../errors.js';
import type { JobOutcome } from '../../jobs.js';
import type { CallEnvelope } from './codec.js';
import type { ReplyBatcher } from './reply-batcher.js';
import type { ReplyInbox } from './reply-inbox.js';
import { type QueueStorage, statusOf, unavailable } from './storage.js';
import type { WorkerHooks } from './types.js';

/** API side: calls to workers. */
export class WorkerCalls {
  readonly #storage: QueueStorage;
  readonly #inbox: ReplyInbox;

  constructor(o: { storage: QueueStorage; inbox: ReplyInbox }) {
    this.#storage = o.storage;
    this.#inbox = o.inbox;
  }

  /** Calls `op` on worker `nodeId` and waits up to `timeoutMs` for the answer; `worker_lost` when none comes. */
  async call(nodeId: string, op: string, args: unknown, timeoutMs: number): Promise<unknown> {
    const id = randomUUID();
    const answer = this.#inbox.calls.wait(id, { timeoutMs });
    answer.catch(() => {});
    const env: CallEnvelope = { k: 'call', id, op, args, replyTo: this.#inbox.name };
    try {
      const queue = this.#storage.queue(this.#storage.names.node(nodeId));
      await this.#storage.send(queue, env, { messageTimeToLive: Math.ceil(timeoutMs / 1000) + 5 });
    } catch (err) {
      if (statusOf(err) === 404) throw new ToolhostError('worker_lost', `worker ${nodeId} is gone (its queue was removed)`, { node: nodeId });
      throw unavailable(err);
    }
    this.#inbox.expect();
    let outcome: JobOutcome;
    try {
      outcome = await answer;
    } catch (err) {
      if (toToolhostError(err).code !== 'job_deadline') throw err;
      throw new ToolhostError('worker_lost', `worker ${nodeId} did not answer within ${Math.round(timeoutMs / 1000)} s`, { node: nodeId });
    }
    if (!outcome.ok) throw fromSerialized(outcome.error);
    return outcome.value;
  }
}

/** Worker side: answers to calls. */
export class CallAnswerer {
  readonly #hooks: WorkerHooks;
  readonly #replies: ReplyBatcher;

  constructor(o: { hooks: WorkerHooks; replies: ReplyBatcher }) {
    this.#hooks = o.hooks;
    this.#replies = o.replies;
  }

  /** Answers a call (already deleted from its queue) with what the hooks say, or the error they threw. Never rejects. */
  async answer(env: CallEnvelope): Promise<void> {
    let outcome: JobOutcome;
    try {
      outcome = { ok: true, value: await this.#hooks.call(env.op, env.args) };
    } catch (err) {
      outcome = { ok: false, error: toToolhostError(err).toJSON() };
    }
    await this.#replies.send(env.replyTo, env.id, outcome);
  }
}
