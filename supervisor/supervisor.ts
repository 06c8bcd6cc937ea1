/**
 * The composition root: builds every part from the configuration, starts them in order and closes them in
 * reverse. The only module that knows all the parts.
 */
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { MemoryQueue } from '../lib/queue/memory-queue.js';
import { LocalStore } from '../lib/store/local-store.js';
import { CommandJobs } from './command-jobs.js';
import { createApp } from './http/app.js';
import { HttpFront } from './http/server.js';
import { createLogger, type Logger } from './logger.js';
import { Pools } from './pools.js';
import { ProjectCache } from './projects.js';
import { QueuePump } from './pump.js';

/** A running supervisor. */
export interface Supervisor {
  /** Base URL of the HTTP front, e.g. http://127.0.0.1:8080. */
  url: string;
  config: Config;
  log: Logger;
  /**
   * Graceful shutdown: stop accepting, let in-flight jobs finish for up to shutdown.graceS, kill what is left,
   * release everything in reverse order. `force` skips the grace. A second call returns the first's promise
   * unless it forces.
   */
  close(opts?: { force?: boolean }): Promise<void>;
}

/** Builds and starts every actor. */
export async function startSupervisor(config: Config, log: Logger = createLogger(config.logLevel)): Promise<Supervisor> {
  const releases: (() => Promise<void>)[] = [];
  let closing = false;
  let closed: Promise<void> | undefined;
  try {
    const store = new LocalStore(join(config.dataDir, 'store'));
    await store.init();
    const queue = new MemoryQueue(config.queue.maxDepth);
    await queue.start();
    releases.push(() => queue.close());

    const pools = new Pools(config);
    releases.push(() => pools.close());

    // The pump is built after the cache, but the cache asks it how busy a project is.
    let pump: QueuePump | undefined;
    const projects = new ProjectCache({
      dataDir: config.dataDir,
      store,
      pools,
      maxExtractions: Math.max(1, Math.floor(config.pool.maxThreads / 2)),
      activeJobs: (id) => pump?.activeJobs(id) ?? 0,
    });
    await projects.start();

    const commands = new CommandJobs(config, log);
    await commands.start();
    releases.push(() => commands.close());

    pump = new QueuePump({ config, queue, pools, projects, commands, log });
    pump.start();
    const thePump = pump;

    const app = createApp({ config, queue, pump, pools, projects, commands, log, startedAt: Date.now(), closing: () => closing });
    const http = new HttpFront(app, config.host, config.port);
    const address = await http.start();
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    log.info({ url: `http://${host}:${address.port}`, threads: config.pool.maxThreads, command_slots: config.commands.maxConcurrent }, 'toolhost listening');

    const close = async (force: boolean): Promise<void> => {
      closing = true;
      http.stopAccepting();
      await thePump.close({ force });
      await http.close({ force });
      for (const release of releases.reverse()) await release();
      log.info('toolhost stopped');
    };
    return {
      url: `http://${host}:${address.port}`,
      config,
      log,
      close(opts = {}) {
        if (opts.force && closed) void thePump.close({ force: true });
        closed ??= close(opts.force ?? false);
        return closed;
      },
    };
  } catch (err) {
    for (const release of releases.reverse()) await release().catch(() => {});
    throw err;
  }
}
