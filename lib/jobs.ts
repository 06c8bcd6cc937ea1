/**
 * The job model shared by the HTTP front, the queue, the pump and the pool threads. Every request becomes a Job;
 * its result comes back as a JobOutcome, success or a serialized ToolhostError.
 */
import { randomUUID } from 'node:crypto';
import type { SerializedError } from './errors.js';

/** Every tool a job can run. */
export const JOB_TYPES = ['execute', 'file.read', 'file.write', 'file.edit', 'file.list', 'search'] as const;

/** The tool a job runs. */
export type JobType = (typeof JOB_TYPES)[number];

/**
 * Lanes keep short jobs from waiting behind long ones: commands run in their own lane on their own pool, so a
 * read, list or search never competes with a command for a slot or a thread.
 */
export type Lane = 'commands' | 'files';

/** The lane a job type runs in. */
export function laneOf(type: JobType): Lane {
  return type === 'execute' ? 'commands' : 'files';
}

/** Job types that change the project (and so serialize per file, and are never retried silently). */
export function isMutating(type: JobType): boolean {
  return type === 'execute' || type === 'file.write' || type === 'file.edit';
}

/** One unit of work on one project. */
export interface Job {
  /** Unique id, returned to the caller as job_id. */
  id: string;
  type: JobType;
  projectId: string;
  /** The validated request body. */
  payload: Record<string, unknown>;
  /** Epoch ms when the job was accepted. */
  enqueuedAt: number;
  /** X-Request-Id of the request that made the job, so its log line can be tied to the request's. */
  requestId?: string | undefined;
}

/** The result of a job: its value, or the error it ended with. */
export type JobOutcome = ({ ok: true; value: unknown } | { ok: false; error: SerializedError }) & {
  /** The worker process that ran it (the distributed queue fills it in; the X-Toolhost-Worker header shows it). */
  worker?: string;
};

/** Makes a new job with a fresh id; `requestId` ties it to the request that made it (logs). */
export function newJob(type: JobType, projectId: string, payload: Record<string, unknown>, requestId?: string): Job {
  return { id: randomUUID(), type, projectId, payload, enqueuedAt: Date.now(), requestId };
}
