/**
 * Queue messages: base64 JSON envelopes, checked field by field on the way in. A body over {@link INLINE_LIMIT}
 * goes to a blob and the message carries its name (the claim-check pattern), because a queue message holds at most
 * 64 KiB and base64 grows text by a third.
 *
 * Whatever a queue holds may have been put there by something other than a toolhost of this version: decode checks
 * every envelope against the schemas below and turns what does not fit into a {@link Malformed} answer (its reader
 * logs and deletes the message) instead of a value of the wrong shape. Names that lead somewhere must be of their
 * kind: a reply queue is one of this deployment's reply queues, a claim check a `claims/` blob no larger than
 * `maxBodyBytes`; so a message can make a worker neither write into the jobs queue nor delete a job record.
 * Storage errors (the blob cannot be read now) are thrown instead: the message turns visible again and is retried.
 */
import { randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { z } from 'zod';
import { type DeadlineSignal, deadlineSignals } from '../../azure-deadline.js';
import { ERROR_STATUS, type ErrorCode } from '../../errors.js';
import type { Job, JobOutcome } from '../../jobs.js';
import { PROJECT_ID_PATTERN } from '../../schemas.js';
import { BLOBS, type QueueNames } from './names.js';

/** Largest JSON body sent inline (48 KiB: 64 KiB once base64-encoded). */
export const INLINE_LIMIT = 48 * 1024;

/**
 * Largest body a claim check may hold: well above the largest legitimate one (a 16 MiB write, or a batch of
 * outcomes), low enough that a planted blob cannot exhaust the memory of whoever reads it.
 */
export const MAX_BODY_BYTES = 256 * 1024 * 1024;

/** Job and call ids (UUIDs in practice): safe in blob names and log lines. */
const id = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, 'must be 1-128 letters, digits, ".", "_" or "-"');
const queueName = z.string().max(63);
/** A delivery count; `prior` goes below zero while a job is left to a peer (those deliveries do not count). */
const deliveries = z.number().int().min(-1_000_000).max(1_000_000);

const job = z.object({
  id,
  // The worker's handler registry knows the types; the queue only checks that it is a name.
  type: z.string().regex(/^[a-z][a-z0-9._-]{0,63}$/, 'must be a job type name'),
  // A job that does not say is taken to change its project: never run again silently after its worker died.
  mutates: z.boolean().default(true),
  projectId: z.string().regex(PROJECT_ID_PATTERN, 'must be a valid project id'),
  payload: z.record(z.string(), z.unknown()),
  enqueuedAt: z.number(),
  // Only logged (and the HTTP front takes 128 characters at most): bounded, not shaped.
  requestId: z.string().max(256).optional(),
});

const serializedError = z.object({
  // A code this version does not know (a newer worker's) reads as `internal`, as fromSerialized would make it.
  code: z
    .string()
    .max(64)
    .transform((c): ErrorCode => (Object.hasOwn(ERROR_STATUS, c) ? (c as ErrorCode) : 'internal')),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

const outcome = z.discriminatedUnion('ok', [z.object({ ok: z.literal(true), value: z.unknown() }), z.object({ ok: z.literal(false), error: serializedError })]);

const jobEnvelope = z.object({
  k: z.literal('job'),
  job,
  replyTo: queueName,
  prior: deliveries.optional(),
  released: deliveries.min(0).optional(),
  yielded: z.boolean().optional(),
});

const callEnvelope = z.object({
  k: z.literal('call'),
  id,
  op: z.string().regex(/^[A-Za-z][A-Za-z_]{0,31}$/, 'must be an operation name'),
  args: z.unknown(),
  replyTo: queueName,
});

const replyItem = z.object({ id, outcome, node: z.string().min(1).max(300) });

const repliesEnvelope = z.object({
  k: z.literal('replies'),
  // Outcomes sent within one turn of a worker's event loop: thousands at the very most.
  items: z.array(replyItem).max(10_000),
});

const envelope = z.discriminatedUnion('k', [jobEnvelope, callEnvelope, repliesEnvelope]);

const claimCheck = z.object({ k: z.literal('claim'), blob: z.string().refine(BLOBS.isClaim, 'must name a claims/<uuid> blob') });

/** A message as it is on the queue: an envelope, or the claim check of one (never of another claim check). */
const outer = z.discriminatedUnion('k', [claimCheck, jobEnvelope, callEnvelope, repliesEnvelope]);

/** A job on its way to a worker. */
export interface JobEnvelope {
  k: 'job';
  job: Job;
  /** The reply queue of the API process that waits for it. */
  replyTo: string;
  /** Deliveries before this message was forwarded (a forward starts a new message at dequeueCount 1). */
  prior?: number | undefined;
  /** Deliveries that a worker gave back alive (its thread crashed): the rest were to workers that died. */
  released?: number | undefined;
  /** A worker left the job's free project to the peer it was sent to, which takes it instead of passing it on. */
  yielded?: boolean | undefined;
}

/** A call to one worker: the jobs API for a command it runs (status, stdin, cancel). */
export interface CallEnvelope {
  k: 'call';
  id: string;
  op: string;
  args: unknown;
  replyTo: string;
}

/** One outcome of a job or call, with the worker that made it. */
export interface ReplyItem {
  id: string;
  outcome: JobOutcome;
  node: string;
}

/** Outcomes of jobs and calls, batched per reply queue. */
export interface RepliesEnvelope {
  k: 'replies';
  items: ReplyItem[];
}

/** Every message body. */
export type Envelope = JobEnvelope | CallEnvelope | RepliesEnvelope;

/** A message that is no envelope of ours: why, and the claim-check blob to delete with it, if it named a valid one. */
export interface Malformed {
  ok: false;
  why: string;
  claim?: string | undefined;
}

/** A decoded message; `claim` names the blob to delete once the message is done with. */
export interface Decoded {
  ok: true;
  env: Envelope;
  claim?: string | undefined;
}

/** Encodes and decodes the messages of one deployment. */
export class Codec {
  readonly #container: ContainerClient;
  readonly #names: QueueNames;
  readonly #maxBodyBytes: number;
  readonly #deadline: DeadlineSignal;

  constructor(o: { container: ContainerClient; names: QueueNames; maxBodyBytes?: number; deadline?: DeadlineSignal }) {
    this.#container = o.container;
    this.#deadline = o.deadline ?? deadlineSignals();
    this.#names = o.names;
    this.#maxBodyBytes = o.maxBodyBytes ?? MAX_BODY_BYTES;
  }

  /** Encodes an envelope as message text, parking a large one in a blob. */
  async encode(env: Envelope): Promise<string> {
    let json = JSON.stringify(env);
    if (Buffer.byteLength(json) > INLINE_LIMIT) {
      const blob = BLOBS.claim(randomUUID());
      const bytes = Buffer.byteLength(json);
      await this.#container.getBlockBlobClient(blob).upload(json, bytes, { abortSignal: this.#deadline(bytes) });
      json = JSON.stringify({ k: 'claim', blob });
    }
    return Buffer.from(json).toString('base64');
  }

  /** Decodes message text into a checked envelope, or says why it is none. Throws only when storage fails. */
  async decode(text: string): Promise<Decoded | Malformed> {
    const first = check(outer, Buffer.from(text, 'base64').toString('utf8'));
    if (!first.ok) return first;
    if (first.value.k !== 'claim') return this.#routable(first.value, undefined);
    const claim = first.value.blob;
    const body = await this.#download(claim);
    if (typeof body !== 'string') return { ok: false, why: body.why, claim };
    const inner = check(envelope, body);
    if (!inner.ok) return { ...inner, claim };
    return this.#routable(inner.value, claim);
  }

  /** Deletes a claim-check blob (best effort: a leftover costs storage, not correctness). */
  async dropClaim(claim: string | undefined): Promise<void> {
    if (claim)
      await this.#container
        .getBlockBlobClient(claim)
        .deleteIfExists({ abortSignal: this.#deadline() })
        .catch(() => {});
  }

  /** A checked envelope, once its reply queue is one of ours. */
  #routable(checked: z.infer<typeof envelope>, claim: string | undefined): Decoded | Malformed {
    if (checked.k !== 'replies' && !this.#names.isReplies(checked.replyTo)) {
      return { ok: false, why: `replyTo: ${JSON.stringify(checked.replyTo).slice(0, 80)} is not a reply queue of prefix "${this.#names.prefix}"`, claim };
    }
    // The one place where checked data takes the types the queue works with (the schemas above mirror them).
    return { ok: true, env: checked as Envelope, claim };
  }

  /** The claim's body, read no further than the limit; a blob that is gone or too large is malformed. */
  async #download(claim: string): Promise<string | { why: string }> {
    const res = await this.#container
      .getBlockBlobClient(claim)
      // The body is read within the deadline too: a claim is never larger than the limit.
      .download(0, undefined, { abortSignal: this.#deadline(this.#maxBodyBytes) })
      .catch((err: unknown) => {
        if ((err as { statusCode?: number }).statusCode === 404) return null;
        throw err;
      });
    if (!res) return { why: `its claim-check blob ${claim} is gone` };
    const stream = res.readableStreamBody;
    const tooLarge = { why: `its claim-check blob holds more than ${this.#maxBodyBytes} bytes` };
    if (!stream) return { why: `its claim-check blob ${claim} has no body` };
    if ((res.contentLength ?? 0) > this.#maxBodyBytes) {
      stream.destroy();
      return tooLarge;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > this.#maxBodyBytes) {
        stream.destroy();
        return tooLarge;
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

/** Parses JSON `text` with `schema`: its value, or the first thing wrong with it. */
function check<T>(schema: z.ZodType<T>, text: string): { ok: true; value: T } | Malformed {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, why: 'it is not JSON' };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { ok: false, why: `it is no envelope of ours (${where}${issue?.message ?? 'invalid'})` };
}
