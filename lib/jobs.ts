/**
 * The job model shared by the HTTP front, the queue, the pump and the pool threads. Every request for a job tool
 * (lib/tool.ts) becomes a Job (supervisor/http/tools.ts makes them); its result comes back as a JobOutcome, success or a serialized ToolhostError.
 */
import type { SerializedError } from './errors.js';

/** One unit of work on one project. */
export interface Job {
  /** Unique id, returned to the caller as job_id. */
  id: string;
  /** The job type of the tool that runs it (handlers/index.ts finds the tool by it). */
  type: string;
  /** Whether it changes the project: the queue never runs such a job again silently after a worker died. */
  mutates: boolean;
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
