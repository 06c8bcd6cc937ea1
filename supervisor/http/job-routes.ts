/**
 * The jobs API, for commands that outlive a request: long-poll by offsets, Server-Sent Events, stdin, cancel and
 * a list. Output is read from the job's log files; waiting is by event (one timer per waiting request).
 */
import express, { type Request, type Response } from 'express';
import { ToolhostError } from '../../lib/errors.js';
import * as schemas from '../../lib/schemas.js';
import type { AppDeps } from './app.js';
import { sendError } from './errors.js';
import { clientGone } from './tool-routes.js';
import { jsonBody, validate } from './validate.js';

function jobIdParam(req: Request): string {
  const parsed = schemas.jobId.safeParse(req.params.id);
  if (!parsed.success) {
    throw new ToolhostError('job_not_found', `"${req.params.id}" is not a job id; use the job_id that /execute returned`);
  }
  return parsed.data;
}

/**
 * The jobs tools as plain operations on validated input, shared by the HTTP routes below and the MCP endpoint.
 * `signal` ends a wait early (the caller went away).
 */
export const JOB_OPERATIONS = {
  job_list: async (d: AppDeps, q: { project_id?: string | undefined }, _signal?: AbortSignal) => ({ jobs: await d.jobs.list(q.project_id) }),
  job_status: async (d: AppDeps, q: schemas.JobPollQuery & { job_id: string }, signal?: AbortSignal) =>
    d.jobs.page(q.job_id, { stdout: q.stdout_offset, stderr: q.stderr_offset }, q.wait_s * 1000, signal),
  job_input: async (d: AppDeps, q: schemas.JobInputRequest & { job_id: string }, _signal?: AbortSignal) => {
    await d.jobs.input(q.job_id, q.data, q.eof);
    return { job_id: q.job_id, bytes: Buffer.byteLength(q.data), eof: q.eof };
  },
  // The handler kills the tree (TERM, then KILL after the grace) and reports; wait for that.
  job_cancel: async (d: AppDeps, q: { job_id: string }, _signal?: AbortSignal) => d.jobs.cancel(q.job_id, (d.config.commands.killGraceS + 10) * 1000),
} as const;

/** The name of a jobs tool. */
export type JobOperation = keyof typeof JOB_OPERATIONS;

/** GET /jobs, GET /jobs/:id, GET /jobs/:id/stream, POST /jobs/:id/input, DELETE /jobs/:id. */
export function jobRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  const route = (handler: (req: Request, res: Response) => Promise<unknown>) => async (req: Request, res: Response) => {
    try {
      const body = await handler(req, res);
      if (body !== undefined) res.json(body);
    } catch (err) {
      sendError(res, err);
    }
  };

  router.get('/jobs', route(async (req, res) => JOB_OPERATIONS.job_list(d, validate(schemas.jobListQuery, { ...req.query }, 'GET /jobs query'), clientGone(res))));

  router.get(
    '/jobs/:id',
    route(async (req, res) => {
      const q = validate(schemas.jobPollQuery, { ...req.query }, 'GET /jobs/:id query');
      return JOB_OPERATIONS.job_status(d, { ...q, job_id: jobIdParam(req) }, clientGone(res));
    }),
  );

  router.get(
    '/jobs/:id/stream',
    route(async (req, res) => {
      const id = jobIdParam(req);
      const q = validate(schemas.jobPollQuery.omit({ wait_s: true }), { ...req.query }, 'GET /jobs/:id/stream query');
      await d.jobs.page(id, { stdout: 0, stderr: 0 }, 0); // 404 before the stream starts
      await streamJob(d, id, { stdout: q.stdout_offset, stderr: q.stderr_offset }, res);
      return undefined;
    }),
  );

  router.post(
    '/jobs/:id/input',
    jsonBody(d.config.http.maxBodyBytes),
    route(async (req, res) => {
      const body = validate(schemas.jobInputRequest, req.body, 'POST /jobs/:id/input');
      return JOB_OPERATIONS.job_input(d, { ...body, job_id: jobIdParam(req) }, clientGone(res));
    }),
  );

  router.delete('/jobs/:id', route(async (req, res) => JOB_OPERATIONS.job_cancel(d, { job_id: jobIdParam(req) }, clientGone(res))));
  return router;
}

/** Server-Sent Events: `stdout` and `stderr` events carry output text (JSON strings), `end` the final status. */
async function streamJob(d: AppDeps, id: string, from: { stdout: number; stderr: number }, res: Response): Promise<void> {
  res.status(200).set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  const gone = clientGone(res);
  const offsets = { ...from };
  // A slow reader makes us wait rather than buffer the whole log in memory.
  const send = async (event: string, data: unknown): Promise<void> => {
    if (!res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`) && !gone.aborted) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        gone.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  };
  while (!gone.aborted) {
    // Waits up to 15 s for news; an empty pass sends a comment line that keeps proxies from closing the stream.
    const view = await d.jobs.page(id, offsets, 15_000, gone);
    let sent = false;
    for (const s of ['stdout', 'stderr'] as const) {
      if (view[s].length > 0) {
        await send(s, { text: view[s], offset: offsets[s], next_offset: view[`${s}_offset`] });
        sent = true;
      }
    }
    offsets.stdout = view.stdout_offset;
    offsets.stderr = view.stderr_offset;
    const final = view.status !== 'queued' && view.status !== 'running';
    if (final && view.more_bytes.stdout === 0 && view.more_bytes.stderr === 0) {
      await send('end', { status: view.status, exit_code: view.exit_code, signal: view.signal, duration_ms: view.duration_ms, error: view.error });
      break;
    }
    if (!sent && !final) res.write(': keep-alive\n\n');
  }
  res.end();
}
