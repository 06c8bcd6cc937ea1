/**
 * Where the project cache keeps its working copies: the folders in the data dir (`projects/<id>/`, and `tmp/` for
 * staging and trash, on the same file system so renames are atomic), an entry in memory for each copy, and the
 * persisted index that records them (cache-index.ts). It learns what is cached at start-up, places a freshly
 * extracted copy, discards one, and tallies the copies for reports. What is done to a copy and when (locks, the
 * pool, the store) is the business of projects.ts.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, readdir, realpath, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../lib/errors.js';
import type { ProjectStore } from '../lib/store/project-store.js';
import { CacheIndex, type IndexedProject } from './cache-index.js';
import { type CacheEntry, indexed, newEntry } from './project-entry.js';
import type { CopySnapshot, WritebackFailure } from './project-types.js';
import { CopyState } from './working-copy.js';

/** What an extraction tells of the copy it made, and where it left the copy's state (none: the next save is whole). */
export type CopyFields = Pick<IndexedProject, 'format' | 'sourceEtag' | 'sizeBytes'> & { pendingState?: string };

/** The working copies on disk, in memory and in the index. */
export class ProjectCopies {
  /** `<dataDir>/projects`: one folder per cached project. */
  readonly projectsDir: string;
  /** `<dataDir>/tmp`: uploads, staging folders and trash. */
  readonly tmpDir: string;
  /** `<dataDir>/copy-states`: each copy's state at its last save. */
  readonly statesDir: string;
  readonly #store: Pick<ProjectStore, 'stat'>;
  readonly #now: () => number;
  readonly #index: CacheIndex;
  readonly #entries = new Map<string, CacheEntry>();
  /** Discarded copies being deleted. */
  readonly #removals = new Set<Promise<void>>();

  constructor(o: { dataDir: string; store: Pick<ProjectStore, 'stat'>; now: () => number }) {
    this.projectsDir = join(o.dataDir, 'projects');
    this.tmpDir = join(o.dataDir, 'tmp');
    this.statesDir = join(o.dataDir, 'copy-states');
    this.#store = o.store;
    this.#now = o.now;
    this.#index = new CacheIndex(o.dataDir);
    this.#index.source(() => {
      const out: Record<string, IndexedProject> = {};
      for (const [id, e] of this.#entries) out[id] = indexed(e);
      return out;
    });
  }

  /**
   * Creates the folders, drops half-done work of an earlier run and learns what is cached from the index. A
   * working copy the index does not know (a crash between its extraction and the index write) is kept as dirty
   * with an unknown source: saving it never overwrites the store, at worst it becomes a conflict copy.
   */
  async start(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    // 0700: uploads, extractions and save archives pass through here; commands run as other uids.
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    await chmod(this.tmpDir, 0o700);
    await mkdir(this.projectsDir, { recursive: true });
    await mkdir(this.statesDir, { recursive: true, mode: 0o700 });
    const indexed = await this.#index.load();
    const now = this.#now();
    for (const id of await readdir(this.projectsDir)) {
      const root = await realpath(join(this.projectsDir, id));
      const known = indexed.get(id);
      const stored = known ? null : await this.#store.stat(id).catch(() => null);
      const base: IndexedProject = known ?? {
        format: stored?.format ?? 'tar.gz',
        sourceEtag: null,
        materializedAt: now,
        lastAccess: now,
        dirty: true,
        lastSave: null,
        sizeBytes: 0,
      };
      const state = new CopyState(id);
      state.setMode(base.dirty ? 'dirty' : 'clean');
      this.#entries.set(id, newEntry(base, root, state));
    }
    await this.#index.flush();
  }

  /** Writes the index out (shutdown, after the last write-backs) and finishes deleting discarded copies. */
  async close(): Promise<void> {
    await Promise.all(this.#removals);
    return this.#index.close();
  }

  /** The entry of a cached copy. */
  get(id: string): CacheEntry | undefined {
    return this.#entries.get(id);
  }

  /** Every cached copy, by project id. */
  entries(): IterableIterator<[string, CacheEntry]> {
    return this.#entries.entries();
  }

  /** Writes the index now (after any write in progress); resolves once it is on disk. */
  flush(): Promise<void> {
    return this.#index.flush();
  }

  /** Writes the index within a few seconds (for last-access times). */
  flushSoon(): void {
    this.#index.flushSoon();
  }

  /**
   * Brings in a new copy of project `id`: `fill` extracts it into the staging folder it is given (a download or an
   * upload) and says what it holds; the folder then replaces the project's working copy, if any, and is recorded,
   * clean, in the index. Returns the copy's root. The caller holds the project's lock.
   */
  async materialize(id: string, fill: (staging: string) => Promise<CopyFields>): Promise<string> {
    const state = new CopyState(id);
    state.setMode('materializing');
    try {
      const staging = join(this.tmpDir, `extract-${id}-${randomUUID()}`);
      return await this.#place(state, staging, await fill(staging));
    } catch (err) {
      if (state.mode === 'materializing') state.setMode('absent');
      throw err;
    }
  }

  async #place(state: CopyState, staging: string, fields: CopyFields): Promise<string> {
    const id = state.id;
    await this.discard(id);
    const dest = join(this.projectsDir, id);
    await rename(staging, dest);
    if (fields.pendingState) await rename(fields.pendingState, this.statePath(id));
    const root = await realpath(dest);
    const now = this.#now();
    state.setMode('clean');
    const { format, sourceEtag, sizeBytes } = fields;
    this.#entries.set(id, newEntry({ format, sourceEtag, sizeBytes, materializedAt: now, lastAccess: now, lastSave: null }, root, state));
    await this.#index.flush();
    return root;
  }

  /** Where the copy's state at its last save is kept (lib/layers/scan.ts): beside the cache, out of its reach. */
  statePath(id: string): string {
    return join(this.statesDir, `${id}.json.gz`);
  }

  /** A fresh path in tmp for a state that becomes the copy's when the copy is placed ({@link CopyFields}). */
  pendingStatePath(id: string): string {
    return join(this.tmpDir, `state-${id}-${randomUUID()}.json.gz`);
  }

  /** Forgets a working copy, moves its folder out of the way and deletes it. The caller writes the index. */
  async discard(id: string): Promise<void> {
    this.#entries.get(id)?.state.setMode('absent');
    this.#entries.delete(id);
    await rm(this.statePath(id), { force: true });
    const trash = join(this.tmpDir, `trash-${id}-${randomUUID()}`);
    try {
      await rename(join(this.projectsDir, id), trash);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return; // nothing cached
      throw err;
    }
    // Deleted beside what comes next (a restore's answer need not wait for ten thousand unlinks); close() waits,
    // and a crash leaves it in tmp/, which the next start empties.
    const removal = rm(trash, { recursive: true, force: true })
      .catch(() => undefined)
      .finally(() => this.#removals.delete(removal));
    this.#removals.add(removal);
  }

  /** Ids of the copies that may hold unsaved work. */
  dirtyIds(): string[] {
    return [...this.#entries].filter(([, e]) => e.state.dirty).map(([id]) => id);
  }

  /** The copies, for the janitor: idle time, size, dirtiness, whether jobs use them (`activeJobs`), failures. */
  snapshot(activeJobs: (id: string) => number): CopySnapshot[] {
    return [...this.#entries].map(([id, e]) => ({
      id,
      lastAccess: e.lastAccess,
      lastSave: e.lastSave ?? e.materializedAt,
      sizeBytes: e.sizeBytes,
      dirty: e.state.dirty,
      busy: activeJobs(id) > 0 || e.mutating > 0,
      failure: e.failure,
    }));
  }

  /** Write-backs failing now, oldest first. */
  failures(): WritebackFailure[] {
    return [...this.#entries.values()].flatMap((e) => (e.failure ? [e.failure] : [])).sort((a, b) => a.since.localeCompare(b.since));
  }

  /** Counts for /health. */
  summary(): { projects: number; dirty: number; bytes: number } {
    let dirty = 0;
    for (const e of this.#entries.values()) if (e.state.dirty) dirty++;
    return { projects: this.#entries.size, dirty, bytes: this.cachedBytes() };
  }

  /** Bytes of all working copies, as last measured. */
  cachedBytes(): number {
    let total = 0;
    for (const e of this.#entries.values()) total += e.sizeBytes;
    return total;
  }
}
