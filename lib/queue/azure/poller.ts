/**
 * Adaptive polling: poll again at once while messages flow, double the delay on every empty poll up to a
 * ceiling, with jitter so many processes do not poll in step. For {@link WARM_MS} after the last message the
 * delay stays under {@link WARM_CAP_MS}: an agent's next tool call usually follows its last within seconds.
 * Anyone expecting news soon (a request just sent) resets it to the floor.
 */
export class Backoff {
  #delay: number;
  #lastFound = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    this.#delay = minMs;
  }

  /**
   * The delay before the next poll, after a poll that found `found` messages of the `asked` it asked for. A full
   * batch is followed at once; a partial one after the floor, so a steady flow is taken in batches instead of a
   * request per message. `expected`: the poll was made because this process sent something to the queue.
   */
  next(found: number, asked = 1, expected = false): number {
    const now = Date.now();
    // Messages this process was told of (it sent them) say nothing of others to come: the queue does not turn warm.
    if (found > 0 && !expected) this.#lastFound = now;
    if (found >= asked || (found > 0 && !expected)) {
      this.#delay = 0;
      return found >= asked ? 0 : this.minMs;
    }
    // An empty poll, or a partial batch of what this process was told of: the backoff goes on.
    this.#delay = Math.min(this.maxMs, Math.max(this.minMs, this.#delay * 2));
    const warm = now - this.#lastFound < WARM_MS;
    if (warm && this.#delay > WARM_CAP_MS) return Math.max(this.minMs, WARM_CAP_MS) * (0.8 + Math.random() * 0.4);
    // At the ceiling, jitter only lengthens the delay: an idle process never polls more often than once per maxMs.
    if (this.#delay >= this.maxMs) return this.maxMs * (1 + Math.random() * 0.3);
    return this.#delay * (0.8 + Math.random() * 0.4);
  }

  /** News is expected: poll fast again. */
  reset(): void {
    this.#delay = this.minMs;
  }

  /** Nothing is expected soon: the next empty poll waits the longest delay. */
  slow(): void {
    this.#delay = this.maxMs;
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
