/**
 * Atomic file replacement inside an open folder: a temp file written next to the target, then renamed over it,
 * both named through `/proc/self/fd/<dirfd>/<name>` so a folder swapped for a symlink meanwhile cannot redirect
 * either step (see lib/safe-fs.ts).
 */
import { closeSync, constants, fchmodSync, fchownSync, openSync, renameSync, type Stats, unlinkSync, writeSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import type { Owner } from './process/owner.js';
import { fdPath } from './safe-fs.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

/** Mode of a file the tools create (not subject to the umask, so it is the same whoever runs the server). */
const NEW_FILE_MODE = 0o644;

/** What a replacement keeps of the file it replaces, and who gets a new one. */
export interface ReplaceOptions {
  /** fstat of the file being replaced, if any: its mode, uid and gid carry over. */
  previous: Stats | undefined;
  /** The project's owner (null when toolhost is not root): a new file is given to it. */
  owner: Owner | null;
}

/** A temp name next to `name`, short enough for NAME_MAX whatever the length of `name`. */
function tempName(name: string): string {
  return `.${name.slice(0, 100)}.toolhost-${process.pid}-${threadId}-${Math.random().toString(36).slice(2)}.tmp`;
}

/**
 * Writes `data` as `name` in the open folder `dirFd` so readers see the old content or the new, never a mix. A
 * replaced file keeps its mode and, when toolhost is root, its uid and gid; a new file gets mode 0644 and the
 * project's owner.
 *
 * Synchronous: it runs in pool threads, where direct syscalls beat queueing on libuv's shared file pool.
 */
export function replaceInFolder(dirFd: number, name: string, data: string | Buffer, o: ReplaceOptions): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const tmp = fdPath(dirFd, tempName(name));
  const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    try {
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      // chown before chmod: chown clears set-id bits that the mode may have to carry over.
      if (o.owner) fchownSync(fd, o.previous?.uid ?? o.owner.uid, o.previous?.gid ?? o.owner.gid);
      fchmodSync(fd, o.previous ? o.previous.mode & 0o7777 : NEW_FILE_MODE);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, fdPath(dirFd, name));
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // not there any more: nothing to clean
    }
    throw err;
  }
}
