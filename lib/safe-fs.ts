/**
 * Race-free access to a project's files for code that runs as root while the project's own commands may be
 * changing the tree at the same moment (swapping folders for symlinks, planting FIFOs, sockets or device nodes).
 *
 * Linux has openat2(RESOLVE_IN_ROOT) for this; Node does not expose it, so a path is walked here one name at a
 * time, each step opened through the folder the previous step opened: `/proc/self/fd/<dirfd>/<name>` with
 * O_PATH | O_NOFOLLOW. The kernel resolves the magic link `/proc/self/fd/<dirfd>` to the open folder itself, so a
 * rename or symlink swap after a step cannot redirect it. A symlink met on the way is read and resolved here, as
 * a path inside the project (one whose target leaves the project is refused without being touched), and the walk
 * restarts from the project root. O_PATH opens nothing: a FIFO cannot block, a device driver never sees an open.
 * What the walk ends on is checked once more through `readlink /proc/self/fd/<fd>`, which names where the open
 * entry really is. File content is then read through a fresh open of that same fd (O_NONBLOCK, after fstat says
 * it is a regular file) and written by a rename inside the open folder, never through a path looked up again.
 *
 * Synchronous on purpose: it runs in pool threads, where a few syscalls done directly are far cheaper than
 * queueing them on libuv's small file pool, which every thread of the process shares.
 */
import { closeSync, constants, fstatSync, mkdirSync, openSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { errnoCode, ToolhostError } from './errors.js';
import { danglingLink, fileError, fileNotFound, notRegularFile, unstable } from './file-errors.js';
import { chownFd, type Owner } from './process/owner.js';

/** Linux's O_PATH (the same on x86-64 and arm64), which Node's fs.constants does not export. */
export const O_PATH = 0o10000000;
const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;

/** Most symlinks one path may go through, as the kernel's own limit (ELOOP). */
const MAX_LINKS = 40;
/** Most times one walk looks again at a name that changed under it (a folder made, then swapped) before giving up. */
const MAX_RETRIES = 64;

/** `/proc/self/fd/<fd>`, or `/proc/self/fd/<fd>/<name>` for a single name inside the open folder `fd`. */
export function fdPath(fd: number, name?: string): string {
  return name === undefined ? `/proc/self/fd/${fd}` : `/proc/self/fd/${fd}/${name}`;
}

/** True when `child` is `parent` or lies below it (both absolute and normalized). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!isAbsolute(rel) && rel.split(sep)[0] !== '..');
}

/** The error for a path that leaves the project; it names the path as the caller gave it, nothing the server resolved. */
export function outsideProject(userPath: string): ToolhostError {
  return new ToolhostError(
    'path_outside_project',
    `path "${userPath}" is outside the project; use a path relative to the project root, without ".." that climbs out of it and without symlinks that point outside`,
    { path: userPath },
  );
}

/**
 * The names of `userPath` below `root`, after lexical normalization (`a//b`, `./a`, `a/../b`); [] for the root.
 * Refuses NUL bytes and paths that climb out.
 */
export function projectParts(root: string, userPath: string): string[] {
  if (userPath.includes('\0')) {
    throw new ToolhostError('path_outside_project', 'path contains a NUL byte; remove it', { path: userPath });
  }
  const target = resolve(root, userPath);
  if (!isInside(root, target)) throw outsideProject(userPath);
  return relative(root, target)
    .split(sep)
    .filter((p) => p !== '');
}

/** Joins names into a project-relative path ("." for the root). */
export function relOf(parts: readonly string[]): string {
  return parts.length === 0 ? '.' : parts.join('/');
}

/** Where a walk ended. Holds open fds: call {@link Reached.close} when done. */
export interface Reached {
  /** The path as asked, normalized and project-relative ("." for the root): what messages name. */
  shown: string;
  /** The open folder that holds the entry (the root itself when the path is "."). */
  dirFd: number;
  /** Real project-relative path of that folder (no symlinks in it). */
  dirParts: string[];
  /** The entry's name in that folder; "" when the path is the project root. */
  name: string;
  /** O_PATH fd of the entry, symlinks followed; undefined when nothing is there (yet). */
  fd: number | undefined;
  /** fstat of {@link fd}. */
  stat: Stats | undefined;
  /** Real project-relative path of the entry. */
  rel: string;
  /** True when the walk stopped early (lenient mode) at a missing folder or a file used as one. */
  incomplete: boolean;
  /** Closes the fds the walk left open. */
  close(): void;
}

/** How {@link reach} treats folders that are not there. */
export interface ReachOptions {
  /** Create missing folders on the way (not the last name), owned by `owner`. */
  create?: { owner: Owner | null };
  /** Stop quietly at a missing folder, or at a file used as a folder, instead of failing. */
  lenient?: boolean;
}

/** Closes `fd` (when given), ignoring an fd already closed: for releasing fds on the way out of a failure. */
export function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // already closed, or never a valid fd: nothing to release
  }
}

/** Throws path_outside_project unless the open `fd` really lies inside `root`. */
export function verifyInside(root: string, fd: number, userPath: string): void {
  const where = readlinkSync(fdPath(fd));
  if (!isInside(root, where)) throw outsideProject(userPath);
}

/**
 * Walks `userPath` inside the project at `root` (an absolute real path) as described at the top of this file:
 * every name opened through the folder before it, symlinks resolved here and confined to the project. Ends on
 * the entry (or where it would be created), with its folder held open.
 *
 * @throws path_outside_project when the path or a symlink on it leaves the project; file_not_found for a missing
 *   folder on the way (unless creating, or lenient); not_a_directory when a file is used as a folder, or, when
 *   creating, a symlink on the way points at a folder that does not exist (it is not created through the link).
 */
export function reach(root: string, userPath: string, opts: ReachOptions = {}): Reached {
  const asked = projectParts(root, userPath);
  const shown = relOf(asked);
  const rootFd = openSync(root, O_PATH | O_DIRECTORY);
  const held = new Set<number>([rootFd]);
  const release = (): void => {
    for (const fd of held) closeQuietly(fd);
    held.clear();
  };
  try {
    if (readlinkSync(fdPath(rootFd)) !== root) throw new ToolhostError('internal', 'the project folder moved while it was being opened');
    let dir = { fd: rootFd, parts: [] as string[] };
    const enter = (fd: number, name: string): void => {
      if (dir.fd !== rootFd) {
        closeQuietly(dir.fd);
        held.delete(dir.fd);
      }
      dir = fd === rootFd ? { fd, parts: [] } : { fd, parts: [...dir.parts, name] };
    };
    let queue = asked.slice();
    // How many names at the head of the queue came from a symlink's target rather than from the caller.
    let fromLink = 0;
    let links = 0;
    let retries = 0;
    const done = (fd: number | undefined, stat: Stats | undefined, name: string, incomplete = false): Reached => {
      if (dir.fd !== rootFd) verifyInside(root, dir.fd, userPath);
      if (fd !== undefined && fd !== dir.fd) verifyInside(root, fd, userPath);
      const dirParts = dir.parts;
      return {
        shown,
        dirFd: dir.fd,
        dirParts,
        name,
        fd,
        stat,
        rel: relOf(name === '' ? dirParts : [...dirParts, name]),
        incomplete,
        close: release,
      };
    };
    while (queue.length > 0) {
      const name = queue[0]!;
      const last = queue.length === 1;
      let fd: number;
      try {
        fd = openSync(fdPath(dir.fd, name), O_PATH | O_NOFOLLOW);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        if (last) return done(undefined, undefined, name);
        if (opts.lenient) return done(undefined, undefined, name, true);
        if (!opts.create) throw fileNotFound(shown);
        if (fromLink > 0) throw danglingLink(shown);
        const made = makeFolder(dir.fd, name, opts.create.owner);
        if (made === undefined) {
          if (++retries > MAX_RETRIES) throw unstable(shown);
          continue; // someone else made or swapped it: look again
        }
        fd = made;
      }
      held.add(fd);
      const st = fstatSync(fd);
      if (st.isSymbolicLink()) {
        closeQuietly(fd);
        held.delete(fd);
        if (++links > MAX_LINKS) {
          throw new ToolhostError('bad_request', `"${shown}" goes through more than ${MAX_LINKS} symlinks (a loop?); fix the links with a command`, {
            path: shown,
          });
        }
        let target: string;
        try {
          target = readlinkSync(fdPath(dir.fd, name));
        } catch (err) {
          const code = errnoCode(err);
          if (code !== 'ENOENT' && code !== 'EINVAL') throw err;
          if (++retries > MAX_RETRIES) throw unstable(shown);
          continue; // replaced between the open and the readlink: look again
        }
        // Resolved as a path, never opened: a target outside the project is refused without touching it.
        const abs = resolve(join(root, ...dir.parts), target);
        if (!isInside(root, abs)) throw outsideProject(userPath);
        const expanded = relative(root, abs)
          .split(sep)
          .filter((p) => p !== '');
        queue = [...expanded, ...queue.slice(1)];
        fromLink = expanded.length + Math.max(0, fromLink - 1);
        enter(rootFd, '');
        continue;
      }
      queue.shift();
      fromLink = Math.max(0, fromLink - 1);
      if (queue.length === 0) return done(fd, st, name);
      if (!st.isDirectory()) {
        if (opts.lenient) {
          closeQuietly(fd);
          held.delete(fd);
          return done(undefined, undefined, name, true);
        }
        throw new ToolhostError(
          'not_a_directory',
          `"${relOf([...dir.parts, name])}" is a file, not a folder, so "${shown}" cannot be inside it; choose another path`,
          {
            path: shown,
          },
        );
      }
      enter(fd, name);
    }
    // The path is the project root itself.
    return done(rootFd, fstatSync(rootFd), '');
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * Makes folder `name` in the open folder `dirFd`, gives it to `owner` and returns an fd of it; undefined when
 * the name was taken meanwhile or the new folder was swapped before it could be opened (look again).
 */
function makeFolder(dirFd: number, name: string, owner: Owner | null): number | undefined {
  try {
    mkdirSync(fdPath(dirFd, name), 0o755);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return undefined;
    throw err;
  }
  let fd: number;
  try {
    fd = openSync(fdPath(dirFd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return undefined;
    throw err;
  }
  try {
    chownFd(fd, owner);
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return fd;
}

/** An open regular file of the project: a readable fd, its fstat, and its paths. Close {@link fd} when done. */
export interface OpenFile {
  fd: number;
  stat: Stats;
  /** The path as asked, normalized and project-relative. */
  shown: string;
  /** Real project-relative path. */
  rel: string;
}

/**
 * Opens for reading the regular file a walk ended on, through its fd (O_NONBLOCK, so even a swap to a FIFO at
 * this very moment cannot block). The Reached stays open (a write may follow in its folder).
 *
 * @throws file_not_found, is_a_directory or not_a_regular_file.
 */
export function openReached(at: Reached): OpenFile {
  if (at.fd === undefined || at.stat === undefined) throw fileNotFound(at.shown);
  if (at.stat.isDirectory()) {
    throw new ToolhostError('is_a_directory', `"${at.shown}" is a folder; use /file/list to see its contents`, { path: at.shown });
  }
  if (!at.stat.isFile()) throw notRegularFile(at.shown, at.stat);
  const fd = openSync(fdPath(at.fd), O_RDONLY | O_NONBLOCK | O_NOCTTY);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.ino !== at.stat.ino || stat.dev !== at.stat.dev) throw unstable(at.shown);
    return { fd, stat, shown: at.shown, rel: at.rel };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

/** Opens the regular file at `userPath` for reading (see {@link reach} and {@link openReached}). */
export function openProjectFile(root: string, userPath: string): OpenFile {
  const at = reach(root, userPath);
  try {
    return openReached(at);
  } finally {
    at.close();
  }
}

/**
 * Reads `length` bytes from the start of an open file, or fewer when it shrank meanwhile; a file that grows
 * meanwhile is read only up to `length`, so a command appending without end cannot make this read without end.
 */
export function readExactly(fd: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** Opens the folder at `userPath` (symlinks inside the project followed) and returns its walk; close it when done. */
export function reachFolder(root: string, userPath: string): Reached {
  const at = reach(root, userPath);
  try {
    if (at.fd === undefined || at.stat === undefined) {
      throw new ToolhostError('file_not_found', `"${at.shown}" does not exist; list "." to see what is there`, { path: at.shown });
    }
    if (!at.stat.isDirectory()) {
      throw new ToolhostError('not_a_directory', `"${at.shown}" is a file, not a folder; read it with file.read`, { path: at.shown });
    }
    return at;
  } catch (err) {
    at.close();
    throw err;
  }
}

/** {@link fileError} for a failure on `userPath`, named project-relative when it is inside the project. */
export function fileErrorFor(root: string, userPath: string, err: unknown): ToolhostError {
  if (err instanceof ToolhostError) return err;
  let shown = userPath;
  try {
    shown = relOf(projectParts(root, userPath));
  } catch {
    // refused paths never get this far; keep the caller's spelling
  }
  return fileError(err, shown);
}

/** Runs `fn`, turning any failure into a {@link fileError} that names `userPath` (project-relative when it can). */
export function withFileErrors<T>(root: string, userPath: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw fileErrorFor(root, userPath, err);
  }
}
