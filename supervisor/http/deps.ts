/**
 * What the HTTP front needs from the rest of the supervisor: the one type every route module takes. A leaf module
 * (types only), so the parts it names and the routes that read them never import each other.
 */
import type { Config } from '../../config/schema.js';
import type { Containment } from '../../lib/process/containment-types.js';
import type { JobQueue } from '../../lib/queue/job-queue.js';
import type { ProjectStore } from '../../lib/store/project-store.js';
import type { ActiveJobs } from '../active-jobs.js';
import type { CommandJobs } from '../command-jobs.js';
import type { JobsApi } from '../jobs-api.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Pools } from '../pools.js';
import type { ProjectCache } from '../projects.js';
import type { QueuePump } from '../pump.js';
import type { ReloadReport } from '../reload.js';
import type { Sessions } from '../sessions.js';

/** The parts that run jobs (supervisor/worker-role.ts): built on processes with role "worker" or "all" only. */
export interface WorkerParts {
  pump: QueuePump;
  pools: Pools;
  /** The working copies; without them GET /projects answers from {@link AppDeps.store}. */
  projects: ProjectCache;
  /** This process's registry of command jobs. */
  commands: CommandJobs;
  /** Jobs received and not completed, per project. */
  active: ActiveJobs;
  /** The persistent shell sessions on this worker. */
  sessions: Sessions;
}

/** What the HTTP front needs from the rest of the supervisor. */
export interface AppDeps {
  /** The configuration in effect; a reload replaces it, so routes read it per request. */
  readonly config: Config;
  queue: JobQueue;
  /** The project store: what GET /projects reads where there is no cache. */
  store: ProjectStore;
  /** The jobs API: this process's registry, or (Azure queue) the registries of the workers running the commands. */
  jobs: JobsApi;
  metrics: Metrics;
  /** Absent on an api process, which runs no jobs: /health, /metrics and the project routes show it. */
  worker?: WorkerParts | undefined;
  log: Logger;
  startedAt: number;
  /** This process's name among its peers (the distributed queue). */
  nodeId: string;
  /** How commands are contained here, for the authenticated /health. */
  containment: Containment;
  /**
   * The bearer token every request but a bare /health must carry, resolved at start (supervisor/token.ts); null
   * with auth "none". Not read from `config`, whose `token` may be null and which a reload replaces.
   */
  token: string | null;
  /** Re-reads and applies the config file (POST /admin/reload). */
  reload(): Promise<ReloadReport>;
  /** True once shutdown began: new work is refused with 503. */
  closing(): boolean;
}

/** How a call came in, and what the caller may want to know of how it ran. */
export interface ToolCall {
  /** Fires when the caller went away: the wait ends early; a queued job goes on. */
  signal?: AbortSignal | undefined;
  /** X-Request-Id, carried on the job so its log line can be tied to the request's. */
  requestId?: string | undefined;
  /** Set to the worker process that ran the job (distributed queue). */
  worker?: string | undefined;
  /** wait_s of a command whose call gives none, instead of commands.defaultWaitS (MCP waits less than its clients). */
  defaultWaitS?: number | undefined;
  /** Called once a command's job_id answers on the jobs API, before the wait (MCP follows it for progress). */
  onAccepted?: ((jobId: string) => void) | undefined;
}
