/**
 * The operator console: a static page at /console (console/ at the repository root: HTML, one script, one style
 * sheet) and the one JSON summary it reads besides the public routes, GET /admin/overview. The page holds no data,
 * so it loads without the token; every call it makes for data sends the token, which the operator types in once.
 */
import { readFile } from 'node:fs/promises';
import express from 'express';
import type { MetricObjectWithValues, MetricValueWithName } from 'prom-client';
import type { JobListItem } from '../../handlers/command-view.js';
import { jobToolOf } from '../../handlers/index.js';
import type { Job } from '../../lib/jobs.js';
import type { Lane } from '../../lib/tool.js';
import type { AppDeps } from './deps.js';

/** Where the page's files are: beside the sources (tsx), or two folders up from dist/supervisor/http. */
const CONSOLE_DIR = import.meta.url.includes('/dist/supervisor/') ? new URL('../../../console/', import.meta.url) : new URL('../../console/', import.meta.url);

/** The only files served, by URL path: nothing else under console/ (or outside it) can be asked for. */
const FILES: Record<string, { file: string; type: string }> = {
  '/console': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

/**
 * The page may run only its own script and style, talk only to this server, and be framed by nobody. Job output
 * and file names are written by whoever runs commands: the page shows them as text, and even a slip there could
 * not run an inline handler under this policy.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** GET /console and its two assets; mounted before the token check (they hold no data). */
export function consolePage(): express.Router {
  const router = express.Router();
  const cache = new Map<string, Buffer>();
  for (const [path, f] of Object.entries(FILES)) {
    router.get(path, async (_req, res) => {
      let body = cache.get(f.file);
      if (!body) {
        body = await readFile(new URL(f.file, CONSOLE_DIR));
        cache.set(f.file, body);
      }
      res.status(200).set(PAGE_HEADERS).type(f.type).send(body);
    });
  }
  return router;
}

/** A job of the overview: a command (from the jobs API) or a job of the files lane still in the pump. */
interface OverviewJob {
  job_id: string;
  tool: string;
  lane: Lane;
  project_id: string;
  status: JobListItem['status'];
  /** The command line (its first 200 characters); null for a file job. */
  command: string | null;
  created_at: string;
  finished_at: string | null;
  /** Running time so far, or the whole run once finished (from acceptance: a queued job's wait counts). */
  duration_ms: number;
  /** DELETE /jobs/:id stops it: a command that has not ended. */
  cancellable: boolean;
}

/** Finished commands the overview still lists (newest first), so an operator sees how the last ones ended. */
const RECENT_FINISHED = 20;

/** GET /admin/overview, behind the token. */
export function consoleRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  const inflight = trackPump(d);
  router.get('/admin/overview', async (_req, res) => {
    const now = Date.now();
    const commands = await d.jobs.list();
    const jobs: OverviewJob[] = [];
    let finished = 0;
    for (const c of commands) {
      const live = c.status === 'queued' || c.status === 'running';
      if (!live && ++finished > RECENT_FINISHED) continue;
      const end = c.finished_at ? Date.parse(c.finished_at) : now;
      jobs.push({
        job_id: c.job_id,
        tool: 'execute',
        lane: 'commands',
        project_id: c.project_id,
        status: c.status,
        command: c.command,
        created_at: c.created_at,
        finished_at: c.finished_at,
        duration_ms: Math.max(0, end - Date.parse(c.created_at)),
        cancellable: live,
      });
    }
    for (const [id, t] of inflight) {
      if (t.lane === 'commands') continue; // the jobs API has them, with their status
      jobs.push({
        job_id: id,
        tool: t.tool,
        lane: t.lane,
        project_id: t.job.projectId,
        status: t.started ? 'running' : 'queued',
        command: null,
        created_at: new Date(t.job.enqueuedAt).toISOString(),
        finished_at: null,
        duration_ms: Math.max(0, now - t.job.enqueuedAt),
        cancellable: false,
      });
    }
    const w = d.worker;
    res.json({
      node: d.nodeId,
      role: d.config.role,
      jobs,
      cache: w ? { ...w.projects.summary(), max_bytes: d.config.cache.maxBytes } : null,
      latency: await latencyByTool(d),
    });
  });
  return router;
}

/** A job in the pump, by its id. */
interface Tracked {
  job: Job;
  tool: string;
  lane: Lane;
  started: boolean;
}

/** The jobs the pump holds (received and not ended), kept from its events; empty on a process without one. */
function trackPump(d: AppDeps): ReadonlyMap<string, Tracked> {
  const jobs = new Map<string, Tracked>();
  const pump = d.worker?.pump;
  if (!pump) return jobs;
  pump.on('job:received', (job) => {
    const tool = jobToolOf(job.type);
    jobs.set(job.id, { job, tool: tool?.name ?? job.type, lane: tool?.job.lane ?? 'files', started: false });
  });
  pump.on('job:start', (job) => {
    const t = jobs.get(job.id);
    if (t) t.started = true;
  });
  pump.on('job:end', (job) => {
    jobs.delete(job.id);
  });
  return jobs;
}

/** Latency of one tool's jobs: how many ended, and the 50th and 95th percentiles in seconds (null before any). */
interface ToolLatency {
  tool: string;
  count: number;
  p50_s: number | null;
  p95_s: number | null;
}

/** The job duration histogram of /metrics, summarized per tool (a process without a pump has none). */
async function latencyByTool(d: AppDeps): Promise<ToolLatency[]> {
  const metric = d.metrics.registry.getSingleMetric('toolhost_job_duration_seconds');
  if (!metric) return [];
  const { values } = (await metric.get()) as MetricObjectWithValues<MetricValueWithName<string>>;
  const buckets = new Map<string, { le: number; count: number }[]>();
  for (const v of values) {
    if (v.metricName !== 'toolhost_job_duration_seconds_bucket') continue;
    const type = String(v.labels.type);
    const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
    const list = buckets.get(type) ?? [];
    buckets.set(type, list);
    list.push({ le, count: v.value });
  }
  return [...buckets]
    .map(([type, list]) => {
      list.sort((a, b) => a.le - b.le);
      const count = list.at(-1)?.count ?? 0;
      return { tool: jobToolOf(type)?.name ?? type, count, p50_s: quantile(list, 0.5), p95_s: quantile(list, 0.95) };
    })
    .sort((a, b) => a.tool.localeCompare(b.tool));
}

/**
 * The q-quantile of cumulative histogram buckets, as Prometheus' histogram_quantile estimates it: linear within
 * the bucket the rank falls in; in the +Inf bucket, the largest finite bound.
 */
export function quantile(buckets: readonly { le: number; count: number }[], q: number): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Number.POSITIVE_INFINITY) return prevLe;
      return b.count === prevCount ? b.le : prevLe + ((b.le - prevLe) * (rank - prevCount)) / (b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}
