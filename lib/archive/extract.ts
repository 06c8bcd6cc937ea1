/**
 * Safe extraction of a project archive (zip or tar.gz) into a fresh folder. Runs in a pool thread and streams
 * every entry to disk, so no archive is ever held in memory. Nothing outside the destination is written: names
 * that climb out, absolute names, devices and fifos, links that lead outside and writes through links the
 * archive made itself are refused, and bombs are cut off on the bytes actually written, whatever sizes the
 * archive declares. On any failure the destination is removed: a caller sees a complete tree or none.
 *
 * This file is the front; the work is split between `tree-writer.ts` (the file system side and every safety
 * rule about names, links and limits), `zip-reader.ts` and `tar-reader.ts` (the formats).
 */
import { chmodSync, createReadStream, mkdirSync, realpathSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { errnoCode, ToolhostError, toToolhostError } from '../errors.js';
import type { ArchiveFormat } from './format.js';
import { corrupt } from './refusals.js';
import { READ_CHUNK_BYTES, readTarGz } from './tar-reader.js';
import { TreeWriter } from './tree-writer.js';
import type { ArchiveLimits } from './types.js';
import { readZip } from './zip-reader.js';

// For callers outside lib/archive that import it from here; it is defined in the leaf `types.ts`.

/** What {@link extractArchive} extracts, and where to. */
export interface ExtractOptions {
  /** The archive file; or, for tar.gz only, `stream`. */
  file?: string;
  /**
   * The archive as a stream (tar.gz only: a zip's directory is at its end, so it needs a file) and its size in
   * bytes, for the ratio limit. Lets a download flow straight into extraction.
   */
  stream?: { body: Readable; size: number };
  /** Its format, usually from `sniffFile`. */
  format: ArchiveFormat;
  /** The folder to create and fill; it must not exist yet. */
  dest: string;
  /** Bomb limits. */
  limits: ArchiveLimits;
}

/** What an extraction produced. */
export interface ExtractResult {
  /** Entries read from the archive, of every kind. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

/**
 * Extracts the archive `file` into `dest`, which is created and must not exist. Resolves with the number of
 * entries read and the bytes of content written.
 *
 * Meant for a pool thread: the file system calls are synchronous (see `tree-writer.ts`), in slices short
 * enough that other tasks of the thread still get their turn.
 *
 * @throws ToolhostError `unsafe_archive_entry` (details `{ entry }`) for an entry that could write outside `dest`
 *   or is not a plain file, folder or safe link; `archive_too_large` when the entry count, the expanded bytes or
 *   their ratio to the archive's size pass `limits`; `bad_archive` when the archive is corrupt or unreadable.
 *   In all these cases `dest` has been removed. When `dest` already exists it is left alone (`internal`).
 */
export async function extractArchive(opts: ExtractOptions): Promise<ExtractResult> {
  const dest = resolve(opts.dest);
  const source = archiveSource(opts);
  let archiveBytes: number;
  try {
    archiveBytes = opts.stream ? opts.stream.size : statSync(opts.file!).size;
  } catch (err) {
    source.destroy();
    throw corrupt(err);
  }
  try {
    mkdirSync(dirname(dest), { recursive: true });
  } catch (err) {
    source.destroy();
    throw toToolhostError(err);
  }
  try {
    mkdirSync(dest, { mode: 0o755 });
  } catch (err) {
    source.destroy();
    if (errnoCode(err) !== 'EEXIST') throw toToolhostError(err);
    throw new ToolhostError('internal', `extraction target ${dest} already exists; extract into a path that does not exist yet`);
  }
  try {
    chmodSync(dest, 0o755);
    const out = new TreeWriter(realpathSync.native(dest), opts.limits, archiveBytes);
    await (opts.format === 'zip' ? readZip(opts.file!, out) : readTarGz(source.open(), out));
    out.verifyLinks();
    return { entries: out.entries, bytes: out.bytes };
  } catch (err) {
    source.destroy();
    const failure = toToolhostError(err);
    try {
      await rm(dest, { recursive: true, force: true });
    } catch (rmErr) {
      throw new ToolhostError('internal', `${failure.message}; and ${dest} could not be removed: ${String(rmErr)}`);
    }
    throw failure;
  }
}

/** The input of an extraction: opened lazily, and destroyed if the extraction fails before or while reading it. */
function archiveSource(opts: ExtractOptions): { open(): Readable; destroy(): void } {
  if (opts.stream && opts.file !== undefined) throw new ToolhostError('internal', 'extractArchive takes a file or a stream, not both');
  if (opts.stream && opts.format === 'zip') throw new ToolhostError('internal', 'a zip archive can only be extracted from a file');
  if (!opts.stream && opts.file === undefined) throw new ToolhostError('internal', 'extractArchive needs a file or a stream');
  let stream = opts.stream?.body;
  return {
    open: () => (stream ??= createReadStream(opts.file!, { highWaterMark: READ_CHUNK_BYTES })),
    destroy: () => stream?.destroy(),
  };
}
