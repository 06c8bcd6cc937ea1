/**
 * The HTTP front: request ids and logs, health, auth, body limits, the route modules, and the JSON errors.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../../config/schema.js';
import { ToolhostError } from '../../lib/errors.js';
import type { JobQueue } from '../../lib/queue/job-queue.js';
import type { CommandJobs } from '../command-jobs.js';
import type { JobsApi } from '../jobs-api.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Pools } from '../pools.js';
import type { ProjectCache } from '../projects.js';
import type { QueuePump } from '../pump.js';
import type { ReloadReport } from '../reload.js';
import { adminRoutes } from './admin-routes.js';
import { docsRoutes } from './docs-routes.js';
import { sendError } from './errors.js';
import { jobRoutes } from './job-routes.js';
import { mcpRoutes } from './mcp-routes.js';
import { projectRoutes } from './project-routes.js';
import { TOOL_ROUTES, toolRoutes } from './tool-routes.js';

/** What the HTTP front needs from the rest of the supervisor. */
export interface AppDeps {
  /** The configuration in effect; a reload replaces it, so routes read it per request. */
  config: Config;
  queue: JobQueue;
  pump: QueuePump;
  pools: Pools;
  projects: ProjectCache;
  commands: CommandJobs;
  /** The jobs API: this process's registry, or (Azure queue) the registries of the workers running the commands. */
  jobs: JobsApi;
  metrics: Metrics;
  log: Logger;
  startedAt: number;
  /** This process's name among its peers (the distributed queue). */
  nodeId: string;
  /** How commands are isolated here, for /health. */
  sandbox: { mode: 'none' | 'bwrap'; network: boolean; process_limit: 'cgroup' | 'rlimit' };
  /** Re-reads and applies the config file (POST /admin/reload). */
  reload(): Promise<ReloadReport>;
  /** True once shutdown began: new work is refused with 503. */
  closing(): boolean;
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
    const failing = d.projects.failures().map(({ lastAttempt: _, ...f }) => f);
    res.json({
      status: d.closing() ? 'shutting_down' : failing.length > 0 ? 'degraded' : 'ok',
      uptime_s: Math.round((Date.now() - d.startedAt) / 1000),
      role: d.config.role,
      node: d.nodeId,
      queue: { backend: d.config.queue.backend, depth: d.queue.depth() + d.pump.waiting() },
      pool: { threads: pool.threads, busy: pool.busy, lanes: pool.lanes },
      jobs: d.pump.running(),
      cache: d.projects.summary(),
      writeback: { failing },
      sandbox: d.sandbox,
    });
  });

  if (d.config.token) app.use(bearerAuth(d.config.token));

  app.use((_req, _res, next) => {
    next(d.closing() ? new ToolhostError('shutting_down', 'the server is shutting down and accepts no new work; retry against another instance or later') : undefined);
  });

  refuseOffRole(app, d.config.role);
  app.use(toolRoutes(d));
  app.use(projectRoutes(d));
  app.use(jobRoutes(d));
  app.use(docsRoutes(d));
  app.use(mcpRoutes(d));
  app.use(adminRoutes(d));

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

/**
 * Routes that need what another role runs: a worker has no reply queue (tools and jobs go through an api
 * process); an api process has no working copies (uploads, saves and evictions happen on workers).
 */
function refuseOffRole(app: express.Express, role: Config['role']): void {
  const refuse = (why: string) => (_req: Request, _res: Response, next: NextFunction) => next(new ToolhostError('not_on_this_role', why));
  if (role === 'worker') {
    app.use(
      [...TOOL_ROUTES.map((r) => r.path), '/jobs', '/mcp'],
      refuse('this process has role "worker": it runs jobs but takes no requests for them; send tool, jobs and MCP requests to a process with role "api" (or "all")'),
    );
  }
  if (role === 'api') {
    const why = refuse(
      'this process has role "api" and holds no working copies; upload, save or evict projects through a process with role "all" or "worker", or put the archive into the store container directly',
    );
    app.put('/projects/:id', why);
    app.post('/projects/:id/save', why);
    app.delete('/projects/:id/cache', why);
  }
}

function bearerAuth(token: string) {
  const expected = Buffer.from(`Bearer ${token}`);
  return (req: Request, _res: Response, next: NextFunction): void => {
    const got = Buffer.from(req.get('authorization') ?? '');
    const ok = got.length === expected.length && timingSafeEqual(got, expected);
    next(ok ? undefined : new ToolhostError('unauthorized', 'missing or wrong bearer token; send the header "Authorization: Bearer <token>"'));
  };
}
