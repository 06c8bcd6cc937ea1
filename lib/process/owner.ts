/**
 * Who a project's commands run as, and who owns its files. When toolhost runs as root, each project gets a uid of
 * its own (from `commands.uidBase`, `commands.uidCount` of them), so a command is never the host's root and, even
 * without a sandbox, cannot read another project's working copy (each is mode 0700, owned by its project's uid).
 * Allocation is recorded in `<dataDir>/uids/<uid>` (content: the project id), made with O_EXCL so two threads or
 * processes that race for one uid agree; a hash of the id picks the first uid tried, then the next ones in turn.
 * When toolhost is not root it cannot change uid: commands run as toolhost's own uid and owners are left alone.
 *
 * Synchronous on purpose: it runs in pool threads, a handful of tiny file operations once per project per thread.
 */
import { chmodSync, chownSync, closeSync, constants, fchownSync, lchownSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';

/** A uid and gid (the same number). */
export interface Owner {
  uid: number;
  gid: number;
}

/** The settings allocation needs. */
export interface OwnerSettings {
  dataDir: string;
  commands: { uidBase: number; uidCount: number };
}

/** True when this process can give files away and run commands as other uids. */
export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

const cache = new Map<string, Owner>();

/** FNV-1a of the id: a stable first guess, so most lookups read one small file. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The folder of uid claims. */
export function uidsDir(dataDir: string): string {
  return join(dataDir, 'uids');
}

/**
 * The owner of project `projectId`'s files and commands, allocated on first use; null when toolhost is not root
 * (nothing is given away then).
 */
export function projectOwner(s: OwnerSettings, projectId: string): Owner | null {
  if (!runningAsRoot()) return null;
  const key = `${s.dataDir}\0${projectId}`;
  const known = cache.get(key);
  if (known) return known;
  const dir = uidsDir(s.dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { uidBase, uidCount } = s.commands;
  const first = hash(projectId) % uidCount;
  for (let i = 0; i < uidCount; i++) {
    const uid = uidBase + ((first + i) % uidCount);
    const claim = join(dir, String(uid));
    let holder: string;
    try {
      const fd = openSync(claim, 'wx', 0o600);
      try {
        writeSync(fd, projectId);
      } finally {
        closeSync(fd);
      }
      holder = projectId;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      holder = readClaim(claim);
    }
    if (holder === projectId) {
      const owner = { uid, gid: uid };
      cache.set(key, owner);
      return owner;
    }
  }
  throw new Error(`every uid from ${uidBase} to ${uidBase + uidCount - 1} is taken; raise commands.uidCount`);
}

/** A claim's project id. A claim being written right now reads empty for a moment: wait for its content. */
function readClaim(file: string): string {
  for (let tries = 0; ; tries++) {
    const text = readFileSync(file, 'utf8');
    if (text !== '' || tries >= 1000) return text;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
  }
}

/**
 * Gives a tree to `owner`: every entry, symlinks themselves (never their targets), the top folder last, mode 0700.
 * Folders are opened one through another with O_NOFOLLOW and entries named through their folder's fd, so even a
 * tree whose project commands are already running (a copy made before uids were given out) cannot turn a folder
 * into a symlink that leads this root walk, and its chown, outside.
 */
/**
 * Gives `owner` the entries `paths` (root-relative) of a folder this process just made and nobody else can reach
 * yet (a restore's staging folder, whose other entries are already the owner's), and the folder itself, 0700.
 */
export function chownEntries(root: string, paths: readonly string[], owner: Owner | null): void {
  if (!owner) return;
  for (const p of paths) lchownSync(`${root}/${p}`, owner.uid, owner.gid);
  chownSync(root, owner.uid, owner.gid);
  chmodSync(root, 0o700);
}

export function chownTree(root: string, owner: Owner | null): void {
  if (!owner) return;
  const at = (fd: number, name = ''): string => `/proc/self/fd/${fd}${name ? `/${name}` : ''}`;
  const walk = (dirFd: number): void => {
    for (const d of readdirSync(at(dirFd), { withFileTypes: true })) {
      try {
        lchownSync(at(dirFd, d.name), owner.uid, owner.gid);
        if (!d.isDirectory()) continue;
        const sub = openSync(at(dirFd, d.name), O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW);
        try {
          walk(sub);
        } finally {
          closeSync(sub);
        }
      } catch (err) {
        // Gone, or swapped for something that is not a folder, since the listing: nothing of ours to give.
        const code = errnoCode(err);
        if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') throw err;
      }
    }
  };
  const top = openSync(root, O_PATH | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    walk(top);
    chownSync(at(top), owner.uid, owner.gid); // through the fd itself: the folder that was opened
    chmodSync(at(top), 0o700);
  } finally {
    closeSync(top);
  }
}

/** Linux's O_PATH (x86-64 and arm64): an fd that names a folder without reading it. */
const O_PATH = 0o10000000;

/** Gives an open file to `owner` (no-op when null). */
export function chownFd(fd: number, owner: Owner | null): void {
  if (owner) fchownSync(fd, owner.uid, owner.gid);
}

/** Makes `dir` (and its parents) if missing and gives it to `owner` with `mode`: a project's HOME, say. */
export function ownedDir(dir: string, owner: Owner | null, mode = 0o700): void {
  mkdirSync(dir, { recursive: true, mode });
  if (owner) lchownSync(dir, owner.uid, owner.gid);
  chmodSync(dir, mode);
}
