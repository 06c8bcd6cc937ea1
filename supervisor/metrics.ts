/**
 * Prometheus metrics (prom-client) for GET /metrics. Each supervisor has its own registry, so several can run in
 * one process (tests). Counters and histograms are fed by the pump's and the project cache's events; gauges are
 * read when scraped. No hooks inside the parts: they only emit. The metrics of running jobs (pools, jobs, cache,
 * write-backs) exist only on a process that has the worker parts; an api process shows its queue and the process
 * defaults.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Job, JobOutcome } from '../lib/jobs.js';
import type { JobQueue } from '../lib/queue/job-queue.js';
import type { Lane } from '../lib/tool.js';
import type { Pools } from './pools.js';
import type { ProjectCache } from './projects.js';
import type { QueuePump } from './pump.js';
import type { Sessions } from './sessions.js';

/** What the metrics observe. */
export interface MetricsSources {
  queue: JobQueue;
  /** The parts that run jobs; without them (an api process) no pool, job, cache or write-back metric exists. */
  worker?: { pump: QueuePump; pools: Pools; projects: ProjectCache; sessions: Sessions } | undefined;
}

/** The worker parts the metrics read. */
type WorkerSources = NonNullable<MetricsSources['worker']>;

/** Latency buckets in seconds: file tools take milliseconds, commands up to hours. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

const LANES: readonly Lane[] = ['files', 'commands'];

/** The supervisor's metrics. An actor: start() subscribes to the events, close() unsubscribes. */
export class Metrics {
  /** The registry GET /metrics renders. */
  readonly registry = new Registry();
  readonly #worker: WorkerMetrics | undefined;

  constructor(s: MetricsSources) {
    // prom-client has no way to stop these: their GC observer and event-loop monitor live as long as the process.
    collectDefaultMetrics({ register: this.registry });
    const { worker } = s;
    new Gauge({
      name: 'toolhost_queue_depth',
      help: 'Jobs accepted and not yet running (queued, or waiting for a project, a lock or a slot).',
      registers: [this.registry],
      collect() {
        this.set(s.queue.depth() + (worker?.pump.waiting() ?? 0));
      },
    });
    this.#worker = worker && new WorkerMetrics(this.registry, worker);
  }

  /** Subscribes to the pump's and the cache's events. */
  start(): void {
    this.#worker?.start();
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /** Unsubscribes; the registry keeps its last values. */
  async close(): Promise<void> {
    this.#worker?.stop();
  }
}

/** The metrics of the parts that run jobs: counters fed by their events, gauges read when scraped. */
class WorkerMetrics {
  readonly #s: WorkerSources;
  readonly #jobs: Counter<'type' | 'outcome'>;
  readonly #durations: Histogram<'type'>;
  readonly #cacheHits: Counter;
  readonly #cacheMisses: Counter;
  readonly #evictions: Counter;
  readonly #saves: Counter;
  readonly #writebackFailures: Counter;
  readonly #conflicts: Counter;
  #unsubscribe: (() => void) | undefined;

  constructor(registry: Registry, s: WorkerSources) {
    this.#s = s;
    const registers = [registry];
    this.#jobs = new Counter({
      name: 'toolhost_jobs_total',
      help: 'Jobs that ended, by type and outcome ("ok" or the error code).',
      labelNames: ['type', 'outcome'],
      registers,
    });
    this.#durations = new Histogram({
      name: 'toolhost_job_duration_seconds',
      help: "Time from a job's receipt by the pump to its end, by type.",
      labelNames: ['type'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'toolhost_pool_threads',
      help: 'Threads alive per pool lane (a pool retired by a reload counts until its last task ends).',
      labelNames: ['lane'],
      registers,
      collect() {
        const { lanes } = s.pools.stats();
        for (const lane of LANES) this.set({ lane }, lanes[lane].threads);
      },
    });
    new Gauge({
      name: 'toolhost_pool_busy',
      help: 'Tasks running per pool lane.',
      labelNames: ['lane'],
      registers,
      collect() {
        const { lanes } = s.pools.stats();
        for (const lane of LANES) this.set({ lane }, lanes[lane].busy);
      },
    });
    new Gauge({
      name: 'toolhost_jobs_running',
      help: 'Jobs running on a pool, by type.',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        for (const [type, n] of Object.entries(s.pump.running().by_type)) this.set({ type }, n);
      },
    });
    new Gauge({
      name: 'toolhost_sessions',
      help: 'Persistent shell sessions alive, and those running an exec.',
      labelNames: ['state'],
      registers,
      collect() {
        const { alive, running } = s.sessions.stats();
        this.set({ state: 'alive' }, alive);
        this.set({ state: 'running' }, running);
      },
    });
    new Gauge({
      name: 'toolhost_commands_running',
      help: 'Shell commands running.',
      registers,
      collect() {
        this.set(s.pump.running().by_type.execute ?? 0);
      },
    });
    this.#cacheHits = new Counter({ name: 'toolhost_cache_hits_total', help: 'Jobs whose project working copy was ready.', registers });
    this.#cacheMisses = new Counter({ name: 'toolhost_cache_misses_total', help: 'Projects extracted from the store on first use.', registers });
    this.#evictions = new Counter({ name: 'toolhost_cache_evictions_total', help: 'Working copies evicted from the project cache.', registers });
    this.#saves = new Counter({ name: 'toolhost_store_writebacks_total', help: 'Working copies written back to the project store.', registers });
    this.#writebackFailures = new Counter({
      name: 'toolhost_store_writeback_failures_total',
      help: 'Failed write-backs of working copies to the project store.',
      registers,
    });
    new Gauge({
      name: 'toolhost_cache_bytes',
      help: 'Bytes of all working copies in the project cache (as last measured).',
      registers,
      collect() {
        this.set(s.projects.cachedBytes());
      },
    });
    this.#conflicts = new Counter({
      name: 'toolhost_store_conflicts_total',
      help: 'Saves that found the stored project changed by another writer and left a conflict copy.',
      registers,
    });
    new Gauge({
      name: 'toolhost_store_writeback_failing',
      help: 'Working copies whose last write-back failed (kept, retried by the janitor).',
      registers,
      collect() {
        this.set(s.projects.failures().length);
      },
    });
  }

  /** Subscribes to the pump's and the cache's events (once). */
  start(): void {
    if (this.#unsubscribe) return;
    const onEnd = (job: Job, outcome: JobOutcome, durationMs: number): void => {
      this.#jobs.inc({ type: job.type, outcome: outcome.ok ? 'ok' : outcome.error.code });
      this.#durations.observe({ type: job.type }, durationMs / 1000);
    };
    const onHit = (): void => this.#cacheHits.inc();
    const onMiss = (): void => this.#cacheMisses.inc();
    const onEvicted = (): void => this.#evictions.inc();
    const onSaved = (): void => this.#saves.inc();
    const onFailed = (): void => this.#writebackFailures.inc();
    const onConflict = (): void => this.#conflicts.inc();
    const { pump, projects } = this.#s;
    pump.on('job:end', onEnd);
    projects.on('hit', onHit).on('miss', onMiss).on('evicted', onEvicted).on('saved', onSaved).on('writeback:failed', onFailed).on('conflict', onConflict);
    this.#unsubscribe = () => {
      pump.off('job:end', onEnd);
      projects
        .off('hit', onHit)
        .off('miss', onMiss)
        .off('evicted', onEvicted)
        .off('saved', onSaved)
        .off('writeback:failed', onFailed)
        .off('conflict', onConflict);
    };
  }

  /** Unsubscribes. */
  stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
