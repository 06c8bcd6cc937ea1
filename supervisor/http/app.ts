/**
 * The HTTP front: routes, auth, body limits and the one place errors become HTTP responses. Every tool request
 * becomes a job on the queue; the request waits for the job's outcome event (no polling).
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { ToolhostError, toToolhostError } from '../../lib/errors.js';
import { type JobType, newJob } from '../../lib/jobs.js';
import type { JobQueue } from '../../lib/queue/job-queue.js';
import * as schemas from '../../lib/schemas.js';
import type { Logger } from '../logger.js';
import type { Pools } from '../pools.js';
import type { ProjectCache } from '../projects.js';
import type { QueuePump } from '../pump.js';
import { validate } from './validate.js';

/** What the HTTP front needs from the rest of the supervisor. */
export interface AppDeps {
  config: Config;
  queue: JobQueue;
  pump: QueuePump;
  pools: Pools;
  projects: ProjectCache;
  log: Logger;
  startedAt: number;
  /** True once shutdown began: new work is refused with 503. */
  closing(): boolean;
}

/** Tool routes: path, job type, request schema. */
const TOOL_ROUTES: readonly { path: string; type: JobType; schema: z.ZodType<{ project_id: string }> }[] = [
  { path: '/execute', type: 'execute', schema: schemas.executeRequest },
  { path: '/file/read', type: 'file.read', schema: schemas.readRequest },
  { path: '/file/write', type: 'file.write', schema: schemas.writeRequest },
  { path: '/file/edit', type: 'file.edit', schema: schemas.editRequest },
  { path: '/file/list', type: 'file.list', schema: schemas.listRequest },
  { path: '/search', type: 'search', schema: schemas.searchRequest },
];

/** Sends the JSON error body for any throwable. */
export function sendError(res: Response, err: unknown): void {
  const e = toToolhostError(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (e.code === 'queue_full' || e.code === 'shutting_down') res.setHeader('Retry-After', String(e.details?.retry_after_s ?? 1));
  res.status(e.status).json({ error: { code: e.code, message: e.message, ...e.details } });
}

/** Builds the Express application. */
export function createApp(d: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const incoming = req.get('x-request-id');
    const id = incoming && /^[\w.:-]{1,128}$/.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    const started = Date.now();
    res.on('finish', () =>
      d.log.info({ request_id: id, method: req.method, path: req.path, status: res.statusCode, duration_ms: Date.now() - started }, 'request'),
    );
    next();
  });

  app.get('/health', (_req, res) => {
    const pool = d.pools.stats();
    res.json({
      status: d.closing() ? 'shutting_down' : 'ok',
      uptime_s: Math.round((Date.now() - d.startedAt) / 1000),
      queue: { depth: d.queue.depth() + d.pump.waiting() },
      pool: { threads: pool.threads, busy: pool.busy, lanes: pool.lanes },
      jobs: d.pump.running(),
    });
  });

  if (d.config.token) app.use(bearerAuth(d.config.token));

  app.use((_req, _res, next) => {
    next(d.closing() ? new ToolhostError('shutting_down', 'the server is shutting down and accepts no new work; retry against another instance or later') : undefined);
  });

  const json = express.json({ limit: d.config.http.maxBodyBytes, strict: true, type: () => true });
  for (const route of TOOL_ROUTES) {
    app.post(route.path, json, async (req, res) => {
      try {
        const body = validate(route.schema, req.body, `POST ${route.path}`);
        checkLimits(route.type, body as Record<string, unknown>, d.config);
        res.json(await submit(d, req, res, route.type, body));
      } catch (err) {
        sendError(res, err);
      }
    });
  }

  app.put('/projects/:id', async (req, res) => {
    try {
      const id = projectIdParam(req.params.id);
      const replace = req.query.replace === 'true' || req.query.replace === '1';
      const upload = await receiveUpload(req, d);
      const { created, info } = await d.projects.put(id, upload, { replace });
      res.status(created ? 201 : 200).json(info);
    } catch (err) {
      sendError(res, err);
    }
  });

  app.get('/projects', async (_req, res) => {
    try {
      res.json({ projects: await d.projects.list() });
    } catch (err) {
      sendError(res, err);
    }
  });

  app.get('/projects/:id', async (req, res) => {
    try {
      res.json(await d.projects.info(projectIdParam(req.params.id)));
    } catch (err) {
      sendError(res, err);
    }
  });

  app.use((req, res) => {
    sendError(res, new ToolhostError('not_found', `no route ${req.method} ${req.path}; see the README's API reference for the routes`));
  });

  // Body-parser failures (size, JSON syntax) arrive here.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') {
      return sendError(res, new ToolhostError('payload_too_large', `the request body exceeds http.maxBodyBytes (${d.config.http.maxBodyBytes} bytes); send less, or write large files with a command`));
    }
    if (type === 'entity.parse.failed') {
      return sendError(res, new ToolhostError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`));
    }
    if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      return sendError(res, new ToolhostError('unsupported_media_type', 'send the body as UTF-8 JSON'));
    }
    sendError(res, err);
  });
  return app;
}

function bearerAuth(token: string) {
  const expected = Buffer.from(`Bearer ${token}`);
  return (req: Request, _res: Response, next: NextFunction): void => {
    const got = Buffer.from(req.get('authorization') ?? '');
    const ok = got.length === expected.length && timingSafeEqual(got, expected);
    next(ok ? undefined : new ToolhostError('unauthorized', 'missing or wrong bearer token; send the header "Authorization: Bearer <token>"'));
  };
}

function projectIdParam(id: string | undefined): string {
  if (!id || !schemas.PROJECT_ID_PATTERN.test(id)) {
    throw new ToolhostError('invalid_project_id', `project id "${id}" is invalid; it must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`);
  }
  return id;
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

/** Streams an archive upload to a temp file, enforcing http.maxArchiveBytes without buffering it in memory. */
async function receiveUpload(req: Request, d: AppDeps): Promise<string> {
  const max = d.config.http.maxArchiveBytes;
  const tooLarge = (): ToolhostError =>
    new ToolhostError('payload_too_large', `the archive exceeds http.maxArchiveBytes (${max} bytes); upload a smaller project or raise the limit`);
  const declared = Number(req.get('content-length') ?? NaN);
  if (declared > max) throw tooLarge();
  const file = join(d.projects.tmpDir, `upload-${randomUUID()}.part`);
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      cb(seen > max ? tooLarge() : null, chunk);
    },
  });
  try {
    await pipeline(req, limiter, createWriteStream(file, { flags: 'wx' }));
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  if (seen === 0) {
    await rm(file, { force: true });
    throw new ToolhostError('bad_request', 'the request body is empty; send the project archive (zip or tar.gz) as the body');
  }
  return file;
}
