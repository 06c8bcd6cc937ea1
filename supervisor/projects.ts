/**
 * The local cache of project working copies. A project is extracted from the store on first use into
 * `<dataDir>/projects/<id>/` (via a temp folder renamed into place, so nothing is ever half-extracted in the
 * cache) and served from there. Concurrent first uses share one extraction; extraction runs on the pool, never
 * on the supervisor's event loop.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, readdir, realpath, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sniffFile } from '../lib/archive/format.js';
import { ToolhostError, fromSerialized } from '../lib/errors.js';
import { FairSemaphore } from '../lib/fair-semaphore.js';
import { KeyedMutex } from '../lib/keyed-mutex.js';
import type { ProjectStore, StoredProject } from '../lib/store/project-store.js';
import { notFound } from '../lib/store/local-store.js';
import type { Pools } from './pools.js';

/** What the cache knows of one working copy. */
interface CacheEntry {
  root: string;
  sourceEtag: string;
  materializedAt: number;
  lastAccess: number;
}

/** The JSON view of a project (GET /projects/:id). */
export interface ProjectInfo {
  project_id: string;
  format: string;
  archive_bytes: number;
  modified_at: string;
  cached: boolean;
  cache: { size_bytes: number; last_access: string; materialized_at: string; source_etag: string } | null;
}

/** Dependencies of the cache. */
export interface ProjectCacheOptions {
  dataDir: string;
  store: ProjectStore;
  pools: Pools;
  /** Most extractions running at once (they share the file pool with file jobs). */
  maxExtractions: number;
  /** Jobs queued or running for a project; a project with any is never replaced under them. */
  activeJobs(id: string): number;
}

/** Events of the cache, for metrics and observers. */
export interface ProjectCacheEvents {
  /** A job found its project's working copy ready. */
  hit: [id: string];
  /** A job's project had to be extracted first (emitted once per extraction). */
  miss: [id: string];
}

/** Local working copies of stored projects. */
export class ProjectCache extends EventEmitter<ProjectCacheEvents> {
  readonly #o: ProjectCacheOptions;
  readonly #projectsDir: string;
  readonly #tmpDir: string;
  readonly #entries = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<string>>();
  readonly #locks = new KeyedMutex();
  readonly #extractions: FairSemaphore;

  constructor(o: ProjectCacheOptions) {
    super();
    this.#o = o;
    this.#projectsDir = join(o.dataDir, 'projects');
    this.#tmpDir = join(o.dataDir, 'tmp');
    this.#extractions = new FairSemaphore(o.maxExtractions);
  }

  /** Scratch folder for uploads and extractions (same file system as the cache, so renames are atomic). */
  get tmpDir(): string {
    return this.#tmpDir;
  }

  /** Creates the folders, drops half-done work of an earlier run and learns which projects are cached. */
  async start(): Promise<void> {
    await rm(this.#tmpDir, { recursive: true, force: true });
    await mkdir(this.#tmpDir, { recursive: true });
    await mkdir(this.#projectsDir, { recursive: true });
    const now = Date.now();
    for (const id of await readdir(this.#projectsDir)) {
      const stored = await this.#o.store.stat(id);
      if (!stored) continue;
      const root = await realpath(join(this.#projectsDir, id));
      this.#entries.set(id, { root, sourceEtag: stored.etag, materializedAt: now, lastAccess: now });
    }
  }

  /** The working copy's root, extracting the project first if needed. Throws `project_not_found`. */
  ensure(id: string): Promise<string> {
    const entry = this.#entries.get(id);
    if (entry) {
      entry.lastAccess = Date.now();
      this.emit('hit', id);
      return Promise.resolve(entry.root);
    }
    let flight = this.#inflight.get(id);
    if (!flight) {
      this.emit('miss', id);
      flight = this.#locks.run(id, () => this.#materialize(id)).finally(() => this.#inflight.delete(id));
      this.#inflight.set(id, flight);
    }
    return flight;
  }

  async #materialize(id: string): Promise<string> {
    const cached = this.#entries.get(id);
    if (cached) return cached.root; // a PUT finished while we waited for the lock
    const fetched = await this.#o.store.fetch(id, this.#tmpDir);
    try {
      return await this.#install(id, fetched.file, fetched.format, fetched.etag);
    } finally {
      await fetched.release();
    }
  }

  /** Extracts `file` on the pool into a fresh temp folder; on failure the folder is gone and the error thrown. */
  async #extract(id: string, file: string, format: StoredProject['format']): Promise<string> {
    const staging = join(this.#tmpDir, `extract-${id}-${randomUUID()}`);
    const release = await this.#extractions.acquire('extract');
    let outcome;
    try {
      outcome = await this.#o.pools.run('files', { kind: 'extract', file, format, dest: staging });
    } finally {
      release();
    }
    if (!outcome.ok) {
      await rm(staging, { recursive: true, force: true });
      throw fromSerialized(outcome.error);
    }
    return staging;
  }

  /** Replaces the project's working copy with an extracted folder. */
  async #swapIn(id: string, staging: string, etag: string): Promise<string> {
    await this.#discard(id);
    const dest = join(this.#projectsDir, id);
    await rename(staging, dest);
    const root = await realpath(dest);
    const now = Date.now();
    this.#entries.set(id, { root, sourceEtag: etag, materializedAt: now, lastAccess: now });
    return root;
  }

  async #install(id: string, file: string, format: StoredProject['format'], etag: string): Promise<string> {
    return this.#swapIn(id, await this.#extract(id, file, format), etag);
  }

  /** Moves a working copy out of the way and deletes it. */
  async #discard(id: string): Promise<void> {
    this.#entries.delete(id);
    const trash = join(this.#tmpDir, `trash-${id}-${randomUUID()}`);
    try {
      await rename(join(this.#projectsDir, id), trash);
    } catch {
      return; // nothing cached
    }
    await rm(trash, { recursive: true, force: true });
  }

  /**
   * Stores an uploaded archive as project `id` (the upload file is consumed). The archive is extracted first, so
   * an unsafe or corrupt one is refused (422) before anything reaches the store.
   */
  async put(id: string, upload: string, opts: { replace: boolean }): Promise<{ created: boolean; info: ProjectInfo }> {
    try {
      const format = await sniffFile(upload);
      if (!format) {
        throw new ToolhostError('unsupported_media_type', 'the body is neither a zip nor a gzip-compressed tar archive; send a .zip or .tar.gz file as the request body');
      }
      return await this.#locks.run(id, async () => {
        const existing = await this.#o.store.stat(id);
        if (existing && !opts.replace) {
          throw new ToolhostError('project_exists', `project "${id}" already exists; pass ?replace=true to replace it (its working copy is discarded)`, { project_id: id });
        }
        if (existing && this.#o.activeJobs(id) > 0) {
          throw new ToolhostError('project_busy', `project "${id}" has jobs queued or running; retry the upload once they finish`, { project_id: id });
        }
        const staging = await this.#extract(id, upload, format);
        let stored: StoredProject;
        try {
          stored = await this.#o.store.put(id, format, upload);
        } catch (err) {
          await rm(staging, { recursive: true, force: true });
          throw err;
        }
        await this.#swapIn(id, staging, stored.etag);
        return { created: !existing, info: await this.info(id) };
      });
    } finally {
      await rm(upload, { force: true });
    }
  }

  /** Every stored project with its cache state (sizes of working copies are not computed here). */
  async list(): Promise<Omit<ProjectInfo, 'cache'>[]> {
    return (await this.#o.store.list()).map((p) => ({ ...this.#view(p), cached: this.#entries.has(p.id) }));
  }

  /** One project with its cache state and working-copy size. Throws `project_not_found`. */
  async info(id: string): Promise<ProjectInfo> {
    const stored = await this.#o.store.stat(id);
    if (!stored) throw notFound(id);
    const entry = this.#entries.get(id);
    let cache: ProjectInfo['cache'] = null;
    if (entry) {
      const size = await this.#o.pools.run('files', { kind: 'size', root: entry.root });
      cache = {
        size_bytes: size.ok ? (size.value as number) : 0,
        last_access: new Date(entry.lastAccess).toISOString(),
        materialized_at: new Date(entry.materializedAt).toISOString(),
        source_etag: entry.sourceEtag,
      };
    }
    return { ...this.#view(stored), cached: entry !== undefined, cache };
  }

  #view(p: StoredProject): Omit<ProjectInfo, 'cached' | 'cache'> {
    return { project_id: p.id, format: p.format, archive_bytes: p.size, modified_at: p.modifiedAt };
  }
}
