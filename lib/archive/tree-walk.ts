/**
 * Walking a project's tree for packing (and for {@link walkTree}, its listing): depth first, each folder's names
 * sorted, a folder before its contents, never through a symlink.
 *
 * Commands may still be running in the project while it is walked, so the walk tolerates change: whatever
 * vanishes between being listed and being looked at is left out. It runs as root and those commands may be
 * hostile, so it never goes by path: every folder is opened through the open folder above it
 * (`/proc/self/fd/<fd>/<name>`, O_DIRECTORY | O_NOFOLLOW, see `safe-fs.ts`) and listed through its own fd, and a
 * file is handed on as a path through its folder's fd. A folder swapped for a symlink after it was listed (to
 * /etc, say) therefore cannot redirect the walk: the fd still names the folder that was listed.
 *
 * Synchronous, like the rest of packing (see `pack.ts`).
 */
import { closeSync, constants, type Dirent, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import ignore from 'ignore';
import { errnoCode, ToolhostError } from '../errors.js';
import { openSubfolder } from '../folder-cursor.js';
import { closeQuietly, fdPath, O_PATH } from '../safe-fs.js';
import type { EntryMeta } from './types.js';

/** One thing found by {@link walkTree}. */
export type TreeEntry = EntryMeta & ({ kind: 'dir' } | { kind: 'file'; size: number } | { kind: 'symlink'; target: string });

/**
 * What the walk meets: folders and symlinks already looked at; a file only as listed, to be looked at by its
 * user through `at` (`/proc/self/fd/<folder fd>/<name>`), which is valid until the walk is resumed.
 */
export type Met = Exclude<TreeEntry, { kind: 'file' }> | { kind: 'file'; name: string; at: string };

/**
 * Errors that mean the entry changed under us since it was listed: it is left out, not a failure. ENOTDIR and
 * ELOOP are a folder swapped for a file or a symlink; ENXIO and ENODEV a file swapped for a socket or a device.
 */
export const VANISHED = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EINVAL', 'ENXIO', 'ENODEV']);
/**
 * Longest entry name packed, in bytes (PATH_MAX less its NUL): extraction makes entries by path, so a longer one
 * could not be made again. A folder with a longer name is not entered, which also bounds the walk's depth, and so
 * the folders it holds open (one per level).
 */
export const MAX_NAME_BYTES = 4095;

/**
 * The entries of the tree under `root` (an absolute path to a folder), depth first, each folder's names sorted,
 * a folder before its contents. Symlinks are reported, never followed; sockets, fifos and devices are skipped,
 * and so is whatever vanishes between being listed and being looked at. `exclude` holds gitignore-style
 * patterns relative to `root`; an excluded folder is not entered. Every look goes through the open folder it is
 * in (see the top of this file): a concurrent swap cannot make the walk report anything outside the tree.
 *
 * Lazy: each folder is listed only when the walk reaches it, so it sees the tree as it is at that moment.
 */
export function* walkTree(root: string, exclude: readonly string[]): Generator<TreeEntry> {
  for (const met of walk(root, exclude)) {
    if (met.kind !== 'file') {
      yield met;
      continue;
    }
    // lstat through the open folder: a name swapped for a symlink meanwhile is the link, never its target.
    const st = lookAt(met.at, met.name);
    if (st?.isFile() === true) yield { kind: 'file', name: met.name, mode: st.mode, mtimeMs: st.mtimeMs, size: st.size };
  }
}

/** A folder being walked: its fd, its root-relative name ("" for the root), its entries once listed, the next one. */
interface Level {
  fd: number;
  rel: string;
  entries: Listed[] | null;
  next: number;
}

/** A name found by listing a folder, with the kind the listing gave it; null when it gave none (no d_type). */
interface Listed {
  name: string;
  kind: 'dir' | 'file' | 'symlink' | 'other' | null;
}

/**
 * The walk behind {@link walkTree} and packing (see there), holding one open folder per level. Files are only
 * listed, not looked at: packing opens them, {@link walkTree} lstats them, each once.
 */
export function* walk(root: string, exclude: readonly string[]): Generator<Met> {
  // Case-sensitive, as git is on Linux: "Build/" must not leave out "build/".
  const rules = exclude.length === 0 ? null : ignore({ ignoreCase: false }).add([...exclude]);
  const stack: Level[] = [{ fd: openRoot(root), rel: '', entries: null, next: 0 }];
  try {
    while (stack.length > 0) {
      const level = stack[stack.length - 1]!;
      level.entries ??= listFolder(level.fd, level.rel);
      const listed = level.entries[level.next++];
      if (listed === undefined) {
        closeSync(stack.pop()!.fd);
        continue;
      }
      const name = level.rel === '' ? listed.name : `${level.rel}/${listed.name}`;
      const at = fdPath(level.fd, listed.name);
      let kind = listed.kind;
      let st: Stats | null = null;
      if (kind === null || kind === 'symlink') {
        st = lookAt(at, name);
        kind = st === null ? 'other' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
      }
      if (kind === 'dir') {
        if (rules?.ignores(`${name}/`) === true) continue;
        const fd = enterFolder(level.fd, listed.name, name);
        if (fd === null) continue;
        // On the stack before anything can throw, so that the finally below closes it.
        const sub: Level = { fd, rel: name, entries: null, next: 0 };
        stack.push(sub);
        const dirStat = statOpen(fd, name);
        // Reported (packing refuses it), never entered.
        if (tooLong(name)) sub.entries = [];
        yield { kind: 'dir', name, mode: dirStat.mode, mtimeMs: dirStat.mtimeMs };
      } else if (kind === 'file') {
        if (rules?.ignores(name) === true) continue;
        yield { kind: 'file', name, at };
      } else if (kind === 'symlink') {
        if (rules?.ignores(name) === true) continue;
        const target = readLink(at, name);
        if (target !== null) yield { kind: 'symlink', name, mode: st!.mode, mtimeMs: st!.mtimeMs, target };
      }
      // Sockets, fifos and devices are not project content, and extraction would refuse them.
    }
  } finally {
    // Left early (the consumer stopped, or a failure): release every level still open.
    for (const level of stack) closeQuietly(level.fd);
  }
}

/** The folder to walk, opened once; `internal` when it is missing or not a folder. */
function openRoot(root: string): number {
  try {
    return openSync(root, O_PATH | constants.O_DIRECTORY);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOTDIR') throw new ToolhostError('internal', `cannot pack ${root}: not a folder; pack a project folder`);
    // The root missing is not a change to tolerate: an empty archive would stand for a lost project.
    throw new ToolhostError('internal', `cannot pack ${root}: ${code ?? String(err)}; pack an existing project folder`);
  }
}

/** The subfolder `base` of the open folder `parentFd`, opened through it; null when it vanished or is no longer a folder. */
function enterFolder(parentFd: number, base: string, name: string): number | null {
  try {
    return openSubfolder(parentFd, base);
  } catch (err) {
    if (VANISHED.has(errnoCode(err) ?? '')) return null;
    throw unreadable(name, err);
  }
}

/** fstat of an open entry of the tree. */
function statOpen(fd: number, name: string): Stats {
  try {
    return fstatSync(fd);
  } catch (err) {
    throw unreadable(name, err);
  }
}

/**
 * The entries of the open folder `fd`, sorted by name; [] when it was removed meanwhile. Their kinds come from the
 * listing itself (d_type), at no cost per name.
 */
function listFolder(fd: number, rel: string): Listed[] {
  const path = fdPath(fd);
  try {
    // libuv's scandir already sorts (by bytes), which Node does not promise; on sorted input the sort is linear.
    return readdirSync(path, { withFileTypes: true }).map(listedOf).sort(byName);
  } catch (err) {
    if (!VANISHED.has(errnoCode(err) ?? '')) throw unreadable(rel || '.', err);
  }
  // The folder was removed, or a file system without d_type had a name vanish before Node's own lstat of it (which
  // fails the whole listing): the names alone, each looked at when the walk reaches it.
  try {
    return readdirSync(path)
      .sort()
      .map((name) => ({ name, kind: null }));
  } catch (err) {
    if (VANISHED.has(errnoCode(err) ?? '')) return [];
    throw unreadable(rel || '.', err);
  }
}

function listedOf(d: Dirent): Listed {
  const kind = d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? 'symlink' : 'other';
  return { name: d.name, kind };
}

/** The order of `Array.prototype.sort` on the names (UTF-16 code units). */
function byName(a: Listed, b: Listed): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** True when `name` is longer than {@link MAX_NAME_BYTES} in UTF-8 (a UTF-16 unit takes at most 3 bytes). */
export function tooLong(name: string): boolean {
  return name.length > MAX_NAME_BYTES / 3 && Buffer.byteLength(name) > MAX_NAME_BYTES;
}

/** lstat, or null when the entry vanished. */
export function lookAt(path: string, name: string): Stats | null {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if (VANISHED.has(errnoCode(err) ?? '')) return null;
    throw unreadable(name, err);
  }
}

/** A symlink's target text; null when it vanished or is no longer a symlink (EINVAL). */
function readLink(path: string, name: string): string | null {
  try {
    return readlinkSync(path);
  } catch (err) {
    if (VANISHED.has(errnoCode(err) ?? '')) return null;
    throw unreadable(name, err);
  }
}

/** A file system error on a path of the project, naming it. */
export function unreadable(name: string, err: unknown): ToolhostError {
  const code = errnoCode(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new ToolhostError(
      'permission_denied',
      `cannot read ${JSON.stringify(name)} to pack the project (${code}); make it readable (chmod) or leave it out with an exclude pattern`,
      { path: name },
    );
  }
  const why = err instanceof Error ? err.message : String(err);
  return new ToolhostError('internal', `cannot read ${JSON.stringify(name)} to pack the project: ${why}`, { path: name });
}
