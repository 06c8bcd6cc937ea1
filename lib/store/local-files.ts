/**
 * The file-level steps of the local store (local-store.ts): etags of files, reading an archive pinned to one
 * version, listing a folder, and the O_EXCL lock files that exclude writers of other threads and processes.
 */

import { randomUUID } from 'node:crypto';
import { createWriteStream, type Dirent, type Stats } from 'node:fs';
import { link, mkdir, open, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ArchiveFormat, archiveExtension } from '../archive/format.js';
import { READ_CHUNK_BYTES } from '../archive/tar-reader.js';
import { errnoCode } from '../errors.js';
import type { FetchedArchive, OpenedArchive, StoredObject, StoredProject } from './project-store.js';

/**
 * A lock file older than this was left by a writer that died: the section it guards is a stat, a rename and an
 * unlink (the slow copy happens before the lock is taken), so a live holder never keeps it this long.
 */
const STALE_LOCK_MS = 10_000;
/** Errors of link(2) that mean "copy instead": another file system, or one without hard links. */
export const NO_HARD_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);

/** The ETag of a stored file: changes with every write, since each write brings a new inode and mtime. */
export function etagOf(st: Stats): string {
  return `"${st.mtimeMs.toString(16)}-${st.size.toString(16)}-${st.ino.toString(16)}"`;
}

export function toStored(id: string, format: ArchiveFormat, st: Stats): StoredProject {
  return { id, format, size: st.size, modifiedAt: st.mtime.toISOString(), etag: etagOf(st) };
}

export function toObject(name: string, st: Stats): StoredObject {
  return { name, size: st.size, modifiedAt: st.mtime.toISOString(), etag: etagOf(st) };
}

/** Errors of a lookup that mean "no such object": nothing there, a symbolic link, or a file where a folder is. */
export const ABSENT = new Set(['ENOENT', 'ELOOP', 'ENOTDIR']);

/** Unlinks `path`; resolves false when there was nothing. */
export async function unlinked(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (ABSENT.has(errnoCode(err) ?? '')) return false;
    throw err;
  }
}

/** The entries of a folder, those starting with "." (temp files, locks) left out; none when it is gone. */
export async function entries(dir: string): Promise<Dirent[]> {
  const found = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
    if (ABSENT.has(errnoCode(err) ?? '')) return [] as Dirent[];
    throw err;
  });
  return found.filter((e) => !e.name.startsWith('.'));
}

/**
 * A file of `scratchDir` holding the archive at `source` as it is now. A hard link pins the version: a later write
 * renames a new file over the store's name, the link keeps the bytes it was made from (and their etag).
 * Extraction only reads it; writing to it would alter the store.
 */
export async function pinned(source: string, format: ArchiveFormat, scratchDir: string): Promise<FetchedArchive> {
  const file = join(scratchDir, `fetch-${randomUUID()}${archiveExtension(format)}`);
  try {
    const etag = await pinnedCopy(source, file);
    return { file, format, etag, release: () => rm(file, { force: true }) };
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
}

/** The archive at `source` as a stream; fstat on the open descriptor, so the etag is that of the bytes read. */
export async function opened(source: string, format: ArchiveFormat): Promise<OpenedArchive> {
  const fh = await open(source, 'r');
  try {
    const st = await fh.stat();
    return { stream: fh.createReadStream({ highWaterMark: READ_CHUNK_BYTES }), format, etag: etagOf(st), size: st.size };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Makes `dest` hold exactly the bytes of `source` as they are now, and returns their etag. */
export async function pinnedCopy(source: string, dest: string): Promise<string> {
  try {
    await link(source, dest);
    return etagOf(await stat(dest));
  } catch (err) {
    if (!NO_HARD_LINK.has(errnoCode(err) ?? '')) throw err;
  }
  const fh = await open(source, 'r');
  let st: Stats;
  try {
    st = await fh.stat();
  } catch (err) {
    await fh.close();
    throw err;
  }
  await pipeline(fh.createReadStream(), createWriteStream(dest));
  return etagOf(st);
}

/** Takes the lock file at `path`, waiting while another live writer holds it. */
export async function acquireLockFile(path: string): Promise<void> {
  for (;;) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') {
        await mkdir(dirname(path), { recursive: true }); // the lock folder was removed under us
        continue;
      }
      if (code !== 'EEXIST') throw err;
    }
    const held = await stat(path).catch(() => null);
    // Two waiters may both judge one lock stale and the second remove the lock the first just took; that needs a
    // crashed writer and two racing ones within milliseconds, and costs at most one unguarded check.
    if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) await rm(path, { force: true });
    else await sleep(5 + Math.random() * 20);
  }
}
