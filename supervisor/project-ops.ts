/**
 * The jobs of the project-op tools (handlers/checkpoint-tools.ts), done by the project cache of the process that
 * took them off the queue: the worker holding the project. They need no lane slot and no pool thread of their own;
 * the cache does its work (materializing, packing, uploading) its own way.
 */
import type { Job, JobOutcome } from '../lib/jobs.js';
import type { ProjectOp } from '../lib/tool.js';

/** What the project-op jobs ask of the project cache (ProjectCache does all of it). */
export interface ProjectOpsHost {
  checkpoint(id: string, opts: { label: string | null; kind: 'manual' }): Promise<unknown>;
  checkpoints(id: string): Promise<unknown>;
  restore(id: string, checkpointId: string, opts: { selfJobs: number }): Promise<unknown>;
  fork(id: string, newId: string, checkpointId: string | null): Promise<unknown>;
}

/** The fields of a project-op job's payload (the pump checked it against the tool's input schema). */
interface ProjectOpPayload {
  label?: string;
  checkpoint_id?: string;
  new_project_id?: string;
}

/** Does `op` for `job`; a failure rejects (the pump turns it into the job's error outcome). */
export async function runProjectOp(projects: ProjectOpsHost, op: ProjectOp, job: Job): Promise<JobOutcome> {
  const p = job.payload as ProjectOpPayload;
  const id = job.projectId;
  switch (op) {
    case 'checkpoint_create':
      return { ok: true, value: await projects.checkpoint(id, { label: p.label ?? null, kind: 'manual' }) };
    case 'checkpoint_list':
      return { ok: true, value: await projects.checkpoints(id) };
    case 'checkpoint_restore':
      // The restore's own job is one of the project's active jobs: any other one makes it project_busy.
      return { ok: true, value: await projects.restore(id, String(p.checkpoint_id), { selfJobs: 1 }) };
    case 'project_fork':
      return { ok: true, value: await projects.fork(id, String(p.new_project_id), p.checkpoint_id ?? null) };
  }
}
