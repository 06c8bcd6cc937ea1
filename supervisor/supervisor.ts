/**
 * The composition root: builds the parts this process's role needs from the configuration (the worker parts in
 * worker-role.ts, the jobs API in api-role.ts, and what every role shares here), starts them in order and closes
 * them in reverse. The only module that knows all the parts.
 */
import { hostname } from 'node:os';
import type { ConfigSources } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ToolhostError } from '../lib/errors.js';
import { prepareDataDir, resolveContainment } from '../lib/process/containment.js';
import { AzureQueue } from '../lib/queue/azure/azure-queue.js';
import type { JobQueue } from '../lib/queue/job-queue.js';
import { MemoryQueue } from '../lib/queue/memory-queue.js';
import { openStore } from '../lib/store/create-store.js';
import { ReconnectingStore } from '../lib/store/reconnecting-store.js';
import { buildApi } from './api-role.js';
import { createApp } from './http/app.js';
import type { AppDeps } from './http/deps.js';
import { HttpFront } from './http/server.js';
import type { JanitorReport } from './janitor.js';
import { JobRecords } from './jobs-api.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { ConfigReloader, type LiveConfig, type ReloadReport } from './reload.js';
import { resolveToken } from './token.js';
import { buildWorker, type Release } from './worker-role.js';

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
  /** Runs the janitor's eviction policy now (it also runs on its own schedule); `not_on_this_role` on an api process. */
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

/**
 * Builds and starts every part this process's role needs, each before whatever reads it: the live configuration,
 * the token, the store and the queue; the worker parts (role "worker" or "all"); the jobs API (role "api" or
 * "all"); metrics, the reloader and the HTTP front, which every role has.
 */
export async function startSupervisor(configured: Config, log: Logger = createLogger(configured.logLevel), opts: SupervisorOptions = {}): Promise<Supervisor> {
  // Before anything runs: which containment works here (or a refusal), and a data dir other uids cannot read.
  const { config, report: containment } = resolveContainment(configured);
  prepareDataDir(config.dataDir);
  for (const warning of containment.warnings) log.warn({ containment: containment.sandbox }, warning);
  const live: LiveConfig = { current: config };
  const releases: Release[] = [];
  let closing = false;
  let closed: Promise<void> | undefined;
  try {
    // First, so a bad token file stops the start before anything is built.
    const auth = await resolveToken(config, log);
    // An unreachable store does not stop the start: the working copies on disk are served, saves wait for it.
    const store = await openStore(config, { tolerateOutage: true });
    if (store instanceof ReconnectingStore) {
      store.watch(log);
      releases.push(() => store.close());
    }
    const nodeId = config.nodeId ?? `${hostname()}-${process.pid}`;
    const azureQueue = config.queue.backend === 'azure' ? newAzureQueue(config, nodeId, log) : undefined;
    const queue: JobQueue = azureQueue ?? new MemoryQueue(config.queue.maxDepth);
    await queue.start();
    releases.push(() => queue.close());
    const azure = azureQueue && { queue: azureQueue, records: new JobRecords(azureQueue.container, nodeId) };

    const worker = config.role === 'api' ? undefined : await buildWorker({ live, store, queue, azure, log, now: opts.now }, releases);
    // A pool thread's own client saved: the store is back, so the outage shown on /health ends at the next probe, now.
    if (store instanceof ReconnectingStore) worker?.parts.projects.on('saved', () => store.nudge());
    // A worker process takes no tool or jobs requests (app.ts refuses them): it builds no jobs API, the front gets its registry.
    const jobs = worker && config.role === 'worker' ? worker.localJobs : buildApi({ live, nodeId, azure, local: worker?.localJobs, log }).jobs;

    const metrics = new Metrics({ queue, worker: worker?.parts });
    metrics.start();
    releases.push(() => metrics.close());

    const reloader = new ConfigReloader({
      sources: opts.sources,
      // As its sources say it (commands.sandbox unresolved), so a reload compares like with like.
      current: () => ({ ...live.current, commands: { ...live.current.commands, sandbox: configured.commands.sandbox } }) as Config,
      apply: (next) => {
        if (next.logLevel !== live.current.logLevel) log.level = next.logLevel;
        // Containment never changes under a reload: keep the sandbox resolved at start.
        live.current = Object.freeze({ ...next, commands: Object.freeze({ ...next.commands, sandbox: config.commands.sandbox }) }) as Config;
        worker?.reconfigure(live.current);
      },
      closing: () => closing,
      log,
    });
    const deps: AppDeps = {
      get config() {
        return live.current;
      },
      queue,
      store,
      jobs,
      metrics,
      worker: worker?.parts,
      log,
      containment,
      token: auth.token,
      nodeId,
      startedAt: Date.now(),
      closing: () => closing,
      reload: () => reloader.reload(),
    };
    worker?.start();
    const http = new HttpFront(createApp(deps), config.host, config.port);
    const address = await http.start();
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const runs = worker && { threads: config.pool.maxThreads, command_slots: config.commands.maxConcurrent };
    log.info(
      {
        url: `http://${host}:${address.port}`,
        role: config.role,
        node: nodeId,
        queue: config.queue.backend,
        ...runs,
        sandbox: containment.sandbox,
        commands_user: containment.user,
        network: containment.network,
        auth: config.auth,
        token_file: auth.file,
      },
      'toolhost listening',
    );

    const close = async (force: boolean): Promise<void> => {
      closing = true;
      http.stopAccepting();
      await worker?.drain({ force });
      await http.close({ force });
      for (const release of releases.reverse()) await release();
      log.info('toolhost stopped');
    };
    return {
      url: `http://${host}:${address.port}`,
      get config() {
        return live.current;
      },
      log,
      reload: () => reloader.reload(),
      runJanitor: () =>
        worker
          ? worker.runJanitor()
          : Promise.reject(
              new ToolhostError('not_on_this_role', 'this process has role "api" and holds no working copies, so it has no janitor; run it on a worker'),
            ),
      close(opts = {}) {
        if (opts.force && closed) void worker?.drain({ force: true });
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
    deadlineBaseS: azure.deadlineBaseS,
    minBytesPerS: azure.minBytesPerS,
    log,
  });
}
