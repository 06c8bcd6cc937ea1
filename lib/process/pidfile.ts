/**
 * The supervisor's pidfile, `<dataDir>/toolhost.pid`: the pid alone, so `kill -HUP "$(cat data/toolhost.pid)"`
 * reaches this toolhost and no other. It is written at start and removed at a clean exit, and it guards the data
 * dir: two supervisors on one would extract, save and evict the same working copies under each other.
 *
 * The process keeps the file open for its whole life. That is how a second supervisor tells the live holder from
 * a pid the system has since given to another process: the holder's /proc/<pid>/fd names this very file. A
 * pidfile whose pid is dead, or alive without the file open (reused), is stale and replaced.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { link, mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** The pidfile of a data dir. */
export function pidfilePath(dataDir: string): string {
  return join(dataDir, 'toolhost.pid');
}

/** Another toolhost runs on this data dir. */
export class DataDirInUse extends Error {
  override readonly name = 'DataDirInUse';
  constructor(
    readonly pid: number,
    readonly path: string,
    why: string,
  ) {
    super(
      `another toolhost (pid ${pid}) is running on this data dir: ${path} names it${why}. Two supervisors on one data dir ` +
        `would corrupt its cache: stop that one first (kill ${pid}), or give this one another dataDir`,
    );
  }
}

/** A pidfile this process holds. */
export interface Pidfile {
  path: string;
  /** Removes the file if it is still this process's, and closes it. Later calls do nothing. */
  release(): Promise<void>;
}

/**
 * Writes this process's pidfile in `dataDir` (creating the folder), replacing a stale one. Throws
 * {@link DataDirInUse} when the file names a live toolhost.
 */
export async function acquirePidfile(dataDir: string): Promise<Pidfile> {
  await mkdir(dataDir, { recursive: true });
  const path = pidfilePath(dataDir);
  // Written under a name of its own, then linked into place: link fails if a pidfile is there, so two starting
  // at once cannot both take it, and nobody ever reads a half-written one.
  const tmp = join(dataDir, `.toolhost.pid.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  let held = false;
  try {
    writeSync(fd, `${process.pid}\n`);
    for (let attempt = 0; !held; attempt++) {
      try {
        await link(tmp, path);
        held = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw err;
        await removeIfStale(path);
      }
    }
  } finally {
    await unlink(tmp).catch(() => {});
    if (!held) closeSync(fd);
  }
  const mine = await stat(path);
  let released = false;
  return {
    path,
    async release() {
      if (released) return;
      released = true;
      const now = await stat(path).catch(() => undefined);
      if (now && now.ino === mine.ino && now.dev === mine.dev) await unlink(path).catch(() => {});
      closeSync(fd);
    },
  };
}

/** Removes the pidfile at `path` unless a live toolhost holds it (then throws {@link DataDirInUse}). */
async function removeIfStale(path: string): Promise<void> {
  const file = await stat(path).catch(() => undefined);
  if (!file) return; // gone meanwhile: try again
  const text = (await readFile(path, 'utf8').catch(() => '')).trim();
  const pid = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : 0;
  if (pid > 0 && pid !== process.pid && alive(pid)) {
    const holds = await holdsOpen(pid, file);
    if (holds !== false) throw new DataDirInUse(pid, path, holds ? '' : ' and its /proc entry cannot be read, so it may be a toolhost');
  }
  // Stale. Remove it only if it is still the file just judged, not one a starting peer has linked since.
  const again = await stat(path).catch(() => undefined);
  if (again && again.ino === file.ino && again.dev === file.dev) await unlink(path).catch(() => {});
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, but another user's
  }
}

/** Whether process `pid` has `file` open: true, false, or undefined when its fds cannot be read (no /proc, another user). */
async function holdsOpen(pid: number, file: { ino: number; dev: number }): Promise<boolean | undefined> {
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && (await stat('/proc/self/fd').catch(() => undefined)) ? false : undefined;
  }
  for (const fd of fds) {
    const st = await stat(`/proc/${pid}/fd/${fd}`).catch(() => undefined);
    if (st && st.ino === file.ino && st.dev === file.dev) return true;
  }
  return false;
}
