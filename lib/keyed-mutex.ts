/** Mutual exclusion per key: callers with the same key run one after another, in arrival order. */

/** Per-key async mutex (an in-process chain of promises; no timers, no polling). */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  /** Keys held or waited for; a key nobody holds or waits for keeps no entry. */
  get size(): number {
    return this.#tails.size;
  }

  /** Waits for the key, then returns the function that frees it. */
  async lock(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let unlock!: () => void;
    const mine = new Promise<void>((resolve) => (unlock = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    await previous;
    return () => {
      unlock();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
  }

  /** Runs `fn` holding the key. */
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const unlock = await this.lock(key);
    try {
      return await fn();
    } finally {
      unlock();
    }
  }
}
