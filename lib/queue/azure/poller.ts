/**
 * Adaptive polling: poll again at once while messages flow, double the delay on every empty poll up to a
 * ceiling, with +-20% jitter so many processes do not poll in step. Anyone expecting news soon (a request just
 * sent) resets it to the floor.
 */
export class Backoff {
  #delay: number;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    this.#delay = minMs;
  }

  /** The delay before the next poll, after a poll that found `found` messages. */
  next(found: number): number {
    this.#delay = found > 0 ? 0 : Math.min(this.maxMs, Math.max(this.minMs, this.#delay * 2));
    return this.#delay * (0.8 + Math.random() * 0.4);
  }

  /** News is expected: poll fast again. */
  reset(): void {
    this.#delay = this.minMs;
  }
}

/** Sleeps `ms`, or until `wake` is called or `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal, onWake: (wake: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    onWake(done);
  });
}
