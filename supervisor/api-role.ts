/**
 * The api role: what a process that takes tool and jobs requests needs beyond the HTTP front every role has, which
 * is the jobs API. On the Azure queue it finds each command through its record and asks the worker running it
 * (RemoteJobs); on one machine (role "all", the embedded queue) it is the local registry. It builds no pools, no
 * project cache and no registry of its own: GET /projects reads the store, jobs run on workers.
 */
import { ToolhostError } from '../lib/errors.js';
import type { AzureQueue } from '../lib/queue/azure/azure-queue.js';
import { type JobRecords, type JobsApi, type LocalJobs, RemoteJobs } from './jobs-api.js';
import type { Logger } from './logger.js';
import type { LiveConfig } from './reload.js';

/** What the api parts are built from. */
export interface ApiInputs {
  /** The configuration in effect (jobs.retentionMinutes is read per request). */
  live: LiveConfig;
  nodeId: string;
  /** Set when the queue is shared with worker processes. */
  azure: { queue: AzureQueue; records: JobRecords } | undefined;
  /** This process's registry when it is a worker too (role "all"): its own commands are answered here. */
  local: LocalJobs | undefined;
  log: Logger;
}

/** A built api side. */
export interface Api {
  jobs: JobsApi;
}

/** Builds the jobs API of this process. */
export function buildApi(i: ApiInputs): Api {
  if (i.azure) {
    const { live } = i;
    return {
      jobs: new RemoteJobs({ queue: i.azure.queue, records: i.azure.records, nodeId: i.nodeId, local: i.local, config: () => live.current, log: i.log }),
    };
  }
  // config/load.ts refuses role "api" without the Azure queue; a Config built by hand could still ask for it.
  if (!i.local) throw new ToolhostError('invalid_config', 'role "api" needs queue.backend "azure": api and worker processes meet only through a shared queue');
  return { jobs: i.local };
}
