/**
 * Finding what changed in a working copy since its last save, and writing it as a layer. The copy's state at the
 * last save (every entry with its digest, and for files the inode, mtime and ctime seen then) is kept beside the
 * cache, out of the copy's reach. A save walks the copy's metadata and reads only files whose size, mode, inode,
 * mtime or ctime moved (ctime cannot be set back by a command, so `touch -d` cannot hide a change); a file read
 * again whose digest did not change is not a change (a `git checkout` back and forth, a rewrite of the same bytes).
 * Files changed within moments of being looked at are read again next time, as git does with "racily clean"
 * entries.
 *
 * The walk and the reads are those of packing (`tree-walk.ts`, `pack.ts`): through open folder fds, never
 * following a symlink, tolerant of entries that vanish. Synchronous, for a pool thread.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  CHUNK_BYTES,
  type PackResult,
  projectFolder,
  READ_FLAGS,
  readAt,
  refusedByExtraction,
  refuseUnloadable,
  Slice,
  WHOLE_FILE_BYTES,
} from '../archive/pack.js';
import { TarGzWriter } from '../archive/tar-writer.js';
import { type Met, unreadable, VANISHED, walk } from '../archive/tree-walk.js';
import type { ArchiveLimits } from '../archive/types.js';
import { errnoCode, ToolhostError, toToolhostError } from '../errors.js';
import type { LayerIndex, TreeNode } from './format.js';
import { indexEntry, removedPaths, sameNode, type Tree } from './tree.js';

/** An entry as last saved, with what a file's stat said then (`ct` -1: read it again next time). */
export interface StatNode extends TreeNode {
  ino: number;
  mt: number;
  ct: number;
}

/** A working copy's state at its last save. */
export type CopyState = Tree<StatNode>;

/**
 * A file whose ctime is this close to the moment it was looked at is read again at the next save: a change made
 * right after, within the same tick of the kernel's coarse clock, would leave every timestamp as it was.
 */
export const RACY_MS = 20;

/** What {@link writeDelta} found and wrote. */
export interface DeltaResult {
  /** The layer's index (empty lists: nothing changed, and no layer was written). */
  index: LayerIndex;
  /** The copy's state now. */
  state: CopyState;
  /** The layer file (absent when nothing changed), its size and sha256. */
  layer: { file: string; bytes: number; digest: string } | null;
  skipped: PackResult['skipped'];
}

/**
 * Walks `root` against `prev` (null: everything is new) and writes what changed to a new tar.gz at `out`. Entries
 * extraction would refuse are left out and named, as packing does; a tree past `limits` is refused.
 */
export async function writeDelta(o: {
  root: string;
  exclude: readonly string[];
  prev: CopyState | null;
  /** Bytes of the layers `prev` is built from (0 when it is null). */
  chainBytes: number;
  out: string;
  limits: ArchiveLimits;
}): Promise<DeltaResult> {
  const root = resolve(o.root);
  const rootStat = projectFolder(root);
  mkdirSync(dirname(o.out), { recursive: true });
  const fd = openSync(o.out, 'wx', 0o600);
  const writer = new TarGzWriter(fd);
  const state: CopyState = new Map();
  const entries: LayerIndex['entries'] = [];
  const skipped: DeltaResult['skipped'] = [];
  const slice = new Slice();
  let bytes = 0;
  try {
    for (const met of walk(root, o.exclude)) {
      const refused = refusedByExtraction(met);
      if (refused !== null) {
        if (skipped.length < 100) skipped.push({ name: met.name, kind: met.kind, reason: refused });
        continue;
      }
      const before = o.prev?.get(met.name);
      const seen = met.kind === 'file' ? await scanFile(met, before, writer, slice) : scanOther(met, before, writer);
      if (seen === null) continue;
      state.set(met.name, seen.node);
      if (seen.node.t === 'f') bytes += seen.node.s;
      if (seen.written) entries.push(indexEntry(met.name, seen.node));
      await slice.pause();
    }
    const after = projectFolder(root);
    if (after.ino !== rootStat.ino || after.dev !== rootStat.dev) {
      throw new ToolhostError('internal', `cannot save ${root}: the folder was replaced while it was read; save again`);
    }
    const deleted = o.prev ? removedPaths(o.prev, state) : [];
    const archiveBytes = writer.finish();
    closeSync(fd);
    // The tree must load again: its entries, its bytes, and their ratio to all the layers it will be built from.
    refuseUnloadable({ entries: state.size, bytes, archiveBytes: o.chainBytes + archiveBytes, skipped }, o.limits);
    if (entries.length === 0 && deleted.length === 0) {
      unlinkSync(o.out);
      return { index: { v: 1, deleted, entries }, state, layer: null, skipped };
    }
    const digest = createHash('sha256').update(readFileSync(o.out)).digest('hex');
    return { index: { v: 1, deleted, entries }, state, layer: { file: o.out, bytes: archiveBytes, digest }, skipped };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // closed by the success path already
    }
    try {
      unlinkSync(o.out);
    } catch {
      // never created, or gone
    }
    throw toToolhostError(err);
  }
}

/** A folder or symlink: compared whole with what was saved, written when it differs. */
function scanOther(met: Exclude<Met, { kind: 'file' }>, before: StatNode | undefined, writer: TarGzWriter): { node: StatNode; written: boolean } {
  const node: StatNode =
    met.kind === 'dir' ? { t: 'd', m: met.mode & 0o777, s: 0, h: '', ino: 0, mt: 0, ct: 0 } : { t: 'l', m: 0o777, s: 0, h: met.target, ino: 0, mt: 0, ct: 0 };
  const written = !before || !sameNode(before, node);
  if (written) {
    if (met.kind === 'dir') writer.directory(met);
    else writer.symlink(met, met.target);
  }
  return { node, written };
}

/**
 * A file: unchanged when its stat matches what was saved; otherwise read, hashed, and written to the layer when its
 * content or mode differs. Null when it vanished or is no longer a regular file.
 */
async function scanFile(
  met: Extract<Met, { kind: 'file' }>,
  before: StatNode | undefined,
  writer: TarGzWriter,
  slice: Slice,
): Promise<{ node: StatNode; written: boolean } | null> {
  // Before the file is looked at: a change made while it is read must count as racy, however long the read takes.
  const t0 = Date.now();
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(met.at);
  } catch (err) {
    if (VANISHED.has(errnoCode(err) ?? '')) return null;
    throw unreadable(met.name, err);
  }
  if (!st?.isFile()) return null;
  const stamp = (s: { ino: number; mtimeMs: number; ctimeMs: number }) => stampOf(s, t0);
  if (
    before?.t === 'f' &&
    before.ct !== -1 &&
    before.ino === st.ino &&
    before.mt === st.mtimeMs &&
    before.ct === st.ctimeMs &&
    before.s === st.size &&
    before.m === (st.mode & 0o777)
  ) {
    return { node: before, written: false };
  }
  let fd: number;
  try {
    fd = openSync(met.at, READ_FLAGS);
  } catch (err) {
    if (VANISHED.has(errnoCode(err) ?? '')) return null;
    throw unreadable(met.name, err);
  }
  try {
    const open = fstatSync(fd);
    if (!open.isFile()) return null;
    const m = open.mode & 0o777;
    const meta = { name: met.name, mode: open.mode, mtimeMs: open.mtimeMs };
    if (open.size <= WHOLE_FILE_BYTES) {
      const data = readAt(fd, Buffer.allocUnsafe(open.size), 0, met.name);
      const node: StatNode = { t: 'f', m, s: data.length, h: sha256(data), ...stamp(open) };
      if (before && sameNode(before, node)) return { node, written: false };
      const sink = writer.file(meta, data.length);
      for (let offset = 0; offset < data.length; offset += CHUNK_BYTES) {
        sink.write(data.subarray(offset, offset + CHUNK_BYTES));
        await slice.pause();
      }
      sink.end();
      return { node, written: true };
    }
    // Large: hashed first, and only written (and hashed again, as written) when it changed.
    const first = await streamFile(fd, open.size, met.name, slice, null);
    const quick: StatNode = { t: 'f', m, s: first.bytes, h: first.digest, ...stamp(open) };
    if (before && sameNode(before, quick)) return { node: quick, written: false };
    const sink = writer.file(meta, open.size);
    const second = await streamFile(fd, open.size, met.name, slice, sink);
    sink.end();
    return { node: { ...quick, s: open.size, h: second.digest }, written: true };
  } finally {
    closeSync(fd);
  }
}

/** Reads `size` bytes of `fd` in chunks, hashing them and handing them to `sink` when given. */
async function streamFile(
  fd: number,
  size: number,
  name: string,
  slice: Slice,
  sink: { write(b: Buffer): void } | null,
): Promise<{ bytes: number; digest: string }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let done = 0;
  while (done < size) {
    const chunk = readAt(fd, buffer.subarray(0, Math.min(CHUNK_BYTES, size - done)), done, name);
    if (chunk.length === 0) break;
    hash.update(chunk);
    sink?.write(chunk);
    done += chunk.length;
    await slice.pause();
  }
  // A file that shrank is padded to its announced size by the tar writer, with zeros: hash those too.
  if (sink && done < size) hash.update(Buffer.alloc(size - done));
  return { bytes: done, digest: hash.digest('hex') };
}

/**
 * What a state records of a file's stat, looked at from `t0` on: a ctime within {@link RACY_MS} of `t0` (or after
 * it) is recorded as -1, so the file is read again next time.
 */
export function stampOf(s: { ino: number; mtimeMs: number; ctimeMs: number }, t0: number): { ino: number; mt: number; ct: number } {
  return { ino: s.ino, mt: s.mtimeMs, ct: s.ctimeMs >= t0 - RACY_MS ? -1 : s.ctimeMs };
}

/** The sha256 of `data` in hex. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads a copy's saved state; null when there is none (or it cannot be read: the next save is then whole). */
export function readState(file: string): CopyState | null {
  let raw: Buffer;
  try {
    raw = gunzipSync(readFileSync(file));
  } catch {
    return null;
  }
  try {
    const rows = JSON.parse(raw.toString('utf8')) as [string, StatNode['t'], number, number, string, number, number, number][];
    return new Map(rows.map(([p, t, m, s, h, ino, mt, ct]) => [p, { t, m, s, h, ino, mt, ct }]));
  } catch {
    return null;
  }
}

/** Writes a copy's state (atomically: a crash leaves the old one or the new one). */
export function writeState(file: string, state: CopyState): void {
  const rows = [...state].map(([p, n]) => [p, n.t, n.m, n.s, n.h, n.ino, n.mt, n.ct]);
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(temp, gzipSync(JSON.stringify(rows), { level: 1 }));
  renameSync(temp, file);
}
