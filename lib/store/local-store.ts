/**
 * The embedded project store: `<dir>/<project_id>.zip` or `<dir>/<project_id>.tar.gz` on local disk, conflict
 * copies beside them. A write is staged as a temp file in the folder first (a hard link, or a copy across file
 * systems), then renamed into place, so readers only ever see whole archives.
 */
import { randomUUID } from 'node:crypto';
import { createWriteStream, type Stats } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ArchiveFormat, archiveExtension } from '../archive/format.js';
import { READ_CHUNK_BYTES } from '../archive/tar-reader.js';
import { errnoCode } from '../errors.js';
import { KeyedMutex } from '../keyed-mutex.js';
import {
  ARCHIVE_FORMATS,
  archiveName,
  conflictName,
  type FetchedArchive,
  type LoadedArchive,
  newest,
  notFound,
  type OpenedArchive,
  type ProjectStore,
  type PutCondition,
  parseArchiveName,
  type StoredProject,
  saveConflict,
} from './project-store.js';

/** Folder (inside the store folder) of the per-project lock files of conditional writes. */
const LOCK_DIR = '.locks';
/**
 * A lock file older than this was left by a writer that died: the section it guards is a stat, a rename and an
 * unlink (the slow copy happens before the lock is taken), so a live holder never keeps it this long.
 */
const STALE_LOCK_MS = 10_000;
/** Errors of link(2) that mean "copy instead": another file system, or one without hard links. */
const NO_HARD_LINK = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);

/** {@link ProjectStore} on a local folder of one machine. */
export class LocalStore implements ProjectStore {
  readonly #dir: string;
  // Writers of one thread queue here rather than polling the lock file against each other.
  readonly #mutex = new KeyedMutex();

  /** @param dir - The store folder (created by {@link LocalStore.init}). */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Creates the folder. */
  async init(): Promise<void> {
    await mkdir(join(this.#dir, LOCK_DIR), { recursive: true });
  }

  async stat(id: string): Promise<StoredProject | null> {
    const [zip, tgz] = await Promise.all(ARCHIVE_FORMATS.map((f) => this.#statFormat(id, f)));
    return newest(zip ?? null, tgz ?? null);
  }

  async list(): Promise<StoredProject[]> {
    const names = await readdir(this.#dir).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return [] as string[];
      throw err;
    });
    const parsed = names.map(parseArchiveName).filter((p) => p !== null);
    const found = await Promise.all(parsed.map((p) => this.#statFormat(p.id, p.format)));
    const byId = new Map<string, StoredProject>();
    for (const f of found) if (f) byId.set(f.id, newest(byId.get(f.id) ?? null, f)!);
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async load(id: string, scratchDir: string): Promise<LoadedArchive> {
    await mkdir(scratchDir, { recursive: true });
    return this.#withCurrent(
      id,
      async (source, format): Promise<LoadedArchive> =>
        format === 'zip' ? { kind: 'file', ...(await pinned(source, format, scratchDir)) } : { kind: 'stream', ...(await opened(source, format)) },
    );
  }

  async put(id: string, format: ArchiveFormat, file: string, condition?: PutCondition): Promise<StoredProject> {
    const target = join(this.#dir, archiveName(id, format));
    const staged = await this.#stage(id, file);
    try {
      // Renaming keeps the inode, mtime and size, so the staged file's etag is the stored archive's.
      const stored = toStored(id, format, await stat(staged));
      await this.#locked(id, async () => {
        if (condition) await this.#check(id, format, condition);
        await rename(staged, target);
        if (!condition) {
          for (const other of ARCHIVE_FORMATS) if (other !== format) await rm(join(this.#dir, archiveName(id, other)), { force: true });
        }
      });
      await rm(file, { force: true });
      return stored;
    } catch (err) {
      await rm(staged, { force: true });
      throw err;
    }
  }

  async putConflict(id: string, format: ArchiveFormat, file: string, stamp: string): Promise<string> {
    const name = conflictName(id, format, stamp);
    const staged = await this.#stage(id, file);
    try {
      await rename(staged, join(this.#dir, name));
    } catch (err) {
      await rm(staged, { force: true });
      throw err;
    }
    await rm(file, { force: true });
    return name;
  }

  async delete(id: string): Promise<boolean> {
    // Under the write lock: a conditional write racing the delete either lands before it (and is deleted) or after.
    return this.#locked(id, async () => {
      let found = false;
      for (const format of ARCHIVE_FORMATS) {
        try {
          await unlink(join(this.#dir, archiveName(id, format)));
          found = true;
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err;
        }
      }
      return found;
    });
  }

  async #statFormat(id: string, format: ArchiveFormat): Promise<StoredProject | null> {
    try {
      const st = await stat(join(this.#dir, archiveName(id, format)));
      return st.isFile() ? toStored(id, format, st) : null;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    }
  }

  /**
   * Runs `use` on the path of the project's current archive. When that archive vanishes between the stat and
   * `use` (a write switched formats), looks once more before calling the project unknown.
   */
  async #withCurrent<T>(id: string, use: (path: string, format: ArchiveFormat) => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const found = await this.stat(id);
      if (!found) break;
      try {
        return await use(join(this.#dir, archiveName(id, found.format)), found.format);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    }
    throw notFound(id);
  }

  /** Puts a copy of `file` in the store folder under a temp name that no listing reads as a project. */
  async #stage(id: string, file: string): Promise<string> {
    const staged = join(this.#dir, `.${id}.${randomUUID()}.tmp`);
    try {
      await link(file, staged);
    } catch (err) {
      if (!NO_HARD_LINK.has(errnoCode(err) ?? '')) throw err;
      await copyFile(file, staged);
    }
    // modifiedAt is when the store took the archive (as in Azure), not when the caller happened to write it.
    const now = new Date();
    await utimes(staged, now, now);
    return staged;
  }

  async #check(id: string, format: ArchiveFormat, condition: PutCondition): Promise<void> {
    const current = 'ifMatch' in condition ? await this.#statFormat(id, format) : await this.stat(id);
    const holds = 'ifMatch' in condition ? current?.etag === condition.ifMatch : current === null;
    if (!holds) throw saveConflict(id, condition);
  }

  /**
   * Runs a check-then-rename with the project's lock held. Every pool thread has its own LocalStore, so an
   * in-memory mutex alone would not exclude writers of other threads (or processes): an O_EXCL lock file does.
   */
  async #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#mutex.run(id, async () => {
      const lock = join(this.#dir, LOCK_DIR, `${id}.lock`);
      await acquireLockFile(lock);
      try {
        return await fn();
      } finally {
        await rm(lock, { force: true });
      }
    });
  }
}

/** The ETag of a stored file: changes with every write, since each write brings a new inode and mtime. */
function etagOf(st: Stats): string {
  return `"${st.mtimeMs.toString(16)}-${st.size.toString(16)}-${st.ino.toString(16)}"`;
}

function toStored(id: string, format: ArchiveFormat, st: Stats): StoredProject {
  return { id, format, size: st.size, modifiedAt: st.mtime.toISOString(), etag: etagOf(st) };
}

/**
 * A file of `scratchDir` holding the archive at `source` as it is now. A hard link pins the version: a later write
 * renames a new file over the store's name, the link keeps the bytes it was made from (and their etag).
 * Extraction only reads it; writing to it would alter the store.
 */
async function pinned(source: string, format: ArchiveFormat, scratchDir: string): Promise<FetchedArchive> {
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
async function opened(source: string, format: ArchiveFormat): Promise<OpenedArchive> {
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
async function pinnedCopy(source: string, dest: string): Promise<string> {
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
async function acquireLockFile(path: string): Promise<void> {
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
