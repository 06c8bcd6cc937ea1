/**
 * The worker role: the parts that run jobs. The two pools, the project cache, the command-job registry, the queue
 * pump and the janitor, built in that order from what the composition root shares (the live configuration, the
 * store, the queue), and on the Azure queue wired to it (calls from api processes, job records, project leases).
 * Processes with role "worker" or "all" build it; an api process builds none of it.
 */
import type { Config } from '../config/schema.js';
import type { CommandView } from '../handlers/command-view.js';
import type { AzureQueue } from '../lib/queue/azure/azure-queue.js';
import type { JobQueue } from '../lib/queue/job-queue.js';
import type { ProjectStore } from '../lib/store/project-store.js';
import { ActiveJobs } from './active-jobs.js';
import { CommandJobs } from './command-jobs.js';
import type { WorkerParts } from './http/deps.js';
import { Janitor, type JanitorReport } from './janitor.js';
import { type JobRecords, LocalJobs } from './jobs-api.js';
import type { Logger } from './logger.js';
import { FILE_LANE_PER_THREAD, Pools } from './pools.js';
import { ProjectCache } from './projects.js';
import { QueuePump } from './pump.js';
import type { LiveConfig } from './reload.js';
import { Sessions } from './sessions.js';

/** Releases a resource; the composition root runs them in reverse order of acquisition. */
export type Release = () => Promise<void>;

/** The Azure queue and the job records in its container: what processes sharing the queue meet through. */
export interface AzureWiring {
  queue: AzureQueue;
  records: JobRecords;
}

/** What the worker parts are built from. */
export interface WorkerInputs {
  /** The configuration in effect; the cache reads store.exclude and the janitor its schedule from it. */
  live: LiveConfig;
  store: ProjectStore;
  queue: JobQueue;
  /** Set when the queue is shared with other processes. */
  azure: AzureWiring | undefined;
  log: Logger;
  /** The clock of the cache and the janitor (epoch ms). */
  now: (() => number) | undefined;
}

/** A built worker: its parts, and what the composition root does with them. */
export interface Worker {
  /** What the HTTP front and the metrics read. */
  parts: WorkerParts;
  /** The jobs API over this process's registry (the api side of role "all" answers from it). */
  localJobs: LocalJobs;
  /** Starts taking jobs off the queue and the janitor's schedule. */
  start(): void;
  /** Applies a reloaded configuration: lane sizes, new pools. */
  reconfigure(next: Config): void;
  /** Stops intake and lets in-flight jobs finish (up to shutdown.graceS; none with `force`). A second call joins the first. */
  drain(opts: { force: boolean }): Promise<void>;
  /** Runs the janitor's eviction policy now. */
  runJanitor(): Promise<JanitorReport>;
}

/**
 * Builds (and starts, where starting takes no work from anyone: the cache's folders, the registry's sweeper) the
 * worker parts, pushing each one's release onto `releases` as it is acquired.
 */
export async function buildWorker(i: WorkerInputs, releases: Release[]): Promise<Worker> {
  const { live, log } = i;
  const config = live.current;
  const pools = new Pools(config);
  releases.push(() => pools.close());

  const commands = new CommandJobs(config, log, () => live.current.budgets);
  await commands.start();
  releases.push(() => commands.close());
  const localJobs = new LocalJobs(commands);

  const sessions = new Sessions({ config: () => live.current, pools, cancelJob: (id) => commands.cancel(id), log, now: i.now });

  const active = new ActiveJobs();
  const projects = new ProjectCache({
    dataDir: config.dataDir,
    store: i.store,
    pools,
    maxExtractions: Math.max(1, Math.floor(config.pool.maxThreads / 2)),
    activeJobs: (id) => active.count(id),
    exclude: () => live.current.store.exclude,
    checkpoints: () => live.current.checkpoints,
    now: i.now,
    // A session lives in its project's working copy: it ends when the copy goes (eviction, replacement, deletion).
    endLiving: (id) => sessions.endProject(id),
  });
  await projects.start();
  projects.on('saved', (id, skipped) => {
    if (skipped.length > 0) log.warn({ project_id: id, skipped }, 'saved without symlinks that lead outside the project');
  });
  projects.on('conflict', (id, conflictBlob) => {
    log.warn(
      { project_id: id, conflict_blob: conflictBlob },
      'the stored project changed under its working copy (another writer); the copy was saved beside it',
    );
  });
  // Runs before the pools close (releases run in reverse): dirty copies are packed on the pool.
  releases.push(async () => {
    for (const { id, error } of await projects.saveAll()) {
      log.error(
        { project_id: id, code: error.code, err: error.message },
        'write-back at shutdown failed; the copy stays dirty and is saved after the next start',
      );
    }
    await projects.close();
  });
  // Runs before the final write-back: no shell runs in a copy while it is packed.
  releases.push(() => sessions.close());

  const pump = new QueuePump({
    config,
    queue: i.queue,
    pools,
    projects,
    commands,
    sessions,
    active,
    log,
    // A worker on a shared queue takes what it can run soon and leaves the rest to its peers.
    maxInflight: i.azure ? config.commands.maxConcurrent + config.pool.maxThreads * FILE_LANE_PER_THREAD : undefined,
  });
  // A normal shutdown drains the pump before anything is released; this one ends it when the start failed later.
  releases.push(() => pump.close({ force: true }));
  if (i.azure) wireWorker(i.azure, { pump, active, projects, commands, localJobs, log });

  const janitor = new Janitor({ projects, config: live, log, now: i.now });
  releases.push(() => janitor.close());

  return {
    parts: { pump, pools, projects, commands, active, sessions },
    localJobs,
    start() {
      pump.start();
      janitor.start();
      sessions.start();
    },
    reconfigure(next) {
      pump.resize(next);
      pools.reconfigure(next);
    },
    drain: (opts) => pump.close(opts),
    runJanitor: () => janitor.runOnce(),
  };
}

/**
 * A worker on the Azure queue: it answers calls for the commands it runs, keeps their records, gives a project's
 * lease up once its copy is evicted, and drops a copy whose lease another worker took.
 */
function wireWorker(
  azure: AzureWiring,
  w: { pump: QueuePump; active: ActiveJobs; projects: ProjectCache; commands: CommandJobs; localJobs: LocalJobs; log: Logger },
): void {
  const { queue, records } = azure;
  const warn = (what: string) => (err: unknown) => w.log.warn({ err: String(err) }, what);
  queue.setHooks({
    call: (op, args) => w.localJobs.answer(op, args),
    leaseLost: (id) => {
      w.log.error(
        { project_id: id },
        "another worker took this project's lease; the working copy is saved (as a conflict copy if the store moved on) and dropped",
      );
      void w.projects.evict(id).catch(warn('could not drop a project whose lease was lost'));
    },
  });
  w.pump.on('job:received', (job) => {
    if (w.commands.has(job.id)) void records.write(job, queue.nodeId).catch(warn('could not write a command job record'));
  });
  w.pump.on('job:end', (job, outcome) => {
    // A job of a project that does not exist took its lease for nothing; nothing will evict it, so let it go.
    if (!outcome.ok && outcome.error.code === 'project_not_found' && w.active.count(job.projectId) <= 1) void queue.leases.release(job.projectId);
    if (!w.commands.has(job.id)) return;
    // A command's outcome is its final view already (made from the output its thread held, with no log read);
    // only a command that failed to run needs one made from its record.
    const final = outcome.ok ? Promise.resolve(outcome.value as CommandView) : w.commands.view(job.id, 'snapshot');
    void final.then((view) => records.ended(job, view)).catch(warn('could not write a command job record'));
  });
  w.projects.on('evicted', (id) => {
    if (w.active.count(id) === 0) void queue.leases.release(id);
  });
}
