/**
 * Deleting a project: its archive from the store and its working copy from the cache. Nothing an agent wrote is
 * dropped unless the caller says so: a project with jobs queued or running, or with unsaved changes in its copy,
 * is refused (`project_busy`, saying what to do) unless `force` is given, which cancels its commands and discards
 * the unsaved changes. Conflict copies in the store stay (another writer's work).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ToolhostError } from '../lib/errors.js';
import { notFound, type ProjectStore } from '../lib/store/project-store.js';
import type { ProjectCopies } from './project-copies.js';

/** What a delete needs of the cache. */
export interface RemoveParts {
  copies: ProjectCopies;
  store: Pick<ProjectStore, 'stat' | 'delete'>;
  /** Jobs queued or running for the project (those waiting for its lock included). */
  activeJobs(id: string): number;
  /**
   * Ends what lives in a working copy that is going for good (its shell sessions), once the deletion passed its checks; awaited, so nothing runs in the copy while it is saved or swapped.
   */
  endLiving?: ((id: string) => Promise<void>) | undefined;
}

/** How to delete. */
export interface RemoveOptions {
  /** Cancel the project's jobs and discard unsaved changes instead of refusing. */
  force: boolean;
  /** Cancels the project's commands (force only), waiting a little for each; called until none runs. */
  stopJobs(): Promise<void>;
  /** Longest wait for jobs running in the copy to end after {@link stopJobs}. */
  waitMs: number;
}

/** The answer to a delete. */
export interface RemoveOutcome {
  project_id: string;
  /** The store held an archive of the project, now deleted. */
  archive_deleted: boolean;
  /** A working copy was removed from this process's cache. */
  copy_discarded: boolean;
  /** The removed copy held changes never saved (only with force). */
  unsaved_discarded: boolean;
}

/** Deletes project `id`; the caller holds the project's lock. Throws `project_not_found` or `project_busy`. */
export async function removeProject(p: RemoveParts, id: string, o: RemoveOptions): Promise<RemoveOutcome> {
  const entry = p.copies.get(id);
  const stored = await p.store.stat(id);
  if (!entry && !stored) throw notFound(id);
  const busy = (what: string, todo: string): ToolhostError =>
    new ToolhostError('project_busy', `project "${id}" ${what}; ${todo}, or pass ?force=true to delete it anyway`, { project_id: id });
  // Withdrawn first: a job that arrives from now on waits for the project's lock, then finds nothing.
  entry?.state.on('withdraw');
  let unsaved = false;
  try {
    if (!o.force && p.activeJobs(id) > 0) {
      throw busy(`has ${p.activeJobs(id)} job(s) queued or running`, 'wait for them or stop them (job_list, job_cancel)');
    }
    if (entry && o.force) {
      // Again and again until nothing runs in the copy: a command still starting when asked is only marked, and
      // has to be cancelled once more when it runs.
      const until = Date.now() + o.waitMs;
      while (entry.running > 0 && Date.now() < until) {
        await o.stopJobs();
        if (entry.running > 0) await sleep(50);
      }
      if (entry.running > 0)
        throw new ToolhostError('project_busy', `project "${id}" still has jobs running after they were cancelled; retry the delete`, { project_id: id });
    }
    unsaved = entry?.state.dirty ?? false;
    if (unsaved && !o.force) {
      throw busy('has unsaved changes in its working copy', `save them first (POST /projects/${id}/save) if they matter`);
    }
  } catch (err) {
    entry?.state.on('giveBack');
    throw err;
  }
  if (entry) await p.endLiving?.(id);
  let archiveDeleted: boolean;
  try {
    archiveDeleted = await p.store.delete(id);
  } catch (err) {
    entry?.state.on('giveBack');
    throw err;
  }
  if (entry) {
    await p.copies.discard(id);
    await p.copies.flush();
  }
  return { project_id: id, archive_deleted: archiveDeleted, copy_discarded: entry !== undefined, unsaved_discarded: unsaved };
}
