/**
 * A remote store that outlives its outages: its client is (re)initialized on use, so a store unreachable when the
 * process starts, or lost later, is picked up again by the first call after it is back; and while it is away the
 * outage is known (since when, the last error) for /health. With {@link ReconnectingStore.watch}, a probe with
 * backoff notices the return even when nothing calls.
 *
 * States: `connecting` (no call answered yet) -> `up` | `down`; `up` <-> `down`. A call that fails with
 * `store_unavailable` makes it `down`; any call that succeeds makes it `up`. Other errors (a failed condition, a
 * missing project) say nothing about reachability.
 */
import type { Readable } from 'node:stream';
import type { ArchiveFormat } from '../archive/format.js';
import { type SerializedError, toToolhostError } from '../errors.js';
import type { LoadedArchive, ObjectCondition, ProjectStore, PutCondition, StoredObject, StoredProject } from './project-store.js';

/** What a remote store must offer to be wrapped: the store, its init, and a cheap request that proves it answers. */
export interface RemoteStore extends ProjectStore {
  init(): Promise<void>;
  ping(): Promise<void>;
}

/** An outage as /health shows it. */
export interface StoreOutage {
  /** ISO time of the first failed call of this outage. */
  since: string;
  /** ISO time of the last failed call or probe. */
  last_attempt: string;
  /** Failed calls and probes since it began. */
  attempts: number;
  /** The last one's error. */
  last_error: SerializedError;
}

/** What the probe reports. */
export interface StoreWatchLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

type Mode = 'connecting' | 'up' | 'down';

/** Probe delays while down: 1 s doubling up to 15 s, +-20 % jitter. */
const PROBE_MIN_MS = 1_000;
const PROBE_MAX_MS = 15_000;

/** {@link ProjectStore} over a {@link RemoteStore}, initialized on use and aware of its outages. */
export class ReconnectingStore implements ProjectStore {
  readonly #inner: RemoteStore;
  #mode: Mode = 'connecting';
  #outage: StoreOutage | null = null;
  #init: Promise<void> | undefined;
  #log: StoreWatchLog | undefined;
  #watching = false;
  #probeTimer: NodeJS.Timeout | undefined;
  #probing: Promise<void> | undefined;
  #probeDelay = PROBE_MIN_MS;

  constructor(inner: RemoteStore) {
    this.#inner = inner;
  }

  /** One attempt to reach the store now (its init); rejects as the init does, the outage recorded. */
  async connect(): Promise<void> {
    await this.#use(() => Promise.resolve());
  }

  /** The outage in progress, or null while the store answers (or before any call). */
  outage(): StoreOutage | null {
    return this.#outage && { ...this.#outage };
  }

  /** Probes the store with backoff whenever it is down, until {@link close}; logs when it is lost and back. */
  watch(log: StoreWatchLog): void {
    this.#log = log;
    this.#watching = true;
    if (this.#mode !== 'down') return;
    log.warn({ err: this.#outage?.last_error.message }, 'the project store is unreachable; cached projects are served, saves are retried');
    this.#scheduleProbe();
  }

  /** Something else (a pool thread's own client) reached the store: probe now rather than at the next tick. */
  nudge(): void {
    if (this.#mode !== 'down' || !this.#watching || this.#probing) return;
    clearTimeout(this.#probeTimer);
    this.#probeDelay = PROBE_MIN_MS;
    this.#probe();
  }

  /** Stops probing; waits for a probe in flight. */
  async close(): Promise<void> {
    this.#watching = false;
    clearTimeout(this.#probeTimer);
    await this.#probing;
  }

  list(): Promise<StoredProject[]> {
    return this.#use(() => this.#inner.list());
  }
  stat(id: string): Promise<StoredProject | null> {
    return this.#use(() => this.#inner.stat(id));
  }
  getObject(name: string): Promise<{ body: Buffer; etag: string } | null> {
    return this.#use(() => this.#inner.getObject(name));
  }
  openObject(name: string): Promise<{ stream: Readable; etag: string; size: number } | null> {
    return this.#use(() => this.#inner.openObject(name));
  }
  putObject(name: string, body: Buffer | { file: string }, condition?: ObjectCondition): Promise<StoredObject> {
    return this.#use(() => this.#inner.putObject(name, body, condition));
  }
  deleteObject(name: string, condition?: { ifMatch: string }): Promise<boolean> {
    return this.#use(() => this.#inner.deleteObject(name, condition));
  }
  listObjects(prefix: string): Promise<StoredObject[]> {
    return this.#use(() => this.#inner.listObjects(prefix));
  }
  load(id: string, scratchDir: string): Promise<LoadedArchive> {
    return this.#use(() => this.#inner.load(id, scratchDir));
  }
  put(id: string, format: ArchiveFormat, file: string, condition?: PutCondition): Promise<StoredProject> {
    return this.#use(() => this.#inner.put(id, format, file, condition));
  }
  putConflict(id: string, format: ArchiveFormat, file: string, stamp: string): Promise<string> {
    return this.#use(() => this.#inner.putConflict(id, format, file, stamp));
  }
  delete(id: string): Promise<boolean> {
    return this.#use(() => this.#inner.delete(id));
  }

  /** Runs `call` once the client is initialized (initializing it again if the last try failed). */
  async #use<T>(call: () => Promise<T>): Promise<T> {
    try {
      // Shared by concurrent calls; forgotten when it fails, so the next call tries again.
      this.#init ??= this.#inner.init().catch((err: unknown) => {
        this.#init = undefined;
        throw err;
      });
      await this.#init;
      const value = await call();
      this.#setMode('up');
      return value;
    } catch (err) {
      this.#failed(err);
      throw err;
    }
  }

  #failed(err: unknown): void {
    const e = toToolhostError(err);
    if (e.code !== 'store_unavailable') return;
    const now = new Date().toISOString();
    this.#outage = { since: this.#outage?.since ?? now, last_attempt: now, attempts: (this.#outage?.attempts ?? 0) + 1, last_error: e.toJSON() };
    this.#setMode('down');
  }

  /** The one place the mode changes; every change is allowed, but only a change is logged. */
  #setMode(next: Mode): void {
    const was = this.#mode;
    if (was === next) return;
    this.#mode = next;
    if (next === 'up') {
      if (was === 'down') this.#log?.info({ since: this.#outage?.since, attempts: this.#outage?.attempts }, 'the project store answers again');
      this.#outage = null;
      this.#probeDelay = PROBE_MIN_MS;
      clearTimeout(this.#probeTimer);
      return;
    }
    this.#log?.warn({ err: this.#outage?.last_error.message }, 'the project store is unreachable; cached projects are served, saves are retried');
    if (this.#watching) this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    clearTimeout(this.#probeTimer);
    const jitter = 0.8 + Math.random() * 0.4;
    this.#probeTimer = setTimeout(() => this.#probe(), Math.round(this.#probeDelay * jitter));
    this.#probeTimer.unref();
    this.#probeDelay = Math.min(PROBE_MAX_MS, this.#probeDelay * 2);
  }

  #probe(): void {
    if (this.#probing) return;
    this.#probing = this.#use(() => this.#inner.ping())
      .catch(() => {
        // recorded by #use; the next probe is scheduled below
      })
      .finally(() => {
        this.#probing = undefined;
        if (this.#watching && this.#mode === 'down') this.#scheduleProbe();
      });
  }
}
