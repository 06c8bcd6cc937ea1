/**
 * The byte-moving calls of the Azure store (azure-store.ts), each under a deadline scaled to its size
 * (lib/azure-deadline.ts): a download as a stream whose deadline grows to the blob's size once the headers say it
 * and ends when the stream does, a download into a file, an upload of a file in parallel blocks.
 */
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobClient, BlobUploadCommonResponse, BlockBlobParallelUploadOptions, StorageRetryOptions } from '@azure/storage-blob';
import { CallDeadline, type DeadlineSettings } from '../azure-deadline.js';
import { ToolhostError } from '../errors.js';
import { statusOf } from './azure-errors.js';

/** Block size of uploads, and the size above which a file goes up in parallel blocks rather than one request. */
const BLOCK_BYTES = 8 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;
/** How often a download stream that drops is resumed (on the same ETag) before it fails. */
const DOWNLOAD_RESUMES = 5;

/**
 * Retries of production, fitted inside a call's base deadline: 4 tries, 0 + 1 + 3 s apart for the default 10 s
 * (a tenth of the base, doubling), so a briefly unreachable account is ridden out and a dead one is reported with
 * its own error (ECONNREFUSED, a 503) well before the deadline cuts the call short. The SDK's default (4 tries, 4 s
 * base, no deadline) waits 16 s for the same answer, and a half-open connection forever.
 */
export function retryOptionsFor(deadlines: DeadlineSettings): StorageRetryOptions {
  const step = Math.max(10, Math.round(deadlines.deadlineBaseS * 100));
  return { maxTries: 4, retryDelayInMs: step, maxRetryDelayInMs: step * 4 };
}

/** Turns a failure of `action` (with its deadline, to name it when it passed) into what the store throws. */
export type StoreErrorMapper = (action: string, err: unknown, deadline: CallDeadline) => unknown;

/**
 * Starts the download of a blob as a stream (resumed on the same ETag if the connection drops). The deadline runs
 * from the request to the stream's end; a stream that outlives it fails with the mapped error. A 404 is thrown as
 * the SDK's error (callers tell "absent" from it); any other failure is mapped.
 */
export async function openBlob(
  blob: BlobClient,
  deadlines: DeadlineSettings,
  mapError: StoreErrorMapper,
): Promise<{ stream: Readable; etag: string | undefined; size: number }> {
  const action = `download ${blob.name}`;
  const deadline = new CallDeadline(deadlines, action);
  let res: Awaited<ReturnType<BlobClient['download']>>;
  try {
    res = await blob.download(0, undefined, { maxRetryRequests: DOWNLOAD_RESUMES, abortSignal: deadline.signal });
  } catch (err) {
    deadline.clear();
    throw statusOf(err) === 404 ? err : mapError(action, err, deadline);
  }
  const size = res.contentLength ?? 0;
  deadline.grow(size);
  const raw = res.readableStreamBody;
  if (!raw) {
    deadline.clear();
    throw new ToolhostError('internal', `internal error: the download of ${blob.name} returned no body`);
  }
  const body = raw instanceof Readable ? raw : Readable.from(raw);
  const out = new PassThrough();
  body.on('error', (err) => {
    const mapped = mapError(action, err, deadline);
    out.destroy(mapped instanceof Error ? mapped : new Error(String(mapped)));
  });
  // However the stream ends (read to its end, failed, or dropped by its reader), the clock stops and the socket goes.
  out.on('close', () => {
    deadline.clear();
    if (!body.destroyed) body.destroy();
  });
  body.pipe(out);
  return { stream: out, etag: res.etag, size };
}

/** Downloads a blob into `file` (removed again on failure); resolves with the ETag of the bytes written. */
export async function downloadBlob(blob: BlobClient, file: string, deadlines: DeadlineSettings, mapError: StoreErrorMapper): Promise<string | undefined> {
  try {
    const { stream, etag } = await openBlob(blob, deadlines, mapError);
    await pipeline(stream, createWriteStream(file, { mode: 0o600 }));
    return etag;
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}

/**
 * Uploads `file` (`size` bytes) as the blob, in parallel blocks above one block's size, within base + size / rate.
 * A failure is thrown as `onError` makes it (with the deadline, to name it when it passed).
 */
export async function uploadBlobFile(
  blob: BlobClient,
  file: string,
  size: number,
  deadlines: DeadlineSettings,
  options: Pick<BlockBlobParallelUploadOptions, 'conditions' | 'blobHTTPHeaders'>,
  onError: (err: unknown, deadline: CallDeadline) => unknown,
): Promise<BlobUploadCommonResponse> {
  const deadline = new CallDeadline(deadlines, `upload ${blob.name}`, size);
  try {
    return await blob.getBlockBlobClient().uploadFile(file, {
      ...options,
      blockSize: BLOCK_BYTES,
      maxSingleShotSize: BLOCK_BYTES,
      concurrency: UPLOAD_CONCURRENCY,
      abortSignal: deadline.signal,
    });
  } catch (err) {
    throw onError(err, deadline);
  } finally {
    deadline.clear();
  }
}
