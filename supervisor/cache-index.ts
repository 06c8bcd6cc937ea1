/**
 * The persisted index of the project cache: for every working copy, where it came from (format, source ETag),
 * whether it may hold unsaved work (dirty), and when it was last used and saved. It lives in
 * `<dataDir>/cache-index.json` and survives a restart, so a restarted supervisor still knows what is dirty and
 * saves it rather than losing it.
 *
 * Writes are atomic (temp file, then rename), synced and serialized; a change that guards unsaved work (a project turning
 * dirty, a save, an eviction) is written before the caller goes on, while last-access times are written lazily
 * (losing a few seconds of them in a crash costs nothing but an earlier eviction).
 */
import { randomUUID } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode } from '../lib/errors.js';
import type { StoredFormat } from '../lib/store/project-store.js';

/** What the index records of one working copy. */
export interface IndexedProject {
  /** How the store holds the project: a plain archive, or layers (then sourceEtag is the manifest's). */
  format: StoredFormat;
  /** ETag of the stored archive this copy was extracted from or last saved as; null when unknown. */
  sourceEtag: string | null;
  /** Epoch ms. */
  materializedAt: number;
  /** Epoch ms of the last job on the project. */
  lastAccess: number;
  /** Something may have changed since the copy was extracted or saved. */
  dirty: boolean;
  /** Epoch ms of the last successful save, or null. */
  lastSave: number | null;
  /** Bytes of the working copy when last measured. */
  sizeBytes: number;
}

const FILE_NAME = 'cache-index.json';
const VERSION = 1;
/** Longest a last-access change waits before it is written. */
const LAZY_FLUSH_MS = 5_000;

/** Reads and writes the index file. */
export class CacheIndex {
  readonly #file: string;
  #snapshot: () => Record<string, IndexedProject> = () => ({});
  /** The write in progress; flushes asked for, and the last one known to be on disk. */
  #writing: Promise<void> | null = null;
  #requested = 0;
  #written = 0;
  #lazy: NodeJS.Timeout | null = null;

  constructor(dataDir: string) {
    this.#file = join(dataDir, FILE_NAME);
  }

  /** Reads the index; an absent file is an empty index. A corrupt one is an error: guessing could lose work. */
  async load(): Promise<Map<string, IndexedProject>> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return new Map();
      throw err;
    }
    let parsed: { version?: unknown; projects?: Record<string, IndexedProject> };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (err) {
      throw new Error(
        `${this.#file} is not valid JSON (${(err as Error).message}); it records which working copies hold unsaved work: repair it, or move it away and every cached copy is then kept as dirty with an unknown source (saved as a conflict copy if the store has the project)`,
      );
    }
    if (parsed.version !== VERSION || typeof parsed.projects !== 'object' || parsed.projects === null) {
      throw new Error(`${this.#file}: not a cache index of version ${VERSION}; move it away to start (cached copies are then kept as dirty)`);
    }
    return new Map(Object.entries(parsed.projects));
  }

  /** Where writes take their content from (called at write time, so a write always has the latest state). */
  source(snapshot: () => Record<string, IndexedProject>): void {
    this.#snapshot = snapshot;
  }

  /** Writes the current state now (after any write in progress); resolves once it is on disk. */
  async flush(): Promise<void> {
    if (this.#lazy) {
      clearTimeout(this.#lazy);
      this.#lazy = null;
    }
    const wanted = ++this.#requested;
    // A write that started before this call may have missed its change: wait for it, then write again, unless a
    // write that started after this call already covered it.
    while (this.#written < wanted) {
      if (this.#writing) {
        await this.#writing.catch(() => {});
        continue;
      }
      const covers = this.#requested;
      this.#writing = this.#write()
        .then(() => {
          this.#written = Math.max(this.#written, covers);
        })
        .finally(() => (this.#writing = null));
      await this.#writing;
    }
  }

  /** Writes the current state within a few seconds (for last-access times). */
  flushSoon(): void {
    this.#lazy ??= setTimeout(() => {
      this.#lazy = null;
      this.flush().catch(() => {
        // the next flush retries; the janitor's and the guarded writes surface real failures
      });
    }, LAZY_FLUSH_MS);
    this.#lazy.unref();
  }

  async #write(): Promise<void> {
    const tmp = `${this.#file}.${randomUUID()}.tmp`;
    try {
      // Synced, file then folder: "dirty" must outlive a power cut, not only a crash of this process.
      // 0600: it lists every project, and commands (other uids) may pass through the data dir.
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(JSON.stringify({ version: VERSION, projects: this.#snapshot() }));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.#file);
      const dir = await open(dirname(this.#file), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Writes what is pending and stops the lazy timer. */
  async close(): Promise<void> {
    await this.flush();
  }
}
