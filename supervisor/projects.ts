/**
 * The local cache of project working copies: what is done to a copy and when. The store holds the truth; a
 * working copy is extracted from it on first use into `<dataDir>/projects/<id>/` (through a temp folder renamed
 * into place, so nothing is ever half-extracted in the cache), used by every job on the project, written back
 * when asked, when evicted and at shutdown, and recorded in a persisted index (cache-index.ts) so a restart
 * forgets nothing. Where copies live (folders, entries, index) is project-copies.ts; what an entry holds and the
 * JSON views of it, project-entry.ts; the types callers see, project-types.ts.
 *
 * A working copy goes absent -> materializing (one download and extraction, shared by every request that waits
 * for it) -> clean -> dirty (a write, an edit or any command started on it; recorded on disk before the job runs)
 * -> saving (packed on the pool and uploaded on condition of the ETag it came from) -> clean, or still dirty if a
 * change started meanwhile; a save that lost a race leaves a conflict copy beside the blob and changes nothing in
 * the store. An eviction (idle: saved first if dirty, then removed) or a replacement withdraws the copy from new
 * jobs while it holds the project. working-copy.ts has the full table of modes and transitions and checks each
 * change against it.
 *
 * Downloads, extraction and packing run on the pool, never on the supervisor's event loop. Materialization,
 * uploads, saves and evictions of one project hold its lock, so they run one at a time; jobs do not take it.
 */
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import type { CheckpointInfo, MaterializeResult, SaveResult } from '../handlers/protocol.js';
import type { ArchiveFormat } from '../lib/archive/format.js';
import { sniffFile } from '../lib/archive/format.js';
import { fromSerialized, type SerializedError, ToolhostError, toToolhostError } from '../lib/errors.js';
import { FairSemaphore } from '../lib/fair-semaphore.js';
import type { JobOutcome } from '../lib/jobs.js';
import { KeyedMutex } from '../lib/keyed-mutex.js';
import type { CollectResult } from '../lib/layers/collect.js';
import { archiveName, manifestName, notFound, type StoredProject } from '../lib/store/project-store.js';
import type { Pools } from './pools.js';
import { type CheckpointParts, createCheckpoint, forkProject, listCheckpoints, packProject, restoreCheckpoint } from './project-checkpoints.js';
import { ProjectCopies } from './project-copies.js';
import { type CacheEntry, cacheView, conflictStamp, projectView, refusedUnwritten, saveOutcome, sourceOf } from './project-entry.js';
import { type RemoveOptions, type RemoveOutcome, removeProject } from './project-remove.js';
import type {
  CopySnapshot,
  ForkOutcome,
  ProjectCacheEvents,
  ProjectCacheOptions,
  ProjectInfo,
  RestoreOutcome,
  SaveOptions,
  SaveOutcome,
  WritebackFailure,
} from './project-types.js';
import { replaceFromUpload } from './project-upload.js';

export type { ProjectCacheEvents, ProjectCacheOptions, ProjectInfo, SaveOptions, SaveOutcome, WritebackFailure } from './project-types.js';

type PoolTask = Parameters<Pools['run']>[1];

/** Local working copies of stored projects. */
export class ProjectCache extends EventEmitter<ProjectCacheEvents> {
  readonly #o: ProjectCacheOptions;
  readonly #now: () => number;
  readonly #copies: ProjectCopies;
  readonly #inflight = new Map<string, Promise<string>>();
  readonly #locks = new KeyedMutex();
  readonly #extractions: FairSemaphore;

  constructor(o: ProjectCacheOptions) {
    super();
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#copies = new ProjectCopies({ dataDir: o.dataDir, store: o.store, now: this.#now });
    this.#extractions = new FairSemaphore(o.maxExtractions);
  }

  /** Scratch folder for uploads and extractions (same file system as the cache, so renames are atomic). */
  get tmpDir(): string {
    return this.#copies.tmpDir;
  }

  /**
   * Creates the folders, drops half-done work of an earlier run and learns what is cached from the index (a copy
   * it does not know is kept as dirty with an unknown source).
   */
  start(): Promise<void> {
    return this.#copies.start();
  }

  /** Writes the index out (shutdown, after the last write-backs). */
  close(): Promise<void> {
    return this.#copies.close();
  }

  /** The working copy's root, extracting the project first if needed. Throws `project_not_found`. */
  ensure(id: string): Promise<string> {
    const entry = this.#copies.get(id);
    if (entry && !entry.state.withdrawn) {
      entry.lastAccess = this.#now();
      this.emit('hit', id);
      return Promise.resolve(entry.root);
    }
    let flight = this.#inflight.get(id);
    if (!flight) {
      if (!entry) this.emit('miss', id);
      flight = this.#locks.run(id, () => this.#materialize(id)).finally(() => this.#inflight.delete(id));
      this.#inflight.set(id, flight);
    }
    return flight;
  }

  /**
   * Marks a job's start on a project (after {@link ensure}); a mutating one (write, edit, command) makes the
   * copy dirty, on disk, before it runs. Returns the function to call with the job's outcome when it ends: a job
   * that was refused before it wrote anything ({@link refusedUnwritten}) hands back the clean mode it found, if no
   * other change started meanwhile, so a failed edit does not leave a copy dirty that nothing changed.
   */
  async begin(id: string, mutating: boolean): Promise<(outcome?: JobOutcome) => void> {
    const entry = this.#copies.get(id);
    if (!entry) throw new ToolhostError('internal', `project "${id}" left the cache while a job was starting on it; retry`);
    entry.lastAccess = this.#now();
    entry.running++;
    const wasClean = !entry.state.dirty && !entry.state.withdrawn;
    // This job's own change number, taken when it counts itself: read after the wait below, it could be another
    // job's, and a refused job would then hand back "clean" over that job's real change.
    let generation = entry.generation;
    if (mutating) {
      if (!entry.state.dirty) {
        entry.state.on('change');
        entry.persisting = this.#copies.flush().finally(() => (entry.persisting = null));
      }
      // Counted before the wait below: a save that runs meanwhile must end dirty, not clean under a change about to
      // start (it would then never be saved, and an idle eviction would drop it).
      entry.mutating++;
      generation = ++entry.generation;
      // No change may start before "dirty" is on disk: after a crash the copy must still be known dirty. A failed
      // write fails the job (it never ran); the copy stays dirty in memory, so nothing treats it as clean.
      if (entry.persisting) {
        try {
          await entry.persisting;
        } catch (err) {
          entry.mutating--;
          entry.running--;
          throw err;
        }
      }
    }
    return (outcome) => {
      entry.lastAccess = this.#now();
      entry.running--;
      if (mutating) {
        entry.mutating--;
        const unwritten = outcome !== undefined && refusedUnwritten(outcome);
        // Only when this job alone made it dirty: any other change since (or running) keeps it dirty.
        if (unwritten && wasClean && entry.generation === generation && entry.mutating === 0 && entry.state.mode === 'dirty') {
          entry.state.on('unchanged');
        }
      }
      this.#copies.flushSoon();
    };
  }

  async #materialize(id: string): Promise<string> {
    const cached = this.#copies.get(id);
    if (cached) return cached.root; // a PUT finished, or an eviction was called off, while we waited for the lock
    return this.#copies.materialize(id, async (staging) => {
      const pendingState = this.#copies.pendingStatePath(id);
      const got = await this.#onPool<MaterializeResult>({ kind: 'materialize', id, dest: staging, scratch: this.#copies.tmpDir, statePath: pendingState });
      return { format: got.format, sourceEtag: got.etag, sizeBytes: got.bytes, ...(got.format === 'layers' ? { pendingState } : {}) };
    });
  }

  /** Runs an extraction-sized task on the file pool, within the extraction slots. */
  async #onPool<T>(task: PoolTask): Promise<T> {
    const release = await this.#extractions.acquire('extract');
    try {
      const outcome = await this.#o.pools.run('files', task);
      if (!outcome.ok) throw fromSerialized(outcome.error);
      return outcome.value as T;
    } finally {
      release();
    }
  }

  /**
   * Stores an uploaded archive as project `id` (the upload file is consumed). The archive is extracted first, so
   * an unsafe or corrupt one is refused (422) before anything reaches the store. A working copy with unsaved
   * changes is never replaced: save it (or let it be evicted) first.
   */
  async put(id: string, upload: string, opts: { replace: boolean; as?: 'upload' | 'create' }): Promise<{ created: boolean; info: ProjectInfo }> {
    try {
      const format = await sniffFile(upload);
      if (!format) {
        throw new ToolhostError(
          'unsupported_media_type',
          'the body is neither a zip nor a gzip-compressed tar archive; send a .zip or .tar.gz file as the request body',
        );
      }
      return await this.#locks.run(id, async () => {
        // Withdrawn before the checks, as for an eviction: a job arriving from now on waits for the new copy
        // instead of working in the old one, which the swap below deletes.
        const cached = this.#copies.get(id);
        cached?.state.on('withdraw');
        try {
          const parts = {
            copies: this.#copies,
            store: this.#o.store,
            activeJobs: this.#o.activeJobs,
            onPool: <T>(task: PoolTask) => this.#onPool<T>(task),
            endLiving: this.#o.endLiving,
            keep: () => this.#o.checkpoints().keep,
            createdAs: opts.as,
          };
          const created = await replaceFromUpload(parts, id, upload, format, opts.replace);
          return { created, info: await this.info(id) };
        } finally {
          // Still cached: the replacement was refused or failed before its swap, so the old copy serves again.
          if (cached && cached.state.mode !== 'absent') cached.state.on('giveBack');
        }
      });
    } finally {
      await rm(upload, { force: true });
    }
  }

  /**
   * Writes the working copy back to the store if it may hold changes. The upload is conditional on the ETag the
   * copy came from: if the stored archive changed meanwhile, nothing is overwritten, the copy is stored beside it
   * as a conflict copy and `save_conflict` (409) names both. Any other failure is recorded (health, project
   * info) and thrown; the copy stays dirty.
   */
  save(id: string, opts: SaveOptions = {}): Promise<SaveOutcome> {
    return this.#locks.run(id, () => this.#save(id, opts));
  }

  async #save(id: string, opts: SaveOptions = {}): Promise<SaveOutcome> {
    const entry = this.#copies.get(id);
    if (!entry) {
      if (!(await this.#o.store.stat(id))) throw notFound(id);
      return {
        project_id: id,
        saved: false,
        etag: null,
        archive_bytes: null,
        dirty: false,
        last_save: null,
        skipped: [],
        checkpoint_id: null,
        bytes_uploaded: 0,
      };
    }
    // A clean copy has nothing to write: only a checkpoint asked for, or a conversion to layers, goes on.
    const changing = entry.state.dirty;
    if (!changing && !opts.record && (entry.format === 'layers' || !opts.toLayers)) return saveOutcome(id, entry, null, []);
    const generation = entry.generation;
    const busy = entry.mutating > 0;
    const now = this.#now();
    if (changing) entry.state.on('saveStarted');
    let result: SaveResult;
    try {
      result = await this.#onPool<SaveResult>({
        kind: 'save',
        ...this.#copyTask(id, entry),
        source: sourceOf(entry),
        stamp: conflictStamp(now),
        record: opts.record ?? null,
        recordAs: opts.as ?? 'save',
        keep: this.#o.checkpoints().keep,
        pin: opts.pin,
        clean: !changing,
      });
    } catch (err) {
      const error = toToolhostError(err);
      entry.failure = {
        project_id: id,
        error: error.toJSON(),
        since: entry.failure?.since ?? new Date(now).toISOString(),
        attempts: (entry.failure?.attempts ?? 0) + 1,
        lastAttempt: now,
      };
      if (changing) entry.state.on('savedDirty');
      this.emit('writeback:failed', id, error);
      throw error;
    }
    entry.failure = null;
    // Unchanged since packing: what the store now holds (as the archive or the conflict copy) is this copy.
    const unchanged = !busy && entry.mutating === 0 && entry.generation === generation;
    if ('conflict' in result) {
      // The agent's work is safe in the conflict copy; the store's own version stays as the other writer left it.
      // The copy counts as saved (so it may be replaced or evicted); its source ETag stays, so saving it again
      // after another change makes another conflict copy rather than overwriting the other writer.
      const blob = entry.format === 'layers' ? manifestName(id) : archiveName(id, entry.format);
      entry.conflict = { blob: result.conflict, at: now };
      if (changing) entry.state.on(unchanged ? 'savedClean' : 'savedDirty');
      await this.#copies.flush();
      this.emit('conflict', id, result.conflict);
      throw new ToolhostError(
        'save_conflict',
        `the stored project ${blob} changed since this working copy was downloaded (another writer); nothing was overwritten: the working copy was saved as ${result.conflict}. Compare the two and upload the merged result with PUT /projects/${id}?replace=true`,
        { project_id: id, blob, conflict_blob: result.conflict, source_etag: entry.sourceEtag, current_etag: result.currentEtag, skipped: result.skipped },
      );
    }
    entry.sourceEtag = result.stored.etag;
    entry.format = 'layers';
    entry.lastSave = now;
    entry.conflict = null;
    // Clean only if no change started while packing: otherwise the layer may miss it.
    if (changing) entry.state.on(unchanged ? 'savedClean' : 'savedDirty');
    await this.#copies.flush();
    // The scan counted the bytes it saved; a walk of the whole copy again would cost as much as the scan.
    if (result.treeBytes !== null) entry.sizeBytes = result.treeBytes;
    this.emit('saved', id, result.skipped);
    const checkpoint = result.checkpoint?.checkpoint_id ?? null;
    return {
      ...saveOutcome(id, entry, result.stored, result.skipped),
      saved: checkpoint !== null,
      checkpoint_id: checkpoint,
      bytes_uploaded: result.bytesUploaded,
    };
  }

  /**
   * Merges the project's stored layers when its chain grew past `checkpoints.maxLayers`, from the clean copy about
   * to be evicted (it is the head's tree, so nothing needs downloading). A failure only leaves the chain long.
   */
  async #compact(id: string, entry: CacheEntry): Promise<void> {
    if (entry.format !== 'layers' || entry.sourceEtag === null || entry.state.dirty) return;
    try {
      const task = { kind: 'compact' as const, ...this.#copyTask(id, entry), etag: entry.sourceEtag, maxLayers: this.#o.checkpoints().maxLayers };
      const etag = await this.#onPool<string | null>(task);
      if (etag !== null) entry.sourceEtag = etag;
      this.emit('compacted', id, etag !== null, null);
    } catch (err) {
      this.emit('compacted', id, false, toToolhostError(err));
    }
  }

  /** What the checkpoint operations (project-checkpoints.ts) need of the cache. */
  #parts(): CheckpointParts {
    return {
      copies: this.#copies,
      store: this.#o.store,
      o: this.#o,
      onPool: (task) => this.#onPool(task),
      save: (id, opts) => this.#save(id, opts),
      locked: (id, fn) => this.#locks.run(id, fn),
      ensure: (id) => this.ensure(id),
    };
  }

  /** Records a checkpoint of the project as it is now (its changes saved as a layer). */
  checkpoint(id: string, opts: { label: string | null; kind: 'manual' }): Promise<CheckpointInfo> {
    return createCheckpoint(this.#parts(), id, opts);
  }

  /**
   * `checkpoints.auto`'s checkpoint after a change: a save recorded as `auto`, so only when something changed (an
   * `ls` must not push an agent's own checkpoints out). Resolves with its id, or null.
   */
  async autoCheckpoint(id: string): Promise<string | null> {
    return (await this.save(id, { as: 'auto' })).checkpoint_id;
  }

  /** The project's checkpoints, newest first. */
  checkpoints(id: string): Promise<{ project_id: string; checkpoints: CheckpointInfo[] }> {
    return listCheckpoints(this.#parts(), id);
  }

  /** Makes the working copy equal to a checkpoint (after checkpointing it: see project-checkpoints.ts). */
  restore(id: string, checkpointId: string, opts: { selfJobs: number }): Promise<RestoreOutcome> {
    return restoreCheckpoint(this.#parts(), id, checkpointId, opts);
  }

  /** Makes a new project from this one's current state or one of its checkpoints, sharing its stored layers. */
  fork(id: string, newId: string, checkpointId: string | null): Promise<ForkOutcome> {
    return forkProject(this.#parts(), id, newId, checkpointId);
  }

  /** The whole project as it is now, packed into a temp file to stream and then release. */
  archive(id: string, format: ArchiveFormat): Promise<{ file: string; release(): Promise<void> }> {
    return packProject(this.#parts(), id, format);
  }

  /** Deletes stored layers no checkpoint of any project names (older than `checkpoints.collectGraceMinutes`). */
  collect(): Promise<CollectResult> {
    return this.#onPool<CollectResult>({ kind: 'collect', graceMs: this.#o.checkpoints().collectGraceMinutes * 60_000 });
  }

  /** The fields of every pool task on a copy's layers. */
  #copyTask(id: string, entry: CacheEntry) {
    return { id, root: entry.root, exclude: [...this.#o.exclude()], scratch: this.#copies.tmpDir, statePath: this.#copies.statePath(id) };
  }

  /**
   * Evicts a working copy: written back first if dirty (a conflict copy counts: the work is in the store), then
   * removed. Refused with `project_busy` while the project has jobs; a failed write-back keeps the copy (thrown).
   * Resolves false when the project was not cached, or (with `unusedSince`) was used after that time.
   */
  evict(id: string, opts: { unusedSince?: number } = {}): Promise<boolean> {
    return this.#locks.run(id, async () => {
      const entry = this.#copies.get(id);
      if (!entry) return false;
      // The janitor decided on a snapshot, maybe minutes ago (saves before this one take time): used since, kept.
      if (opts.unusedSince !== undefined && entry.lastAccess > opts.unusedSince) return false;
      const busy = (): ToolhostError =>
        new ToolhostError('project_busy', `project "${id}" has jobs queued or running; its working copy is evicted once they finish (retry then)`, {
          project_id: id,
        });
      // Withdrawn first, so a job that arrives from now on waits for this lock instead of using the copy.
      entry.state.on('withdraw');
      try {
        if (this.#o.activeJobs(id) > 0) throw busy();
        await this.#o.endLiving?.(id);
        if (entry.state.dirty) {
          try {
            await this.#save(id);
          } catch (err) {
            const error = toToolhostError(err);
            // A conflict stored the copy beside the blob: the work is safe, eviction goes on.
            if (error.code !== 'save_conflict') {
              throw new ToolhostError(
                error.code,
                `could not write project "${id}" back before evicting it: ${error.message}; the working copy stays cached and dirty, and the janitor tries again`,
                error.details,
              );
            }
          }
        }
        if (this.#o.activeJobs(id) > 0) throw busy();
      } catch (err) {
        entry.state.on('giveBack');
        throw err;
      }
      await this.#compact(id, entry);
      await this.#copies.discard(id);
      await this.#copies.flush();
      this.emit('evicted', id);
      return true;
    });
  }

  /**
   * Deletes project `id` from the store and this cache (project-remove.ts): refused with `project_busy` under jobs
   * or unsaved changes unless `force`. Throws `project_not_found`.
   */
  remove(id: string, opts: RemoveOptions): Promise<RemoveOutcome> {
    return this.#locks.run(id, () =>
      removeProject({ copies: this.#copies, store: this.#o.store, activeJobs: this.#o.activeJobs, endLiving: this.#o.endLiving }, id, opts),
    );
  }

  /** Writes back every dirty copy (shutdown). Failures are returned; those copies stay dirty for the next start. */
  async saveAll(): Promise<{ id: string; error: ToolhostError }[]> {
    const failed: { id: string; error: ToolhostError }[] = [];
    const dirty = this.#copies.dirtyIds();
    await Promise.all(
      dirty.map((id) =>
        this.save(id).catch((err: unknown) => {
          const error = toToolhostError(err);
          if (error.code !== 'save_conflict') failed.push({ id, error });
        }),
      ),
    );
    return failed;
  }

  /** The working copies, for the janitor: idle time, size, dirtiness, whether jobs use them, failures. */
  snapshot(): CopySnapshot[] {
    return this.#copies.snapshot((id) => this.#o.activeJobs(id));
  }

  /** Re-measures the size of dirty working copies (they may have grown) on the pool. */
  async measureDirty(): Promise<void> {
    for (const [, e] of this.#copies.entries()) if (e.state.dirty) await this.#measure(e);
  }

  /** Measures a working copy on the pool (everything on disk, excluded paths too: they take disk all the same). */
  async #measure(entry: CacheEntry): Promise<void> {
    const size = await this.#o.pools.run('files', { kind: 'size', root: entry.root });
    if (size.ok) entry.sizeBytes = size.value as number;
  }

  /** Write-backs failing now, oldest first. */
  failures(): WritebackFailure[] {
    return this.#copies.failures();
  }

  /** Counts for /health. */
  summary(): { projects: number; dirty: number; bytes: number } {
    return this.#copies.summary();
  }

  /** Bytes of all working copies, as last measured. */
  cachedBytes(): number {
    return this.#copies.cachedBytes();
  }

  /** Every stored project with its cache state (sizes of working copies are not computed here). */
  async list(): Promise<Omit<ProjectInfo, 'cache'>[]> {
    return (await this.#o.store.list()).map((p) => projectView(p.id, p, this.#copies.get(p.id)));
  }

  /** One project with its cache state and working-copy size. Throws `project_not_found`. */
  async info(id: string): Promise<ProjectInfo> {
    const entry = this.#copies.get(id);
    let stored: StoredProject | null = null;
    let storeError: SerializedError | undefined;
    try {
      stored = await this.#o.store.stat(id);
    } catch (err) {
      // During a store outage the cache state (dirty, the failing write-back) is what an operator needs to see.
      if (!entry) throw err;
      storeError = toToolhostError(err).toJSON();
    }
    if (!stored && !entry) throw notFound(id);
    if (entry) await this.#measure(entry);
    const info: ProjectInfo = { ...projectView(id, stored, entry), cache: entry ? cacheView(entry) : null };
    if (storeError) info.store_error = storeError;
    return info;
  }
}
