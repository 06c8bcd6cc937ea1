/**
 * Adaptive polling: poll again at once while messages flow, double the delay on every empty poll up to a
 * ceiling, with +-20% jitter so many processes do not poll in step. For {@link WARM_MS} after the last message
 * the delay stays under {@link WARM_CAP_MS}: an agent's next tool call usually follows its last within seconds.
 * Anyone expecting news soon (a request just sent) resets it to the floor.
 */
export class Backoff {
  #delay: number;
  #lastFound = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    this.#delay = minMs;
  }

  /** The delay before the next poll, after a poll that found `found` messages. */
  next(found: number): number {
    const now = Date.now();
    if (found > 0) this.#lastFound = now;
    this.#delay = found > 0 ? 0 : Math.min(this.maxMs, Math.max(this.minMs, this.#delay * 2));
    const delay = now - this.#lastFound < WARM_MS ? Math.min(this.#delay, Math.max(this.minMs, WARM_CAP_MS)) : this.#delay;
    return delay * (0.8 + Math.random() * 0.4);
  }

  /** News is expected: poll fast again. */
  reset(): void {
    this.#delay = this.minMs;
  }
}

/** How long a queue counts as warm after its last message. */
export const WARM_MS = 10_000;
/** Longest delay between polls of a warm queue. */
export const WARM_CAP_MS = 50;

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
