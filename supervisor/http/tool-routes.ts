/** The tool routes: each request becomes a job on the queue and waits for its outcome event (no polling). */
import express, { type Response } from 'express';
import type { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { ToolhostError } from '../../lib/errors.js';
import { type Job, type JobOutcome, type JobType, newJob } from '../../lib/jobs.js';
import * as schemas from '../../lib/schemas.js';
import type { AppDeps } from './app.js';
import { sendError } from './errors.js';
import { jsonBody, validate } from './validate.js';

/** Tool routes: path, job type, request schema. */
export const TOOL_ROUTES: readonly { path: string; type: JobType; schema: z.ZodType<{ project_id: string }> }[] = [
  { path: '/execute', type: 'execute', schema: schemas.executeRequest },
  { path: '/file/read', type: 'file.read', schema: schemas.readRequest },
  { path: '/file/write', type: 'file.write', schema: schemas.writeRequest },
  { path: '/file/edit', type: 'file.edit', schema: schemas.editRequest },
  { path: '/file/list', type: 'file.list', schema: schemas.listRequest },
  { path: '/search', type: 'search', schema: schemas.searchRequest },
];

/** POST routes for every tool. */
export function toolRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  const json = jsonBody(d.config.http.maxBodyBytes);
  for (const route of TOOL_ROUTES) {
    router.post(route.path, json, async (req, res) => {
      try {
        const body = validate(route.schema, req.body, `POST ${route.path}`);
        const seen: Seen = {};
        const result = await submitTool(d, route.type, body, clientGone(res), res.locals.requestId as string | undefined, seen);
        if (seen.worker) res.setHeader('X-Toolhost-Worker', seen.worker);
        res.json(result);
      } catch (err) {
        sendError(res, err);
      }
    });
  }
  return router;
}

/** A signal that fires when the client closes the connection before the answer was sent. */
export function clientGone(res: Response): AbortSignal {
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort(new ToolhostError('bad_request', 'client closed the connection'));
  });
  return gone.signal;
}

/** Bounds that depend on the configuration, checked before a job is queued. */
function checkLimits(type: JobType, body: Record<string, unknown>, config: Config): void {
  if (type === 'execute' && typeof body.timeout_s === 'number' && body.timeout_s > config.commands.maxTimeoutS) {
    throw new ToolhostError('bad_request', `timeout_s ${body.timeout_s} exceeds the server's maximum of ${config.commands.maxTimeoutS} s; ask for less`);
  }
  if (type === 'file.list' && typeof body.depth === 'number' && body.depth > config.list.maxDepth) {
    throw new ToolhostError('bad_request', `depth ${body.depth} exceeds list.maxDepth (${config.list.maxDepth}); list a subfolder instead`);
  }
  if (type === 'search' && typeof body.max_results === 'number' && body.max_results > config.search.maxResults) {
    throw new ToolhostError('bad_request', `max_results ${body.max_results} exceeds search.maxResults (${config.search.maxResults}); narrow the search instead`);
  }
}

/**
 * Runs a tool request end to end, whatever the transport (HTTP route, MCP): checks config-dependent limits,
 * queues the job and waits for its outcome event. `signal` ends the wait early (the caller went away); the job
 * itself goes on. Commands answer after `wait_s` with a running snapshot if they are not done by then.
 * `requestId` is carried on the job so its log line can be tied to the request's.
 */
export async function submitTool(d: AppDeps, type: JobType, body: { project_id: string }, signal?: AbortSignal, requestId?: string, seen: Seen = {}): Promise<unknown> {
  const payload = body as Record<string, unknown>;
  checkLimits(type, payload, d.config);
  const job = newJob(type, body.project_id, payload, requestId);
  if (type === 'execute') return executeJob(d, job, body as schemas.ExecuteRequest, seen, signal);
  const { outcome } = await enqueue(d, job, d.config.http.requestTimeoutS * 1000, signal);
  const result = await outcome;
  seen.worker = result.worker;
  if (!result.ok) throw result.error;
  return result.value;
}

/** What a caller may want to know of how its job ran: the worker process (distributed queue). */
export interface Seen {
  worker?: string | undefined;
}

/**
 * Registers a waiter for the job's outcome, then queues the job, so the outcome cannot be missed. Resolves once
 * the job is queued (it throws `queue_full` or `shutting_down` otherwise) with the pending outcome.
 */
async function enqueue(d: AppDeps, job: Job, waitMs: number, signal?: AbortSignal): Promise<{ outcome: Promise<JobOutcome> }> {
  const refused = new AbortController();
  const stop = signal ? AbortSignal.any([signal, refused.signal]) : refused.signal;
  const outcome = d.queue.waitFor(job.id, { timeoutMs: waitMs, signal: stop });
  // The wait may end (wait_s 0, a client gone) while a remote queue still takes the job: the caller reads the
  // outcome after this returns; until then it must not count as an unhandled rejection.
  outcome.catch(() => {});
  try {
    await d.queue.enqueue(job);
  } catch (err) {
    refused.abort(err);
    throw err;
  }
  return { outcome };
}

async function executeJob(d: AppDeps, job: Job, req: schemas.ExecuteRequest, seen: Seen, signal?: AbortSignal): Promise<unknown> {
  // Known to the jobs API before it is queued, so its job_id answers from the first moment.
  await d.jobs.accepted(job, req);
  const waitS = req.background ? 0 : (req.wait_s ?? d.config.commands.defaultWaitS);
  let pending;
  try {
    pending = await enqueue(d, job, waitS * 1000, signal);
  } catch (err) {
    await d.jobs.refused(job);
    throw err;
  }
  let outcome: JobOutcome;
  try {
    outcome = await pending.outcome;
  } catch (err) {
    // Still running at wait_s: answer with what it has printed so far; it keeps running.
    if (err instanceof ToolhostError && err.code === 'job_deadline') return d.jobs.snapshot(job.id);
    throw err;
  }
  seen.worker = outcome.worker;
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
