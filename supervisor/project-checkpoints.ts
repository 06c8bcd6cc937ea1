/**
 * Checkpoints, restores, forks and whole-project archives of the cache's working copies (lib/layers does the store
 * side on the pool). Its own module so projects.ts keeps to the life of a copy; the cache hands in its lock, its
 * unlocked save and its pool.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CheckpointInfo, RestoreResult } from '../handlers/protocol.js';
import type { ArchiveFormat } from '../lib/archive/format.js';
import { ToolhostError } from '../lib/errors.js';
import { notFound, type ProjectStore } from '../lib/store/project-store.js';
import type { Pools } from './pools.js';
import type { ProjectCopies } from './project-copies.js';
import type { ForkOutcome, ProjectCacheOptions, RestoreOutcome, SaveOptions, SaveOutcome } from './project-types.js';

/** What checkpoint operations need of the cache. */
export interface CheckpointParts {
  copies: ProjectCopies;
  store: Pick<ProjectStore, 'stat'>;
  o: Pick<ProjectCacheOptions, 'activeJobs' | 'endLiving' | 'checkpoints' | 'exclude'>;
  onPool<T>(task: Parameters<Pools['run']>[1]): Promise<T>;
  /** The cache's save, to call with the project's lock held. */
  save(id: string, opts: SaveOptions): Promise<SaveOutcome>;
  /** Runs `fn` holding the project's lock. */
  locked<T>(id: string, fn: () => Promise<T>): Promise<T>;
  /** The working copy's root, extracting it first if needed (takes the lock itself: call it outside). */
  ensure(id: string): Promise<string>;
}

/** Records a checkpoint of the project as it is now (saving its changes). */
export async function createCheckpoint(p: CheckpointParts, id: string, opts: { label: string | null; kind: 'manual' }): Promise<CheckpointInfo> {
  await p.ensure(id);
  return p.locked(id, async () => {
    if (!p.copies.get(id)) throw new ToolhostError('project_busy', `project "${id}" was evicted while its checkpoint waited; retry`, { project_id: id });
    const saved = await p.save(id, { record: { kind: opts.kind, label: opts.label } });
    return {
      checkpoint_id: saved.checkpoint_id!,
      created_at: saved.last_save ?? new Date().toISOString(),
      label: opts.label,
      kind: opts.kind,
      bytes_uploaded: saved.bytes_uploaded,
    };
  });
}

/** The project's checkpoints, newest first (none yet for a project still stored as a plain archive). */
export async function listCheckpoints(p: CheckpointParts, id: string): Promise<{ project_id: string; checkpoints: CheckpointInfo[] }> {
  const found = await p.onPool<CheckpointInfo[] | null>({ kind: 'checkpoints', id });
  if (found === null && !p.copies.get(id) && !(await p.store.stat(id))) throw notFound(id);
  return { project_id: id, checkpoints: found ?? [] };
}

/**
 * Makes the working copy equal to a checkpoint: the copy is checkpointed first (the answer names that checkpoint,
 * so the restore can be undone), the checkpoint's tree is built beside it (unchanged files hard-linked, the rest
 * from the layers) and swapped in; the project's sessions end, as for a replacement. `selfJobs` is how many of the
 * project's active jobs are the caller's own.
 */
export async function restoreCheckpoint(p: CheckpointParts, id: string, checkpointId: string, opts: { selfJobs: number }): Promise<RestoreOutcome> {
  await p.ensure(id);
  return p.locked(id, async () => {
    const entry = p.copies.get(id);
    if (!entry) throw new ToolhostError('internal', `project "${id}" left the cache before its restore; retry`);
    const busy = () =>
      new ToolhostError('project_busy', `project "${id}" has other jobs queued or running; retry the restore once they finish`, { project_id: id });
    if (p.o.activeJobs(id) > opts.selfJobs) throw busy();
    entry.state.on('withdraw');
    try {
      // Its shells end first, so nothing writes into the copy after the checkpoint that undoes the restore.
      await p.o.endLiving?.(id);
      const undo = await p.save(id, { record: { kind: 'before-restore', label: `before restoring ${checkpointId}` }, pin: checkpointId });
      if (entry.format !== 'layers' || entry.sourceEtag === null || undo.checkpoint_id === null) {
        throw new ToolhostError(
          'save_conflict',
          `project "${id}" could not be checkpointed before the restore (another writer saved it); nothing was restored`,
          { project_id: id },
        );
      }
      if (p.o.activeJobs(id) > opts.selfJobs) throw busy();
      let done: RestoreResult | undefined;
      await p.copies.materialize(id, async (staging) => {
        const pendingState = p.copies.pendingStatePath(id);
        done = await p.onPool<RestoreResult>({
          kind: 'restore',
          id,
          root: entry.root,
          exclude: [...p.o.exclude()],
          scratch: p.copies.tmpDir,
          statePath: p.copies.statePath(id),
          checkpointId,
          etag: entry.sourceEtag!,
          dest: staging,
          pendingState,
        });
        return { format: 'layers', sourceEtag: done.etag, sizeBytes: done.bytes, pendingState };
      });
      return {
        project_id: id,
        checkpoint_id: checkpointId,
        undo_checkpoint_id: undo.checkpoint_id,
        files_written: done!.files_written,
        files_deleted: done!.files_deleted,
      };
    } finally {
      if (entry.state.mode !== 'absent') entry.state.on('giveBack');
    }
  });
}

/**
 * Makes project `newId` from `id` as it is now (its unsaved changes saved first) or from one of its checkpoints:
 * a manifest naming the same stored layers, so its cost does not grow with the project.
 */
export async function forkProject(p: CheckpointParts, id: string, newId: string, checkpointId: string | null): Promise<ForkOutcome> {
  if (newId === id) throw new ToolhostError('project_exists', `cannot fork project "${id}" onto itself; pick a new project id`, { project_id: id });
  if (p.copies.get(newId)) throw new ToolhostError('project_exists', `project "${newId}" already exists; pick another new_project_id`, { project_id: newId });
  if (checkpointId === null && !p.copies.get(id)) {
    // Not cached: a layered project is forked from its manifest as stored; a plain archive is made layers first.
    const stored = await p.store.stat(id);
    if (!stored) throw notFound(id);
    if (stored.format !== 'layers') await p.ensure(id);
  }
  return p.locked(id, async () => {
    if (checkpointId === null && p.copies.get(id)) await p.save(id, { toLayers: true });
    const made = await p.onPool<{ created_at: string }>({ kind: 'fork', id, newId, checkpointId });
    return { project_id: newId, source_project_id: id, checkpoint_id: checkpointId, created_at: made.created_at };
  });
}

/** The whole project as it is now, packed into a temp file (GET /projects/:id/archive). */
export async function packProject(p: CheckpointParts, id: string, format: ArchiveFormat): Promise<{ file: string; release(): Promise<void> }> {
  const root = await p.ensure(id);
  const file = join(p.copies.tmpDir, `archive-${id}-${randomUUID()}`);
  try {
    await p.onPool({ kind: 'pack', root, format, out: file, exclude: [...p.o.exclude()] });
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  return { file, release: () => rm(file, { force: true }) };
}
