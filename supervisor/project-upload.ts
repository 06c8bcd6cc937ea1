/**
 * Storing an upload as a project: checked, extracted and stored, then swapped in as the working copy. Its own
 * module so the cache (projects.ts) keeps to what is done to a copy and when; the cache holds the project's lock
 * around it.
 */
import { rm } from 'node:fs/promises';
import type { ArchiveFormat } from '../lib/archive/format.js';
import { ToolhostError, toToolhostError } from '../lib/errors.js';
import type { ProjectStore, StoredProject } from '../lib/store/project-store.js';
import type { Pools } from './pools.js';
import type { ProjectCopies } from './project-copies.js';

/** What an upload needs of the cache. */
export interface UploadParts {
  copies: ProjectCopies;
  store: Pick<ProjectStore, 'stat'>;
  activeJobs(id: string): number;
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
    let stored: StoredProject;
    try {
      // On the pool: an upload of gigabytes to Blob Storage (TLS, reads) would otherwise run on this event loop.
      stored = await p.onPool<StoredProject>({ kind: 'put', id, format, file: upload, ...(existing ? {} : { condition: { ifNoneMatch: '*' } }) });
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw toToolhostError(err).code === 'save_conflict'
        ? new ToolhostError('project_exists', `project "${id}" was created by someone else meanwhile; pass ?replace=true to replace it`, { project_id: id })
        : err;
    }
    return { format, sourceEtag: stored.etag, sizeBytes: extracted.bytes };
  });
  return !existing;
}
