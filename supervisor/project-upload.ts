/**
 * Storing an upload as a project: checked, extracted and stored, then swapped in as the working copy. Its own
 * module so the cache (projects.ts) keeps to what is done to a copy and when; the cache holds the project's lock
 * around it.
 */
import { rm } from 'node:fs/promises';
import type { ArchiveFormat } from '../lib/archive/format.js';
import { ToolhostError, toToolhostError } from '../lib/errors.js';
import type { KeepRule } from '../lib/layers/manifest.js';
import type { ProjectStore } from '../lib/store/project-store.js';
import type { Pools } from './pools.js';
import type { ProjectCopies } from './project-copies.js';

/** What an upload needs of the cache. */
export interface UploadParts {
  copies: ProjectCopies;
  store: Pick<ProjectStore, 'stat'>;
  activeJobs(id: string): number;
  /** How many checkpoints to keep. */
  keep(): KeepRule;
  /** What the upload's checkpoint is called (`upload` unless given). */
  createdAs?: 'upload' | 'create';
  /** Runs an extraction-sized task on the file pool. */
  onPool<T>(task: Parameters<Pools['run']>[1]): Promise<T>;
  /**
   * Ends what lives in a working copy that is going for good (its shell sessions), once the replacement passed its checks; awaited, so nothing runs in the copy while it is saved or swapped.
   */
  endLiving?: ((id: string) => Promise<void>) | undefined;
}

/**
 * Checks, extracts, stores and swaps in an upload; resolves true when the project is new. A project that exists
 * is replaced only with `replace`, and never under jobs or unsaved changes.
 */
export async function replaceFromUpload(p: UploadParts, id: string, upload: string, format: ArchiveFormat, replace: boolean): Promise<boolean> {
  const existing = await p.store.stat(id);
  if (existing && !replace) {
    throw new ToolhostError('project_exists', `project "${id}" already exists; pass ?replace=true to replace it (its working copy is discarded)`, {
      project_id: id,
    });
  }
  if (p.activeJobs(id) > 0) {
    throw new ToolhostError('project_busy', `project "${id}" has jobs queued or running; retry the upload once they finish`, { project_id: id });
  }
  if (p.copies.get(id)?.state.dirty) {
    throw new ToolhostError(
      'project_busy',
      `project "${id}" has unsaved changes in its working copy; POST /projects/${id}/save first (or DELETE /projects/${id}/cache), then replace it`,
      { project_id: id },
    );
  }
  if (p.copies.get(id)) await p.endLiving?.(id);
  await p.copies.materialize(id, async (staging) => {
    const extracted = await p.onPool<{ bytes: number }>({ kind: 'extract', id, file: upload, format, dest: staging });
    const pendingState = p.copies.pendingStatePath(id);
    let etag: string;
    try {
      // Stored as the project's new base layer (its checkpoints stay, and the upload is one of them), on the pool:
      // packing and an upload of gigabytes to Blob Storage would otherwise run on this event loop.
      etag = await p.onPool<string>({
        kind: 'upload',
        id,
        root: staging,
        exclude: [],
        scratch: p.copies.tmpDir,
        statePath: pendingState,
        recordAs: p.createdAs ?? 'upload',
        create: !existing,
        keep: p.keep(),
      });
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      await rm(pendingState, { force: true });
      throw toToolhostError(err).code === 'project_exists' && !existing
        ? new ToolhostError('project_exists', `project "${id}" was created by someone else meanwhile; pass ?replace=true to replace it`, { project_id: id })
        : err;
    }
    return { format: 'layers', sourceEtag: etag, sizeBytes: extracted.bytes, pendingState };
  });
  return !existing;
}
