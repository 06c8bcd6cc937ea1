/** What the HTTP front needs from the rest of the supervisor: the one type every route module takes. */
import type { Config } from '../../config/schema.js';
import type { Containment } from '../../lib/process/containment-types.js';
import type { JobQueue } from '../../lib/queue/job-queue.js';
import type { CommandJobs } from '../command-jobs.js';
import type { JobsApi } from '../jobs-api.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Pools } from '../pools.js';
import type { ProjectCache } from '../projects.js';
import type { QueuePump } from '../pump.js';
import type { ReloadReport } from '../reload.js';

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
