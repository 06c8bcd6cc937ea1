/**
 * The composition root: builds every part from the configuration, starts them in order and closes them in
 * reverse. The only module that knows all the parts.
 */
import type { ConfigSources } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { hostname } from 'node:os';
import { AzureQueue } from '../lib/queue/azure/azure-queue.js';
import type { JobQueue } from '../lib/queue/job-queue.js';
import { MemoryQueue } from '../lib/queue/memory-queue.js';
import { prepareDataDir, resolveContainment } from '../lib/process/containment.js';
import { openStore } from '../lib/store/create-store.js';
import { CommandJobs } from './command-jobs.js';
import { ActiveJobs } from './active-jobs.js';
import { createApp } from './http/app.js';
import type { AppDeps } from './http/deps.js';
import { HttpFront } from './http/server.js';
import { Janitor, type JanitorReport } from './janitor.js';
import { JobRecords, type JobsApi, LocalJobs, RemoteJobs } from './jobs-api.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { FILE_LANE_PER_THREAD, Pools } from './pools.js';
import { ProjectCache } from './projects.js';
import { QueuePump } from './pump.js';
import { ConfigReloader, type ReloadReport } from './reload.js';
import { resolveToken } from './token.js';

/** A running supervisor. */
export interface Supervisor {
  /** Base URL of the HTTP front, e.g. http://127.0.0.1:8080. */
  url: string;
  /** The configuration in effect (a reload replaces it). */
  readonly config: Config;
  log: Logger;
  /**
   * Re-reads the configuration from the sources it was started with and applies what can change live (pool
   * sizes, command slots, handler limits) without dropping in-flight jobs. Throws `invalid_config` and keeps the
   * configuration in effect when the file is bad.
   */
  reload(): Promise<ReloadReport>;
  /** Runs the janitor's eviction policy now (it also runs on its own schedule). */
  runJanitor(): Promise<JanitorReport>;
  /**
   * Graceful shutdown: stop accepting, let in-flight jobs finish for up to shutdown.graceS, kill what is left,
   * release everything in reverse order. `force` skips the grace. A second call returns the first's promise
   * unless it forces.
   */
  close(opts?: { force?: boolean }): Promise<void>;
}

/** Options of {@link startSupervisor}. */
export interface SupervisorOptions {
  /** Where `config` was loaded from, for reloads; without it the supervisor cannot reload. */
  sources?: ConfigSources | undefined;
  /** The clock of the cache and the janitor (epoch ms); tests move it to age projects. */
  now?: () => number;
}

/** Builds and starts every actor. */
export async function startSupervisor(configured: Config, log: Logger = createLogger(configured.logLevel), opts: SupervisorOptions = {}): Promise<Supervisor> {
  // Before anything runs: which containment works here (or a refusal), and a data dir other uids cannot read.
  const { config, report: containment } = resolveContainment(configured);
  prepareDataDir(config.dataDir);
  for (const warning of containment.warnings) log.warn({ containment: containment.sandbox }, warning);
  /** The config as its sources say it (commands.sandbox unresolved), so a reload compares like with like. */
  const asConfigured = (c: Config): Config => ({ ...c, commands: { ...c.commands, sandbox: configured.commands.sandbox } }) as Config;
  const releases: (() => Promise<void>)[] = [];
  let closing = false;
  let closed: Promise<void> | undefined;
  try {
    // First, so a bad token file stops the start before anything is built.
    const auth = await resolveToken(config, log);
    const store = await openStore(config);
    const nodeId = config.nodeId ?? `${hostname()}-${process.pid}`;
    const worker = config.role !== 'api';
    const azure = config.queue.backend === 'azure' ? newAzureQueue(config, nodeId, log) : undefined;
    const queue: JobQueue = azure ?? new MemoryQueue(config.queue.maxDepth);
    await queue.start();
    releases.push(() => queue.close());

    // An api process runs no jobs: its pools stay at one thread each (they exist so /health and metrics read alike).
    const pools = new Pools(worker ? config : { ...config, pool: { ...config.pool, maxThreads: 1 }, commands: { ...config.commands, threads: 1 } });
    releases.push(() => pools.close());

    const active = new ActiveJobs();
    const projects = new ProjectCache({
      dataDir: config.dataDir,
      store,
      pools,
      maxExtractions: Math.max(1, Math.floor(config.pool.maxThreads / 2)),
      activeJobs: (id) => active.count(id),
      exclude: () => deps.config.store.exclude,
      now: opts.now,
    });
    await projects.start();
    projects.on('saved', (id, skipped) => {
      if (skipped.length > 0) log.warn({ project_id: id, skipped }, 'saved without symlinks that lead outside the project');
    });
    projects.on('conflict', (id, conflictBlob) => {
      log.warn({ project_id: id, conflict_blob: conflictBlob }, 'the stored project changed under its working copy (another writer); the copy was saved beside it');
    });
    // Runs before the pools close (releases run in reverse): dirty copies are packed on the pool.
    releases.push(async () => {
      for (const { id, error } of await projects.saveAll()) {
        log.error({ project_id: id, code: error.code, err: error.message }, 'write-back at shutdown failed; the copy stays dirty and is saved after the next start');
      }
      await projects.close();
    });

    const commands = new CommandJobs(config, log);
    await commands.start();
    releases.push(() => commands.close());
    const localJobs = new LocalJobs(commands);
    let jobs: JobsApi = localJobs;

    const pump = new QueuePump({
      config,
      queue,
      pools,
      projects,
      commands,
      active,
      log,
      // A worker on a shared queue takes what it can run soon and leaves the rest to its peers.
      maxInflight: azure ? config.commands.maxConcurrent + config.pool.maxThreads * FILE_LANE_PER_THREAD : undefined,
    });
    if (azure) {
      const records = new JobRecords(azure.container, nodeId);
      jobs = new RemoteJobs({ queue: azure, records, nodeId, local: worker ? localJobs : undefined, config: () => deps.config, log });
      if (worker) wireWorker(azure, records, { pump, active, projects, commands, localJobs, log });
    }
    if (worker) pump.start();

    const janitor = new Janitor({ projects, config: () => deps.config, log, now: opts.now });
    releases.push(() => janitor.close());

    const metrics = new Metrics({ queue, pump, pools, projects });
    metrics.start();
    releases.push(() => metrics.close());

    const reloader = new ConfigReloader({
      sources: opts.sources,
      current: () => asConfigured(deps.config),
      apply: (next) => {
        if (next.logLevel !== deps.config.logLevel) log.level = next.logLevel;
        // Containment never changes under a reload: keep the sandbox resolved at start.
        const resolved = Object.freeze({ ...next, commands: Object.freeze({ ...next.commands, sandbox: config.commands.sandbox }) }) as Config;
        deps.config = resolved;
        pump.resize(resolved);
        pools.reconfigure(resolved);
      },
      closing: () => closing,
      log,
    });
    const deps: AppDeps = { config, queue, pump, pools, projects, commands, jobs, metrics, log, containment, token: auth.token, nodeId, startedAt: Date.now(), closing: () => closing, reload: () => reloader.reload() };
    if (worker) janitor.start();
    const app = createApp(deps);
    const http = new HttpFront(app, config.host, config.port);
    const address = await http.start();
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    log.info({ url: `http://${host}:${address.port}`, role: config.role, node: nodeId, queue: config.queue.backend, threads: config.pool.maxThreads, command_slots: config.commands.maxConcurrent, sandbox: containment.sandbox, commands_user: containment.user, network: containment.network, auth: config.auth, token_file: auth.file }, 'toolhost listening');

    const close = async (force: boolean): Promise<void> => {
      closing = true;
      http.stopAccepting();
      await pump.close({ force });
      await http.close({ force });
      for (const release of releases.reverse()) await release();
      log.info('toolhost stopped');
    };
    return {
      url: `http://${host}:${address.port}`,
      get config() {
        return deps.config;
      },
      log,
      reload: () => reloader.reload(),
      runJanitor: () => janitor.runOnce(),
      close(opts = {}) {
        if (opts.force && closed) void pump.close({ force: true });
        closed ??= close(opts.force ?? false);
        return closed;
      },
    };
  } catch (err) {
    for (const release of releases.reverse()) await release().catch(() => {});
    throw err;
  }
}

function newAzureQueue(config: Config, nodeId: string, log: Logger): AzureQueue {
  const { azure } = config.queue;
  return new AzureQueue({
    connectionString: azure.connectionString!,
    prefix: azure.prefix,
    nodeId,
    api: config.role !== 'worker',
    worker: config.role !== 'api',
    maxOutstanding: config.queue.maxDepth,
    maxDequeueCount: config.queue.maxDequeueCount,
    visibilityS: azure.visibilityS,
    leaseS: azure.leaseS,
    pollMinMs: azure.pollMinMs,
    pollMaxMs: azure.pollMaxMs,
    log,
  });
}

/**
 * A worker on the Azure queue: it answers calls for the commands it runs, keeps their records, gives a project's
 * lease up once its copy is evicted, and drops a copy whose lease another worker took.
 */
function wireWorker(
  azure: AzureQueue,
  records: JobRecords,
  w: { pump: QueuePump; active: ActiveJobs; projects: ProjectCache; commands: CommandJobs; localJobs: LocalJobs; log: Logger },
): void {
  const warn = (what: string) => (err: unknown) => w.log.warn({ err: String(err) }, what);
  azure.setHooks({
    call: (op, args) => w.localJobs.answer(op, args),
    leaseLost: (id) => {
      w.log.error({ project_id: id }, 'another worker took this project\'s lease; the working copy is saved (as a conflict copy if the store moved on) and dropped');
      void w.projects.evict(id).catch(warn('could not drop a project whose lease was lost'));
    },
  });
  w.pump.on('job:received', (job) => {
    if (w.commands.has(job.id)) void records.write(job, azure.nodeId).catch(warn('could not write a command job record'));
  });
  w.pump.on('job:end', (job, outcome) => {
    // A job of a project that does not exist took its lease for nothing; nothing will evict it, so let it go.
    if (!outcome.ok && outcome.error.code === 'project_not_found' && w.active.count(job.projectId) <= 1) void azure.leases.release(job.projectId);
    if (!w.commands.has(job.id)) return;
    void w.commands
      .view(job.id, 'snapshot')
      .then((view) => records.ended(job, view))
      .catch(warn('could not write a command job record'));
  });
  w.projects.on('evicted', (id) => {
    if (w.active.count(id) === 0) void azure.leases.release(id);
  });
}
