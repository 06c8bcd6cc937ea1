/**
 * Packing a project's working copy back into an archive (zip or tar.gz), for write-back to the store: the mirror
 * of `extract.ts`. The tree is walked in sorted order and never followed through a symlink; the archive is
 * written to a new file, which is removed again on any failure, so a caller sees a complete archive or none.
 *
 * Commands may still be running in the project while it is packed, so packing tolerates change: whatever
 * vanishes between listing and reading is left out, and a file is packed as far as it was read. It runs as root
 * and those commands may be hostile, so it never goes by path: the walk (`tree-walk.ts`) opens every folder
 * through the open folder above it, and every file is opened through its folder's fd with O_NOFOLLOW |
 * O_NONBLOCK and read only when fstat says it is a regular file.
 *
 * Meant for a pool thread, like extraction: every file system call and every compression is synchronous, because
 * libuv's four-thread pool is shared by all threads of the process and queueing thousands of small reads on it
 * costs several times the reads themselves. The thread turns its event loop over every few milliseconds so it
 * still hears its messages. This file is the front: what goes in, and the reading of files; the walk is in
 * `tree-walk.ts`, the formats in `zip-writer.ts` and `tar-writer.ts`.
 */
import { closeSync, constants, fstatSync, mkdirSync, openSync, readSync, type Stats, statSync, unlinkSync } from 'node:fs';
import { dirname, isAbsolute, posix, resolve } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { errnoCode, ToolhostError, toToolhostError } from '../errors.js';
import type { ArchiveFormat } from './format.js';
import { TarGzWriter } from './tar-writer.js';
import { MAX_NAME_BYTES, type Met, type TreeEntry, tooLong, unreadable, VANISHED, walk } from './tree-walk.js';
import { MAX_LINK_TARGET, ratioLimit } from './tree-writer.js';
import type { ArchiveLimits, ArchiveWriter, EntryMeta } from './types.js';
import { ZipWriter } from './zip-writer.js';

// For callers outside lib/archive that import it from here; it lives with the walk in `tree-walk.ts`.

/** What {@link packTree} packs, and where to. */
export interface PackOptions {
  /** The folder to pack; its contents become the archive's top level. */
  root: string;
  /** The archive format to write. */
  format: ArchiveFormat;
  /** The archive file to create; it must not exist yet. */
  out: string;
  /** gitignore-style patterns, relative to `root`, of what to leave out; an excluded folder is not entered. */
  exclude: readonly string[];
  /**
   * The extraction limits the archive must pass: when given, packing fails rather than produce an archive that
   * extraction would refuse (too many entries, too many bytes, a bomb-like ratio) or that would lose a file.
   */
  limits?: ArchiveLimits;
}

/** What a pack produced. */
export interface PackResult {
  /** Entries written (folders, files and symlinks), counted as extraction counts them. */
  entries: number;
  /** Bytes of file content packed. */
  bytes: number;
  /** Size of the archive file. */
  archiveBytes: number;
  /**
   * What was left out because extraction would refuse it (the archive must load again): symlinks leading outside
   * the project or absolute, names with a backslash, paths longer than 4095 bytes. At most
   * {@link MAX_SKIPPED_REPORTED} names, each with why.
   */
  skipped: { name: string; kind: TreeEntry['kind']; reason: string }[];
}

/** Most skipped entries a {@link PackResult} names. */
export const MAX_SKIPPED_REPORTED = 100;

/**
 * Files up to this size are read in one call, which fixes their size before their header is written; larger ones
 * are streamed, announced at the size they had when opened.
 */
export const WHOLE_FILE_BYTES = 32 * 1024 * 1024;
/** Content is handed to the writers in chunks of this size, with a chance to turn the event loop between them. */
export const CHUNK_BYTES = 1024 * 1024;
/** Longest run of synchronous work before the thread turns its event loop over (as in `zip-reader.ts`). */
const SLICE_MS = 10;
/**
 * O_NOFOLLOW: a file swapped for a symlink since the walk saw it is not followed out of the project.
 * O_NONBLOCK: a file swapped for a fifo would otherwise block the open until a writer appears.
 * O_NOCTTY: a terminal swapped in never becomes the process's controlling terminal.
 */
export const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

/**
 * Packs the tree under `opts.root` into the new file `opts.out` (created with `wx`, its parent folder too when
 * missing). Folders (empty ones too), regular files with their mode bits and symlinks with their target text go
 * in, in sorted order; sockets, fifos and devices are left out, as is whatever matches `opts.exclude`. Entries
 * that vanish while the tree is walked are left out too. A file larger than 32 MiB that shrinks while it is
 * read is packed as read (a zip) or padded with zeros to its announced size (a tar, as GNU tar does).
 *
 * @throws ToolhostError `internal` when `out` already exists (it is left alone) or `root` is not a folder;
 *   `permission_denied` naming a file or folder that cannot be read; `no_space` when the disk fills. In every
 *   case but the first, `out` has been removed.
 */
export async function packTree(opts: PackOptions): Promise<PackResult> {
  const out = resolve(opts.out);
  let fd: number;
  try {
    mkdirSync(dirname(out), { recursive: true });
    fd = openSync(out, 'wx', 0o644);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw toToolhostError(err);
    throw new ToolhostError('internal', `pack target ${out} already exists; pack into a path that does not exist yet`);
  }
  try {
    const result = await packInto(fd, resolve(opts.root), opts);
    closeSync(fd);
    return result;
  } catch (err) {
    const failure = toToolhostError(err);
    try {
      closeSync(fd);
    } catch {
      // Already closed by the success path, whose close was what failed.
    }
    try {
      unlinkSync(out);
    } catch (rmErr) {
      if (errnoCode(rmErr) !== 'ENOENT') throw new ToolhostError('internal', `${failure.message}; and ${out} could not be removed: ${String(rmErr)}`);
    }
    throw failure;
  }
}

async function packInto(fd: number, root: string, opts: PackOptions): Promise<PackResult> {
  const rootStat = projectFolder(root);

  const writer: ArchiveWriter = opts.format === 'zip' ? new ZipWriter(fd) : new TarGzWriter(fd);
  const slice = new Slice();
  let entries = 0;
  let bytes = 0;
  const skipped: PackResult['skipped'] = [];
  for (const entry of walk(root, opts.exclude)) {
    const refused = refusedByExtraction(entry);
    if (refused !== null) {
      if (skipped.length < MAX_SKIPPED_REPORTED) skipped.push({ name: entry.name, kind: entry.kind, reason: refused });
      continue;
    }
    if (entry.kind === 'dir') writer.directory(entry);
    else if (entry.kind === 'symlink') writer.symlink(entry, entry.target);
    else {
      const packed = await packFile(writer, entry.name, entry.at, slice);
      if (packed === null) continue;
      bytes += packed;
    }
    entries += 1;
    await slice.pause();
  }
  // A project folder removed (or replaced) while it was packed yields a partial archive, which must never be
  // written back over the stored project.
  const after = projectFolder(root);
  if (after.ino !== rootStat.ino || after.dev !== rootStat.dev) {
    throw new ToolhostError('internal', `cannot pack ${root}: the folder was replaced while it was packed; pack it again`);
  }
  const result = { entries, bytes, archiveBytes: writer.finish(), skipped };
  if (opts.limits) refuseUnloadable(result, opts.limits);
  return result;
}

/**
 * Refuses a pack that would lose a file or could not be extracted again under `limits`. Left-out symlinks
 * (absolute, or leading outside) are not refused: they point outside the project and are named in `skipped`.
 */
export function refuseUnloadable(packed: Pick<PackResult, 'entries' | 'bytes' | 'archiveBytes' | 'skipped'>, limits: ArchiveLimits): void {
  const lost = packed.skipped.filter((e) => e.kind !== 'symlink');
  if (lost.length > 0) {
    throw new ToolhostError(
      'unsafe_archive_entry',
      `not saved: ${lost.map((e) => `"${e.name}" (${e.reason})`).join(', ')} could not be extracted again; rename it, then save again`,
      { entry: lost[0]!.name },
    );
  }
  const over =
    packed.entries > limits.maxEntries
      ? `${packed.entries} entries (archive.maxEntries is ${limits.maxEntries})`
      : packed.bytes > limits.maxTotalBytes
        ? `${packed.bytes} bytes of content (archive.maxTotalBytes is ${limits.maxTotalBytes})`
        : packed.bytes > ratioLimit(limits, packed.archiveBytes)
          ? `${packed.bytes} bytes in a ${packed.archiveBytes}-byte archive, past archive.maxRatio (${limits.maxRatio}), like a bomb`
          : null;
  if (over !== null) {
    throw new ToolhostError(
      'archive_too_large',
      `not saved: the archive would hold ${over} and could not be loaded again; delete large generated files (or leave them out with store.exclude), or raise the limit`,
    );
  }
}

/**
 * Why extraction would refuse an entry (see tree-writer.ts), or null. Such an entry is left out of the archive:
 * one refused entry would make the whole saved project impossible to load again. An agent can make these with a
 * command (a virtualenv's `bin/python -> /usr/bin/python3`); they are regenerated, not project content.
 */
export function refusedByExtraction(entry: Met): string | null {
  if (entry.name.includes('\\')) return 'its name contains a backslash';
  if (tooLong(entry.name)) return `its path is longer than ${MAX_NAME_BYTES} bytes`;
  if (entry.kind !== 'symlink') return null;
  const target = entry.target;
  if (target.includes('\\')) return 'its target contains a backslash';
  if (target.length > MAX_LINK_TARGET) return `its target is longer than ${MAX_LINK_TARGET} characters`;
  if (isAbsolute(target) || /^[A-Za-z]:/.test(target)) return `it is a symlink to an absolute path (${target})`;
  if (posix.normalize(posix.join(posix.dirname(entry.name), target)).split('/')[0] === '..') return `it is a symlink leading outside the project (${target})`;
  return null;
}

/** The stat of the folder to pack; `internal` when it is missing or not a folder. */
export function projectFolder(root: string): Stats {
  let st: Stats;
  try {
    st = statSync(root);
  } catch (err) {
    throw new ToolhostError('internal', `cannot pack ${root}: ${errnoCode(err) ?? String(err)}; pack an existing project folder`);
  }
  if (!st.isDirectory()) throw new ToolhostError('internal', `cannot pack ${root}: not a folder; pack a project folder`);
  return st;
}

/**
 * Packs the file `name`, opened at `at` (through its folder's fd); its content bytes, or null when it vanished or
 * is no longer a regular file (a FIFO, socket, device or folder swapped in since it was listed).
 */
async function packFile(writer: ArchiveWriter, name: string, at: string, slice: Slice): Promise<number | null> {
  let fd: number;
  try {
    fd = openSync(at, READ_FLAGS);
  } catch (err) {
    if (VANISHED.has(errnoCode(err) ?? '')) return null;
    throw unreadable(name, err);
  }
  try {
    // The open file's own stat: only what is a regular file now is read.
    const st = fstatSync(fd);
    if (!st.isFile()) return null;
    const meta: EntryMeta = { name, mode: st.mode, mtimeMs: st.mtimeMs };
    if (st.size <= WHOLE_FILE_BYTES) {
      const data = readAt(fd, Buffer.allocUnsafe(st.size), 0, name);
      const sink = writer.file(meta, data.length);
      for (let offset = 0; offset < data.length; offset += CHUNK_BYTES) {
        sink.write(data.subarray(offset, offset + CHUNK_BYTES));
        await slice.pause();
      }
      sink.end();
      return data.length;
    }
    // Never past the size announced in the header: a file that grows while read is packed at its opening size.
    const sink = writer.file(meta, st.size);
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let done = 0;
    while (done < st.size) {
      const chunk = readAt(fd, buffer.subarray(0, Math.min(CHUNK_BYTES, st.size - done)), done, name);
      if (chunk.length === 0) break;
      sink.write(chunk);
      done += chunk.length;
      await slice.pause();
    }
    sink.end();
    return done;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads into `buffer` from `position` until it is full or the file ends; the part filled. A read error names the
 * file (errors of writing the archive pass through elsewhere, as what they are).
 */
export function readAt(fd: number, buffer: Buffer, position: number, name: string): Buffer {
  let n = 0;
  try {
    while (n < buffer.length) {
      const got = readSync(fd, buffer, n, buffer.length - n, position + n);
      if (got === 0) break;
      n += got;
    }
  } catch (err) {
    throw unreadable(name, err);
  }
  return buffer.subarray(0, n);
}

/** Measures runs of synchronous work and turns the event loop over when one has lasted long enough. */
export class Slice {
  #start = performance.now();

  async pause(): Promise<void> {
    if (performance.now() - this.#start <= SLICE_MS) return;
    await nextTurn();
    this.#start = performance.now();
  }
}
