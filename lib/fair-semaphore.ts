/**
 * A counting semaphore that is fair across keys (projects): waiters queue per key and slots are handed out
 * round-robin over the keys that have waiters, with a per-key cap. One project's flood of jobs therefore delays
 * another project's job by at most one slot's turn.
 */
import { ToolhostError } from './errors.js';

/** Gives the slot back; calling it twice is harmless. */
export type Release = () => void;

interface Waiter {
  grant(release: Release): void;
  fail(err: unknown): void;
}

/** Round-robin fair semaphore with a global and a per-key cap. */
export class FairSemaphore {
  #capacity: number;
  #perKey: number;
  #running = 0;
  readonly #runningByKey = new Map<string, number>();
  /** Waiters by key. */
  readonly #waiting = new Map<string, Waiter[]>();
  /** When each key was last granted a slot: the key served least recently goes next (round-robin). */
  readonly #lastGrant = new Map<string, number>();
  #grants = 0;
  #waitingCount = 0;

  constructor(capacity: number, perKey = Number.POSITIVE_INFINITY) {
    this.#capacity = capacity;
    this.#perKey = perKey;
  }

  /** Slots in use. */
  get running(): number {
    return this.#running;
  }

  /** Acquisitions waiting for a slot. */
  get waiting(): number {
    return this.#waitingCount;
  }

  /** Changes the caps; waiters are served at once if room appeared. */
  resize(capacity: number, perKey = this.#perKey): void {
    this.#capacity = capacity;
    this.#perKey = perKey;
    this.#dispatch();
  }

  /** Waits for a slot for `key`. Rejects with the signal's reason when it aborts first. */
  acquire(key: string, signal?: AbortSignal): Promise<Release> {
    return new Promise<Release>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason ?? new ToolhostError('shutting_down', 'cancelled'));
      const onAbort = (): void => {
        const list = this.#waiting.get(key);
        const i = list?.indexOf(waiter) ?? -1;
        if (list && i !== -1) {
          list.splice(i, 1);
          this.#waitingCount--;
          if (list.length === 0) this.#waiting.delete(key);
        }
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        fail: reject,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const list = this.#waiting.get(key);
      if (list) list.push(waiter);
      else this.#waiting.set(key, [waiter]);
      this.#waitingCount++;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#running < this.#capacity && this.#waitingCount > 0) {
      let next: string | undefined;
      let oldest = Number.POSITIVE_INFINITY;
      for (const key of this.#waiting.keys()) {
        if ((this.#runningByKey.get(key) ?? 0) >= this.#perKey) continue;
        const last = this.#lastGrant.get(key) ?? -1;
        if (last < oldest) {
          oldest = last;
          next = key;
        }
      }
      if (next === undefined) return; // every waiting key is at its per-key cap
      const list = this.#waiting.get(next)!;
      const waiter = list.shift()!;
      this.#waitingCount--;
      if (list.length === 0) this.#waiting.delete(next);
      this.#grant(next, waiter);
    }
  }

  #grant(key: string, waiter: Waiter): void {
    this.#running++;
    this.#lastGrant.set(key, this.#grants++);
    this.#runningByKey.set(key, (this.#runningByKey.get(key) ?? 0) + 1);
    let released = false;
    waiter.grant(() => {
      if (released) return;
      released = true;
      this.#running--;
      const n = (this.#runningByKey.get(key) ?? 1) - 1;
      if (n === 0) this.#runningByKey.delete(key);
      else this.#runningByKey.set(key, n);
      // A key with nothing running or waiting needs no place in the round.
      if (n === 0 && !this.#waiting.has(key)) this.#lastGrant.delete(key);
      this.#dispatch();
    });
  }
}
