/**
 * The janitor: the actor that evicts working copies from the project cache. It wakes on a jittered schedule
 * (`cache.janitorIntervalS` +-20%, rescheduled after each run so runs never overlap) and evicts, least recently
 * used first:
 *   1. every copy idle longer than `cache.ttlHours`;
 *   2. when `cache.maxBytes` is set and the cache is larger, idle copies until it fits.
 * A copy with queued or running jobs is never evicted. A dirty copy is written back first (ProjectCache.evict);
 * if that fails the copy stays, the failure shows on /health, and it is tried again after `cache.retryS` — as is
 * any other failed save (POST /projects/:id/save) of a copy that is not due for eviction yet.
 * Every run also saves dirty copies last saved more than `cache.autosaveMinutes` ago, in use or not, so a worker
 * that dies loses at most that much work.
 */
import { toToolhostError } from '../lib/errors.js';
import type { Logger } from './logger.js';
import type { ProjectCache } from './projects.js';
import type { LiveConfig } from './reload.js';

/** Dependencies of the janitor. */
export interface JanitorOptions {
  projects: ProjectCache;
  /** The configuration in effect (read at each run, so a reload applies). */
  config: Readonly<LiveConfig>;
  log: Logger;
  /** The clock (epoch ms); tests move it to age projects. */
  now?: () => number;
}

/** What one run did. */
export interface JanitorReport {
  /** Evicted, in order. */
  evicted: string[];
  /** Whose write-back failed (kept, retried later). */
  failed: { project_id: string; code: string; message: string }[];
  /** Due for eviction but kept: jobs arrived, or a failed write-back waits for its retry time. */
  kept: string[];
  /** Saved because their last save was more than cache.autosaveMinutes ago. */
  autosaved: string[];
}

/** Evicts idle working copies. An actor: start(), close(). */
export class Janitor {
  readonly #o: JanitorOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<JanitorReport> | null = null;
  #closed = false;

  constructor(o: JanitorOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  start(): void {
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    const mean = this.#o.config.current.cache.janitorIntervalS * 1000;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.runOnce()
          .catch((err: unknown) => this.#o.log.error({ err: toToolhostError(err).message }, 'janitor run failed'))
          .finally(() => this.#schedule());
      },
      mean * (0.8 + Math.random() * 0.4),
    );
    this.#timer.unref();
  }

  /** Runs the eviction policy now (or joins the run in progress). */
  runOnce(): Promise<JanitorReport> {
    this.#running ??= this.#run().finally(() => (this.#running = null));
    return this.#running;
  }

  async #run(): Promise<JanitorReport> {
    const { cache } = this.#o.config.current;
    const report: JanitorReport = { evicted: [], failed: [], kept: [], autosaved: [] };
    await this.#o.projects.measureDirty();
    const now = this.#now();
    const copies = this.#o.projects.snapshot().sort((a, b) => a.lastAccess - b.lastAccess);
    let total = copies.reduce((n, c) => n + c.sizeBytes, 0);
    const ttlMs = cache.ttlHours * 3_600_000;
    for (const copy of copies) {
      if (this.#closed) break;
      const expired = now - copy.lastAccess > ttlMs;
      const overBudget = cache.maxBytes > 0 && total > cache.maxBytes;
      if (!expired && !overBudget) continue;
      if (copy.busy || (copy.failure && now - copy.failure.lastAttempt < cache.retryS * 1000)) {
        report.kept.push(copy.id);
        continue;
      }
      try {
        if (await this.#o.projects.evict(copy.id, { unusedSince: copy.lastAccess })) {
          report.evicted.push(copy.id);
          total -= copy.sizeBytes;
          this.#o.log.info(
            { project_id: copy.id, reason: expired ? 'idle' : 'cache.maxBytes', idle_s: Math.round((now - copy.lastAccess) / 1000) },
            'evicted working copy',
          );
        } else {
          report.kept.push(copy.id);
        }
      } catch (err) {
        const error = toToolhostError(err);
        if (error.code === 'project_busy') {
          report.kept.push(copy.id);
          continue;
        }
        report.failed.push({ project_id: copy.id, code: error.code, message: error.message });
        this.#o.log.warn({ project_id: copy.id, err: error.message, code: error.code }, 'write-back failed; working copy kept, retried later');
      }
    }
    await this.#retrySaves(report, now, cache.retryS * 1000);
    if (cache.autosaveMinutes > 0) await this.#autosave(report, now, cache.autosaveMinutes * 60_000);
    await this.#collect(now);
    return report;
  }

  #lastCollect = 0;

  /** Deletes stored layers no checkpoint names, every `checkpoints.collectIntervalMinutes` (lib/layers/collect.ts). */
  async #collect(now: number): Promise<void> {
    const every = this.#o.config.current.checkpoints.collectIntervalMinutes * 60_000;
    if (every === 0 || this.#closed || now - this.#lastCollect < every) return;
    this.#lastCollect = now;
    try {
      const done = await this.#o.projects.collect();
      if (done.deleted > 0) this.#o.log.info({ deleted: done.deleted, deleted_bytes: done.deletedBytes, kept: done.kept }, 'collected unreferenced layers');
    } catch (err) {
      this.#o.log.warn({ err: toToolhostError(err).message }, 'layer collection failed; tried again next interval');
    }
  }

  /** Saves dirty copies whose last save is older than `everyMs` (failing ones wait for their retry instead). */
  async #autosave(report: JanitorReport, now: number, everyMs: number): Promise<void> {
    for (const copy of this.#o.projects.snapshot()) {
      if (this.#closed) return;
      if (!copy.dirty || copy.failure || now - copy.lastSave < everyMs) continue;
      try {
        await this.#o.projects.save(copy.id, { as: 'autosave' });
        report.autosaved.push(copy.id);
      } catch (err) {
        const error = toToolhostError(err);
        if (error.code === 'save_conflict') continue;
        report.failed.push({ project_id: copy.id, code: error.code, message: error.message });
        this.#o.log.warn({ project_id: copy.id, err: error.message, code: error.code }, 'autosave failed; retried later');
      }
    }
  }

  /** Tries again the saves that failed at least `retryMs` ago on copies that stay (a failed POST /save included). */
  async #retrySaves(report: JanitorReport, now: number, retryMs: number): Promise<void> {
    const done = new Set([...report.evicted, ...report.failed.map((f) => f.project_id)]);
    for (const copy of this.#o.projects.snapshot()) {
      if (this.#closed) return;
      if (!copy.failure || done.has(copy.id) || now - copy.failure.lastAttempt < retryMs) continue;
      try {
        await this.#o.projects.save(copy.id);
        this.#o.log.info({ project_id: copy.id }, 'write-back succeeded on retry');
      } catch (err) {
        const error = toToolhostError(err);
        if (error.code === 'save_conflict') continue; // saved as a conflict copy: logged where it happened
        report.failed.push({ project_id: copy.id, code: error.code, message: error.message });
        this.#o.log.warn({ project_id: copy.id, err: error.message, code: error.code }, 'write-back failed again; retried later');
      }
    }
  }

  /** Stops the schedule and waits for a run in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => {});
  }
}
