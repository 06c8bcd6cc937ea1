/**
 * What the project cache holds for one working copy: the fields its index records, the copy's mode (a
 * {@link CopyState}, which says whether it is dirty or withdrawn), and the counts and records that are data
 * rather than modes. Also the JSON views built from an entry and the stored archive (GET /projects, GET
 * /projects/:id, POST /projects/:id/save).
 */
import type { CopySource } from '../handlers/protocol.js';
import type { ErrorCode } from '../lib/errors.js';
import type { JobOutcome } from '../lib/jobs.js';
import type { StoredProject } from '../lib/store/project-store.js';
import type { IndexedProject } from './cache-index.js';
import type { ProjectInfo, SaveOutcome, WritebackFailure } from './project-types.js';
import type { CopyState } from './working-copy.js';

/** What the cache knows of one working copy. */
export interface CacheEntry extends Omit<IndexedProject, 'dirty'> {
  root: string;
  /** The copy's mode; its `dirty` is what the index records. */
  readonly state: CopyState;
  /** Bumped by every mutating job that starts: a save is clean only if no change started while it ran. */
  generation: number;
  /** Mutating jobs running now. */
  mutating: number;
  /** Jobs of any kind running in the copy now (between their start and end), which a forced delete waits for. */
  running: number;
  failure: WritebackFailure | null;
  /** The index write that records this copy as dirty, until it is on disk; mutating jobs wait for it. */
  persisting: Promise<void> | null;
  /** The latest save that lost a race and left a conflict copy. */
  conflict: { blob: string; at: number } | null;
}

/** An entry for a copy just extracted or found at start-up (its state already left `absent`). */
export function newEntry(fields: Omit<IndexedProject, 'dirty'>, root: string, state: CopyState): CacheEntry {
  const { format, sourceEtag, materializedAt, lastAccess, lastSave, sizeBytes } = fields;
  return {
    format,
    sourceEtag,
    materializedAt,
    lastAccess,
    lastSave,
    sizeBytes,
    root,
    state,
    generation: 0,
    mutating: 0,
    running: 0,
    failure: null,
    persisting: null,
    conflict: null,
  };
}

/** What the index records of an entry. */
export function indexed(e: CacheEntry): IndexedProject {
  return {
    format: e.format,
    sourceEtag: e.sourceEtag,
    materializedAt: e.materializedAt,
    lastAccess: e.lastAccess,
    dirty: e.state.dirty,
    lastSave: e.lastSave,
    sizeBytes: e.sizeBytes,
  };
}

/** The project fields of GET /projects and GET /projects/:id, from the stored archive (else the working copy). */
export function projectView(id: string, p: StoredProject | null, entry: CacheEntry | undefined): Omit<ProjectInfo, 'cache' | 'store_error'> {
  return {
    project_id: id,
    format: p?.format ?? entry!.format,
    archive_bytes: p?.size ?? null,
    modified_at: p?.modifiedAt ?? null,
    etag: p?.etag ?? null,
    cached: entry !== undefined,
    dirty: entry?.state.dirty ?? false,
  };
}

/** The `cache` block of GET /projects/:id. */
export function cacheView(entry: CacheEntry): NonNullable<ProjectInfo['cache']> {
  return {
    size_bytes: entry.sizeBytes,
    last_access: new Date(entry.lastAccess).toISOString(),
    materialized_at: new Date(entry.materializedAt).toISOString(),
    source_etag: entry.sourceEtag,
    last_save: isoOrNull(entry.lastSave),
    writeback_error: entry.failure ? { ...entry.failure.error, since: entry.failure.since, attempts: entry.failure.attempts } : null,
    last_conflict: entry.conflict ? { conflict_blob: entry.conflict.blob, at: new Date(entry.conflict.at).toISOString() } : null,
  };
}

/** The answer to a save of a cached copy; `stored` is null when nothing was uploaded. */
export function saveOutcome(id: string, entry: CacheEntry, stored: StoredProject | null, skipped: SaveOutcome['skipped']): SaveOutcome {
  return {
    project_id: id,
    saved: stored !== null,
    etag: entry.sourceEtag,
    archive_bytes: stored?.size ?? null,
    dirty: entry.state.dirty,
    last_save: isoOrNull(entry.lastSave),
    skipped,
    checkpoint_id: null,
    bytes_uploaded: 0,
  };
}

/** Where a copy came from, for the condition of its next save. */
export function sourceOf(entry: CacheEntry): CopySource {
  if (entry.sourceEtag === null) return { kind: 'none' };
  return entry.format === 'layers' ? { kind: 'layers', etag: entry.sourceEtag } : { kind: 'archive', format: entry.format, etag: entry.sourceEtag };
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** A compact UTC timestamp for conflict copies: 20261124T101010123Z. */
export function conflictStamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, '');
}

/**
 * Errors a file tool ends with only when it refused before changing anything (an edit's and an insert's checks
 * run on the bytes read, before the atomic replace; a write checks its size before it creates a folder).
 */
const REFUSED_UNWRITTEN: ReadonlySet<ErrorCode> = new Set([
  'edit_no_match',
  'edit_count_mismatch',
  'edit_no_op',
  'patch_invalid',
  'patch_failed',
  'line_out_of_range',
  'binary_file',
  'file_too_large',
]);

/** Whether a job's outcome says it changed nothing: it was refused before writing. */
export function refusedUnwritten(outcome: JobOutcome): boolean {
  return !outcome.ok && REFUSED_UNWRITTEN.has(outcome.error.code);
}
