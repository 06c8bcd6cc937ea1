/**
 * Queue messages: base64 JSON envelopes. A body over {@link INLINE_LIMIT} goes to a blob and the message carries
 * its name (the claim-check pattern), because a queue message holds at most 64 KiB and base64 grows text by a
 * third.
 */
import { randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import type { Job, JobOutcome } from '../../jobs.js';
import { BLOBS } from './names.js';

/** Largest JSON body sent inline (48 KiB: 64 KiB once base64-encoded). */
export const INLINE_LIMIT = 48 * 1024;

/** A job on its way to a worker. */
export interface JobEnvelope {
  k: 'job';
  job: Job;
  /** The reply queue of the API process that waits for it. */
  replyTo: string;
  /** Deliveries before this message was forwarded (a forward starts a new message at dequeueCount 1). */
  prior?: number;
  /** Deliveries that a worker gave back alive (its thread crashed): the rest were to workers that died. */
  released?: number;
}

/** A call to one worker: the jobs API for a command it runs (status, stdin, cancel). */
export interface CallEnvelope {
  k: 'call';
  id: string;
  op: string;
  args: unknown;
  replyTo: string;
}

/** Outcomes of jobs and calls, batched per reply queue. */
export interface RepliesEnvelope {
  k: 'replies';
  items: { id: string; outcome: JobOutcome; node: string }[];
}

/** Every message body. */
export type Envelope = JobEnvelope | CallEnvelope | RepliesEnvelope;

interface ClaimCheck {
  k: 'claim';
  blob: string;
}

/** Encodes an envelope as message text, parking a large one in a blob. */
export async function encode(env: Envelope, container: ContainerClient): Promise<string> {
  let json = JSON.stringify(env);
  if (Buffer.byteLength(json) > INLINE_LIMIT) {
    const blob = BLOBS.claim(randomUUID());
    await container.getBlockBlobClient(blob).upload(json, Buffer.byteLength(json));
    json = JSON.stringify({ k: 'claim', blob } satisfies ClaimCheck);
  }
  return Buffer.from(json).toString('base64');
}

/** Decodes message text; `claim` names the blob to delete once the message is done with. */
export async function decode(text: string, container: ContainerClient): Promise<{ env: Envelope; claim?: string }> {
  const outer = JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as Envelope | ClaimCheck;
  if (outer.k !== 'claim') return { env: outer };
  const body = await container.getBlockBlobClient(outer.blob).downloadToBuffer();
  return { env: JSON.parse(body.toString('utf8')) as Envelope, claim: outer.blob };
}

/** Deletes a claim-check blob (best effort: a leftover costs storage, not correctness). */
export async function dropClaim(container: ContainerClient, claim: string | undefined): Promise<void> {
  if (claim) await container.getBlockBlobClient(claim).deleteIfExists().catch(() => {});
}
