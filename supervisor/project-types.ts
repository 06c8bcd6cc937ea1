/**
 * The types the project cache shows its callers: its options and events, the JSON views of a project and of a
 * save, and a failing write-back. A leaf module (it imports only types from lib/), so the cache's own modules and
 * its callers share them without importing each other.
 */
import type { Config } from '../config/schema.js';
import type { SerializedError, ToolhostError } from '../lib/errors.js';
import type { CheckpointKind } from '../lib/layers/format.js';
import type { ProjectStore } from '../lib/store/project-store.js';
import type { Pools } from './pools.js';

/** A failed write-back, kept until a later one succeeds (reported by /health and GET /projects/:id). */
export interface WritebackFailure {
  project_id: string;
  error: SerializedError;
  /** ISO time of the first failure of this run of failures. */
  since: string;
  attempts: number;
  /** Epoch ms of the latest attempt. */
  lastAttempt: number;
}

/** The JSON view of a project (GET /projects/:id). */
export interface ProjectInfo {
  project_id: string;
  /** Format of the stored archive (or of the working copy when the store has none). */
  format: string;
  /** Stored archive: size, last write and version; null when the store has no archive of the project. */
  archive_bytes: number | null;
  modified_at: string | null;
  etag: string | null;
  cached: boolean;
  /** The working copy may hold changes the store does not have yet. */
  dirty: boolean;
  cache: {
    size_bytes: number;
    last_access: string;
    materialized_at: string;
    source_etag: string | null;
    last_save: string | null;
    writeback_error: (SerializedError & { since: string; attempts: number }) | null;
    /** The latest save that found the stored archive changed by another writer, and where the copy went. */
    last_conflict: { conflict_blob: string; at: string } | null;
  } | null;
  /** Set when the store could not be asked (the archive fields are then null): the cache fields still show. */
  store_error?: SerializedError;
}

/** The outcome of a save (POST /projects/:id/save). */
export interface SaveOutcome {
  project_id: string;
  /** Whether an archive was uploaded (false: not cached, or nothing changed since the last save). */
  saved: boolean;
  etag: string | null;
  archive_bytes: number | null;
  dirty: boolean;
  last_save: string | null;
  /** Left out of the archive because it could not be extracted again (escaping symlinks, backslash names). */
  skipped: { name: string; reason: string }[];
  /** The checkpoint the save recorded (null: nothing changed, nothing recorded). */
  checkpoint_id: string | null;
  /** Bytes the store took: the new layer and its index. */
  bytes_uploaded: number;
}

/** What a save records besides the changes. */
export interface SaveOptions {
  /** A checkpoint to record even when nothing changed. */
  record?: { kind: CheckpointKind; label: string | null };
  /** What a save that changed something records itself as (`save` when not given). */
  as?: CheckpointKind;
  /** Write a copy still held as a plain archive as layers, even clean (a fork needs a manifest). */
  toLayers?: boolean;
  /** A checkpoint pruning must keep (the target of the restore this save precedes). */
  pin?: string;
}

/** A checkpoint as answers show it (lib/layers/format.ts has the stored form). */
export type { CheckpointInfo } from '../handlers/protocol.js';

/** The outcome of a restore (POST /projects/:id/checkpoints/:checkpoint_id/restore). */
export interface RestoreOutcome {
  project_id: string;
  checkpoint_id: string;
  /** The checkpoint of the state just before the restore: restoring it undoes the restore. */
  undo_checkpoint_id: string;
  files_written: number;
  files_deleted: number;
}

/** The outcome of a fork (POST /projects/:id/fork). */
export interface ForkOutcome {
  project_id: string;
  source_project_id: string;
  checkpoint_id: string | null;
  created_at: string;
}

/** One working copy as the janitor sees it (ProjectCache.snapshot). */
export interface CopySnapshot {
  id: string;
  lastAccess: number;
  /** The last save, or when the copy came from the store. */
  lastSave: number;
  sizeBytes: number;
  dirty: boolean;
  /** Jobs are queued or running on the project. */
  busy: boolean;
  failure: WritebackFailure | null;
}

/** Dependencies of the cache. */
export interface ProjectCacheOptions {
  dataDir: string;
  store: ProjectStore;
  pools: Pools;
  /** Most extractions running at once (they share the file pool with file jobs). */
  maxExtractions: number;
  /** Jobs queued or running for a project; a project with any is never replaced or evicted under them. */
  activeJobs(id: string): number;
  /** gitignore-style patterns left out of saved archives (read at each save, so a reload applies). */
  exclude(): readonly string[];
  /** The `checkpoints` settings (read at each use, so a reload applies). */
  checkpoints(): Config['checkpoints'];
  /** The clock (epoch ms); tests move it to age projects. */
  now?: () => number;
  /**
   * Ends what lives in a working copy that is going for good (its shell sessions), once an eviction, replacement or
   * deletion passed its checks; awaited, so nothing runs in the copy while it is saved or swapped.
   */
  endLiving?: ((id: string) => Promise<void>) | undefined;
}

/** Events of the cache, for metrics and observers. */
export interface ProjectCacheEvents {
  /** A job found its project's working copy ready. */
  hit: [id: string];
  /** A job's project had to be extracted first (emitted once per extraction). */
  miss: [id: string];
  /** A working copy was written back to the store; `skipped` was left out (it could not be extracted again). */
  saved: [id: string, skipped: SaveOutcome['skipped']];
  /** An eviction looked at the project's stored layers: merged or not, or why it failed (the chain then stays long). */
  compacted: [id: string, merged: boolean, error: ToolhostError | null];
  /** A save lost a race with another writer; the copy was stored as `conflictBlob`. */
  conflict: [id: string, conflictBlob: string];
  /** A write-back failed (the copy stays cached and dirty). */
  'writeback:failed': [id: string, error: ToolhostError];
  /** A working copy was removed from the cache. */
  evicted: [id: string];
}
