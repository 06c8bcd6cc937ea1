/**
 * Reading a tar.gz into a {@link TreeWriter}: the file is gunzipped in large chunks (on libuv's pool, alongside
 * this thread's writes), parsed by tar-stream, and each entry's content written as it streams by. The raw tar
 * stream is bounded as well as the content, so a gzip of padding or zero blocks cannot run on unchecked.
 */
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar, { type ExtractEvents, type Header } from 'tar-stream';
import { ToolhostError } from '../errors.js';
import { corrupt, special } from './refusals.js';
import type { TreeFileSink, TreeWriter } from './tree-writer.js';

/**
 * Tar bytes per entry beyond its content (header, pax header, padding); with the slack, how far the raw tar
 * stream may run past the content limits before it counts as a bomb made of padding or skipped blocks.
 */
const TAR_OVERHEAD_PER_ENTRY = 3 * 1024;
const TAR_SLACK_BYTES = 1024 * 1024;
/** Bytes read from an archive file at once. */
export const READ_CHUNK_BYTES = 1024 * 1024;
/**
 * Bytes gunzip produces per call. Each call is a round trip to libuv's pool; at zlib's default of 16 KiB a
 * 100 MiB project costs thousands of them.
 */
const GUNZIP_CHUNK_BYTES = 256 * 1024;

/** The content stream of one tar entry. */
type TarContent = ExtractEvents['entry'][1];

/** Extracts the tar.gz bytes of `input` (a file or a download) into `out`. */
export async function readTarGz(input: Readable, out: TreeWriter): Promise<void> {
  const guard = new InflateGuard(() => out.contentLimit + TAR_OVERHEAD_PER_ENTRY * (out.entries + 1) + TAR_SLACK_BYTES);
  const extract = tar.extract();
  /** The first error of an entry (a refusal, a failed write): the cause, whatever the pipeline then reports. */
  let refusal: Error | null = null;
  /** The entry whose content is being written, and its stream; the last entry met. */
  let current: { name: string; content: TarContent } | null = null;
  let last: string | undefined;
  /** Settles once the content of the latest file entry is written or abandoned, and its file closed. */
  let written = Promise.resolve();

  const fail = (err: unknown): void => {
    refusal ??= err instanceof Error ? err : new Error(String(err));
    extract.destroy(refusal);
  };
  /** Closes an entry's file; on an error (thrown from a handler, it would kill the thread) fails the extraction. */
  const closed = (sink: TreeFileSink): boolean => {
    try {
      sink.close();
      return true;
    } catch (err) {
      fail(err);
      return false;
    }
  };

  extract.on('entry', (header, content, next) => {
    const { name, type, mode, linkname, size } = header;
    last = name;
    // Destroying the extraction destroys the entry with the same error; the pipeline reports it already.
    content.on('error', () => undefined);
    try {
      out.count(name);
      // Old tars mark folders by a trailing "/" alone, and tar-stream types those as files.
      if ((type === 'file' || type === 'contiguous-file') && !(name.endsWith('/') && size === 0)) {
        const sink = out.file(name, mode);
        current = { name, content };
        // Written as it streams by: each chunk straight to the file, no chunk kept.
        written = new Promise((settle) => {
          content.on('data', (chunk) => {
            try {
              sink.write(chunk as Buffer);
            } catch (err) {
              fail(err);
            }
          });
          content.on('end', () => {
            current = null;
            settle();
            if (closed(sink)) next();
          });
          // A destroyed entry (the archive broke off, or a refusal) ends here, without 'end'.
          content.on('close', () => {
            closed(sink);
            settle();
          });
        });
        return;
      }
      // Entries without content still have to be drained for the parser to move on.
      content.resume();
      tarEntry(out, name, type, linkname);
      next();
    } catch (err) {
      fail(err);
    }
  });

  try {
    await pipeline(input, new Coalesce(READ_CHUNK_BYTES), createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }), guard, extract);
  } catch (err) {
    // The cast undoes a narrowing to null: TypeScript does not see the assignments in the handlers above.
    const broken = current as { name: string; content: TarContent } | null;
    broken?.content.destroy();
    await written;
    // Whatever surfaced (an entry stream destroyed, a premature close), a tripped guard is the real cause, and
    // after it a refused entry.
    throw guard.error ?? refusal ?? corrupt(err, broken?.name, last);
  }
  await written;
  if (refusal !== null) throw refusal;
}

/** Creates an entry without content. */
function tarEntry(out: TreeWriter, name: string, type: Header['type'], linkname: string | undefined): void {
  switch (type) {
    case 'file':
    case 'contiguous-file': // only a folder named with a trailing "/" and no content, as old tars made them
    case 'directory':
      out.directory(name);
      return;
    case 'symlink':
      out.symlink(name, linkname ?? '');
      return;
    case 'link':
      out.hardlink(name, linkname ?? '');
      return;
    case 'character-device':
      throw special(name, 'character device');
    case 'block-device':
      throw special(name, 'block device');
    case 'fifo':
      throw special(name, 'fifo');
    default:
      throw special(name, `entry of unknown type ${String(type)}`);
  }
}

/** Passes the decompressed tar stream through, failing it once it grows past `limit()`. */
class InflateGuard extends Transform {
  error: ToolhostError | null = null;
  #seen = 0;
  readonly #limit: () => number;

  constructor(limit: () => number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    const limit = this.#limit();
    if (this.#seen <= limit) {
      callback(null, chunk);
      return;
    }
    this.error = new ToolhostError(
      'archive_too_large',
      `archive decompresses to more than ${limit} bytes of tar data without file content to match, like a decompression bomb; repack the archive`,
      { limit },
    );
    callback(this.error);
  }
}

/**
 * Gathers small chunks (a socket's or a default file stream's 64 KiB) into chunks of `size` bytes: each chunk
 * written to gunzip is a round trip to libuv's pool, and a 100 MiB download in 64 KiB pieces made a tar.gz
 * cold start 1.5x slower than in 1 MiB pieces.
 */
class Coalesce extends Transform {
  readonly #size: number;
  #parts: Buffer[] = [];
  #bytes = 0;

  constructor(size: number) {
    super();
    this.#size = size;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#bytes === 0 && chunk.length >= this.#size) {
      callback(null, chunk);
      return;
    }
    this.#parts.push(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes >= this.#size) this.#release();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.#bytes > 0) this.#release();
    callback();
  }

  #release(): void {
    this.push(Buffer.concat(this.#parts, this.#bytes));
    this.#parts = [];
    this.#bytes = 0;
  }
}
