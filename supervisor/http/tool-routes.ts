/** The tool routes: each request becomes a job on the queue and waits for its outcome event (no polling). */
import express, { type Request, type Response } from 'express';
import type { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { ToolhostError } from '../../lib/errors.js';
import { type JobType, newJob } from '../../lib/jobs.js';
import * as schemas from '../../lib/schemas.js';
import type { AppDeps } from './app.js';
import { sendError } from './errors.js';
import { validate } from './validate.js';

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
  const json = express.json({ limit: d.config.http.maxBodyBytes, strict: true, type: () => true });
  for (const route of TOOL_ROUTES) {
    router.post(route.path, json, async (req, res) => {
      try {
        const body = validate(route.schema, req.body, `POST ${route.path}`);
        checkLimits(route.type, body as Record<string, unknown>, d.config);
        res.json(await submit(d, req, res, route.type, body));
      } catch (err) {
        sendError(res, err);
      }
    });
  }
  return router;
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

/** How long a request waits for its job before `job_deadline`. */
function deadlineMs(type: JobType, body: Record<string, unknown>, config: Config): number {
  if (type !== 'execute') return config.http.requestTimeoutS * 1000;
  const timeoutS = typeof body.timeout_s === 'number' ? body.timeout_s : config.commands.defaultTimeoutS;
  // The handler enforces the command's timeout; the wait covers queueing, the kill grace and a margin on top.
  return (config.http.requestTimeoutS + timeoutS + config.commands.killGraceS + 5) * 1000;
}

/** Queues a job and waits for its outcome; the wait ends early if the client goes away. */
async function submit(d: AppDeps, _req: Request, res: Response, type: JobType, body: { project_id: string }): Promise<unknown> {
  const payload = body as Record<string, unknown>;
  const job = newJob(type, body.project_id, payload);
  const gone = new AbortController();
  const onClose = (): void => {
    if (!res.writableFinished) gone.abort(new ToolhostError('bad_request', 'client closed the connection'));
  };
  res.on('close', onClose);
  try {
    const outcome = d.queue.waitFor(job.id, { timeoutMs: deadlineMs(type, payload, d.config), signal: gone.signal });
    try {
      await d.queue.enqueue(job);
    } catch (err) {
      gone.abort(err);
      outcome.catch(() => {});
      throw err;
    }
    const result = await outcome;
    if (!result.ok) throw result.error;
    return result.value;
  } finally {
    res.off('close', onClose);
  }
}

