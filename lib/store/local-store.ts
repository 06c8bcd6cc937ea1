/**
 * The embedded project store: `<dir>/<project_id>.zip` or `<dir>/<project_id>.tar.gz` on local disk, conflict
 * copies beside them; other objects (layers, manifests) as files `<dir>/<name>`, a name's "/" a subfolder. A write
 * is staged as a temp file in the folder first (a hard link, or a copy across file systems), then renamed into
 * place, so readers only ever see whole files.
 */
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ArchiveFormat } from '../archive/format.js';
import { READ_CHUNK_BYTES } from '../archive/tar-reader.js';
import { errnoCode } from '../errors.js';
import { KeyedMutex } from '../keyed-mutex.js';
import { ABSENT, acquireLockFile, entries, etagOf, NO_HARD_LINK, opened, pinned, toObject, toStored, unlinked } from './local-files.js';
import {
  ARCHIVE_FORMATS,
  archiveName,
  checkedObjectName,
  conflictName,
  current,
  isObjectName,
  type LoadedArchive,
  manifestName,
  newest,
  notFound,
  type ObjectCondition,
  objectConflict,
  type ProjectStore,
  type PutCondition,
  parseArchiveName,
  parseManifestName,
  type StoredObject,
  type StoredProject,
  saveConflict,
} from './project-store.js';

/** Folder (inside the store folder) of the per-project lock files of conditional writes. */
const LOCK_DIR = '.locks';

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
    const [manifest, archive] = await Promise.all([this.#statManifest(id), this.#statArchive(id)]);
    return current(manifest, archive);
  }

  async list(): Promise<StoredProject[]> {
    const names = await readdir(this.#dir).catch((err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return [] as string[];
      throw err;
    });
    const found = await Promise.all(
      names.map((name) => {
        const archive = parseArchiveName(name);
        if (archive) return this.#statFormat(archive.id, archive.format);
        const manifest = parseManifestName(name);
        return manifest === null ? null : this.#statManifest(manifest);
      }),
    );
    const byId = new Map<string, StoredProject>();
    for (const f of found) if (f) byId.set(f.id, current(byId.get(f.id) ?? null, f)!);
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
      for (const name of [...ARCHIVE_FORMATS.map((f) => archiveName(id, f)), manifestName(id)]) {
        if (await unlinked(join(this.#dir, name))) found = true;
      }
      return found;
    });
  }

  async getObject(name: string): Promise<{ body: Buffer; etag: string } | null> {
    const fh = await this.#openObject(name);
    if (!fh) return null;
    try {
      const st = await fh.stat();
      return { body: await fh.readFile(), etag: etagOf(st) };
    } finally {
      await fh.close();
    }
  }

  async openObject(name: string): Promise<{ stream: Readable; etag: string; size: number } | null> {
    const fh = await this.#openObject(name);
    if (!fh) return null;
    try {
      const st = await fh.stat();
      return { stream: fh.createReadStream({ highWaterMark: READ_CHUNK_BYTES }), etag: etagOf(st), size: st.size };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async putObject(name: string, body: Buffer | { file: string }, condition?: ObjectCondition): Promise<StoredObject> {
    const target = join(this.#dir, checkedObjectName(name));
    // A copy, not a link: the caller keeps its file and may rewrite it, which must not change the stored object.
    // The copy is a new file, so its mtime is the time of this write (no utimes needed, unlike #stage).
    const staged = join(this.#dir, `.object.${randomUUID()}.tmp`);
    try {
      if (Buffer.isBuffer(body)) await writeFile(staged, body, { flag: 'wx' });
      else await copyFile(body.file, staged, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      const stored = toObject(name, await stat(staged));
      await this.#locked(lockKey(name), async () => {
        if (condition) {
          const found = await this.#statObject(name);
          if ('ifMatch' in condition ? found?.etag !== condition.ifMatch : found !== null) throw objectConflict(name, condition);
        }
        if (name.includes('/')) await mkdir(dirname(target), { recursive: true });
        await rename(staged, target);
      });
      return stored;
    } catch (err) {
      await rm(staged, { force: true });
      throw err;
    }
  }

  /** With `ifMatch` and another version stored, resolves false and deletes nothing (as when absent). */
  async deleteObject(name: string, condition?: { ifMatch: string }): Promise<boolean> {
    const path = join(this.#dir, checkedObjectName(name));
    return this.#locked(lockKey(name), async () => {
      if (condition && (await this.#statObject(name))?.etag !== condition.ifMatch) return false;
      return unlinked(path);
    });
  }

  /** Regular files only, two levels at most (an object name has one "/" at most), temp files and locks skipped. */
  async listObjects(prefix: string): Promise<StoredObject[]> {
    const names: string[] = [];
    for (const top of await entries(this.#dir)) {
      if (top.isFile()) names.push(top.name);
      else if (top.isDirectory() && (`${top.name}/`.startsWith(prefix) || prefix.startsWith(`${top.name}/`))) {
        for (const sub of await entries(join(this.#dir, top.name))) if (sub.isFile()) names.push(`${top.name}/${sub.name}`);
      }
    }
    const wanted = names.filter((n) => n.startsWith(prefix) && isObjectName(n)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const found = await Promise.all(wanted.map((n) => this.#statObject(n)));
    return found.filter((f) => f !== null);
  }

  /** The object's file opened for reading, or null when there is none (a folder, a symbolic link, nothing). */
  async #openObject(name: string) {
    let fh: Awaited<ReturnType<typeof open>>;
    try {
      fh = await open(join(this.#dir, checkedObjectName(name)), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (ABSENT.has(errnoCode(err) ?? '')) return null;
      throw err;
    }
    if ((await fh.stat().catch(() => null))?.isFile()) return fh;
    await fh.close();
    return null;
  }

  async #statObject(name: string): Promise<StoredObject | null> {
    try {
      // lstat: a symbolic link is no object, as openObject and listObjects see it too.
      const st = await lstat(join(this.#dir, name));
      return st.isFile() ? toObject(name, st) : null;
    } catch (err) {
      if (ABSENT.has(errnoCode(err) ?? '')) return null;
      throw err;
    }
  }

  async #statManifest(id: string): Promise<StoredProject | null> {
    const found = await this.#statObject(manifestName(id));
    return found && { id, format: 'layers', size: found.size, modifiedAt: found.modifiedAt, etag: found.etag };
  }

  async #statArchive(id: string): Promise<StoredProject | null> {
    const [zip, tgz] = await Promise.all(ARCHIVE_FORMATS.map((f) => this.#statFormat(id, f)));
    return newest(zip ?? null, tgz ?? null);
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
      const found = await this.#statArchive(id);
      if (!found || found.format === 'layers') break;
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
   * Runs a check-then-rename with the lock of `key` held (a project id, or {@link lockKey}'s). Every pool thread
   * has its own LocalStore, so an in-memory mutex alone would not exclude writers of other threads (or
   * processes): an O_EXCL lock file does.
   */
  async #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.#mutex.run(key, async () => {
      const lock = join(this.#dir, LOCK_DIR, `${key}.lock`);
      await acquireLockFile(lock);
      try {
        return await fn();
      } finally {
        await rm(lock, { force: true });
      }
    });
  }
}

/**
 * The lock an object's writes take: a manifest or an archive takes its project's, so a create of the project and
 * a write of its manifest exclude each other; any other object its own, "~" standing for "/" (neither is in ids).
 */
function lockKey(name: string): string {
  return parseManifestName(name) ?? parseArchiveName(name)?.id ?? `~${name.replace('/', '~')}`;
}
