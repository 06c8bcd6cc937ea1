/**
 * The HTTP front: request ids and logs, the guards (Host, Origin, token, JSON bodies; see guards.ts), health, the
 * route modules, and the JSON errors.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../../config/schema.js';
import { ToolhostError } from '../../lib/errors.js';
import { type StoreOutage, storeOutage } from '../../lib/store/create-store.js';
import type { WritebackFailure } from '../projects.js';
import { adminRoutes } from './admin-routes.js';
import { anthropicRoutes } from './anthropic-routes.js';
import { callRoutes } from './call-routes.js';
import { consolePage, consoleRoutes } from './console-routes.js';
import type { AppDeps, WorkerParts } from './deps.js';
import { docsRoutes } from './docs-routes.js';
import { bodyParserError, sendError, setErrorContext } from './errors.js';
import { authChecker, authGuard, hostGuard, jsonPostGuard, originGuard } from './guards.js';
import { jobRoutes } from './job-routes.js';
import { mcpRoutes } from './mcp-routes.js';
import { openAIRoutes } from './openai-routes.js';
import { projectRoutes } from './project-routes.js';
import { PROJECT_TOOLS } from './project-tools.js';
import { TOOLS, toolRoutes } from './tools.js';

/** Builds the Express application. */
export function createApp(d: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const incoming = req.get('x-request-id');
    const id = incoming && /^[\w.:-]{1,128}$/.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = id;
    setErrorContext(res, { log: d.log, dataDir: d.config.dataDir });
    res.setHeader('X-Request-Id', id);
    const started = Date.now();
    res.on('finish', () =>
      d.log.info({ request_id: id, method: req.method, path: req.path, status: res.statusCode, duration_ms: Date.now() - started }, 'request'),
    );
    next();
  });

  const config = (): Config => d.config;
  // Built on first use: an app built only to list its routes (a test) has no token at all.
  let checker: ReturnType<typeof authChecker> | undefined;
  const checkToken = (header: string | undefined) => {
    checker ??= authChecker(d.token);
    return checker(header);
  };
  app.use(hostGuard(config));
  app.use(originGuard(config));

  // Without the token, only whether the server is up: the rest (node, jobs, containment) is for the operator.
  app.get('/health', (req, res) => {
    const w = d.worker;
    const failing = w?.projects.failures() ?? [];
    const outage = storeOutage(d.store);
    const status = d.closing() ? 'shutting_down' : failing.length > 0 || outage ? 'degraded' : 'ok';
    if (checkToken(req.headers.authorization) !== 'ok') {
      res.json({ status });
      return;
    }
    res.json({
      status,
      ...(status === 'degraded' && { reasons: degradedBecause(outage, failing) }),
      uptime_s: Math.round((Date.now() - d.startedAt) / 1000),
      role: d.config.role,
      node: d.nodeId,
      queue: { backend: d.config.queue.backend, depth: d.queue.depth() + (w?.pump.waiting() ?? 0) },
      // An api process runs no jobs and holds no working copies: it has no pool, jobs, cache or write-backs to show.
      ...(w && workerHealth(w, failing)),
      store: { backend: d.config.store.backend, status: outage ? 'unreachable' : 'ok', ...(outage && { outage }) },
      containment: d.containment,
    });
  });

  app.use(consolePage()); // the console's page holds no data; its calls for data carry the token
  app.use(authGuard(checkToken));
  app.use(jsonPostGuard());

  app.use((_req, _res, next) => {
    next(
      d.closing()
        ? new ToolhostError('shutting_down', 'the server is shutting down and accepts no new work; retry against another instance or later')
        : undefined,
    );
  });

  refuseOffRole(app, d.config.role);
  app.use(toolRoutes(d));
  app.use(projectRoutes(d));
  app.use(jobRoutes(d));
  app.use(docsRoutes(d));
  app.use(callRoutes(d));
  app.use(anthropicRoutes(d));
  app.use(openAIRoutes(d));
  app.use(mcpRoutes(d));
  app.use(adminRoutes(d));
  app.use(consoleRoutes(d));

  app.use((req, res) => {
    sendError(res, new ToolhostError('not_found', `no route ${req.method} ${req.path}; see the README's API reference for the routes`));
  });

  // Guard refusals and body-parser failures (size, JSON syntax, a body that is not its Content-Encoding) arrive here.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    sendError(res, bodyParserError(err, d.config.http.maxBodyBytes) ?? err);
  });
  return app;
}

/** Why /health says "degraded", one sentence per cause, for an operator. */
function degradedBecause(outage: StoreOutage | null, failing: WritebackFailure[]): string[] {
  const reasons: string[] = [];
  if (outage) {
    reasons.push(
      `the project store is unreachable since ${outage.since} (${outage.attempts} failed calls, the last at ${outage.last_attempt}): ${outage.last_error.message}`,
    );
  }
  if (failing.length > 0) reasons.push(`${failing.length} working copies could not be written back (see writeback.failing); they stay dirty and are retried`);
  return reasons;
}

/** The figures of /health that only a process running jobs has. */
function workerHealth(w: WorkerParts, failing: WritebackFailure[]) {
  const pool = w.pools.stats();
  return {
    pool: { threads: pool.threads, busy: pool.busy, lanes: pool.lanes },
    jobs: w.pump.running(),
    cache: w.projects.summary(),
    sessions: w.sessions.stats(),
    writeback: { failing: failing.map(({ lastAttempt: _, ...f }) => f) },
  };
}

/**
 * Routes that need what another role runs: a worker has no reply queue (tools and jobs go through an api
 * process); an api process has no working copies (uploads, saves and evictions happen on workers).
 */
function refuseOffRole(app: express.Express, role: Config['role']): void {
  const refuse = (why: string) => (_req: Request, _res: Response, next: NextFunction) => next(new ToolhostError('not_on_this_role', why));
  if (role === 'worker') {
    app.use(
      // Not the project tools: a worker holds working copies, and lists, creates and saves them itself.
      [...new Set(TOOLS.filter((t) => !PROJECT_TOOLS.some((p) => p.name === t.name)).map((t) => t.route.path.replace(/\{(\w+)\}/g, ':$1'))), '/jobs', '/mcp'],
      refuse(
        'this process has role "worker": it runs jobs but takes no requests for them; send tool, jobs and MCP requests to a process with role "api" (or "all")',
      ),
    );
  }
  if (role === 'api') {
    const why = refuse(
      'this process has role "api" and holds no working copies; create, upload, save, delete or evict projects through a process with role "all" or "worker", or put the archive into the store container directly',
    );
    app.put('/projects/:id', why);
    app.post('/projects/:id/save', why);
    app.delete('/projects/:id/cache', why);
    app.post('/projects/:id', why);
    app.delete('/projects/:id', why);
  }
}
