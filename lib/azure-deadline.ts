/**
 * Client-side deadlines of Azure Storage calls (the project store's Blob calls, the queue's Queue and Blob calls).
 * A call moving `bytes` may take `baseS + bytes / minBytesPerS` seconds, retries included: its AbortSignal is given
 * to the SDK, whose retry policy waits on the same signal, so neither a half-open connection nor a retry outlives
 * the deadline, and no project lock stays held by a dead socket.
 */

/** How long calls may take: the `deadlineBaseS` and `minBytesPerS` of the store.azure / queue.azure settings. */
export interface DeadlineSettings {
  /** Seconds every call may take besides moving its bytes (connection, retries, the service's own time). */
  deadlineBaseS: number;
  /** The slowest transfer rate tolerated, in bytes per second: a call moving N bytes gets N / rate seconds more. */
  minBytesPerS: number;
}

/** Defaults when a caller gives none: 10 s, plus one second per MiB moved. */
export const DEFAULT_DEADLINES: DeadlineSettings = { deadlineBaseS: 10, minBytesPerS: 1024 * 1024 };

/** Milliseconds a call moving `bytes` may take. */
export function deadlineMs(s: DeadlineSettings, bytes = 0): number {
  return Math.ceil(s.deadlineBaseS * 1000 + (Math.max(0, bytes) / s.minBytesPerS) * 1000);
}

/** The reason a {@link CallDeadline}'s signal aborts with. */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
  /** The deadline that passed, in seconds. */
  readonly seconds: number;

  constructor(action: string, ms: number) {
    super(`${action} did not finish within its client-side deadline of ${(ms / 1000).toFixed(1)} s`);
    this.seconds = Math.round(ms / 100) / 10;
  }
}

/**
 * The deadline of one call. Its `signal` goes to the SDK. A download learns its size from the response headers
 * and then {@link CallDeadline.grow}s to it; a listing {@link CallDeadline.renew}s at each item, so only a page that
 * does not come holds it back. {@link CallDeadline.clear} once the call (or its stream) is done.
 */
export class CallDeadline {
  readonly #controller = new AbortController();
  readonly #settings: DeadlineSettings;
  readonly #action: string;
  readonly #started = Date.now();
  #ms: number;
  #timer: NodeJS.Timeout | undefined;

  /** Starts the clock of `action`, moving `bytes` (0 when not known yet). */
  constructor(settings: DeadlineSettings, action: string, bytes = 0) {
    this.#settings = settings;
    this.#action = action;
    this.#ms = deadlineMs(settings, bytes);
    this.#arm(this.#ms);
  }

  /** What the SDK call takes as `abortSignal`. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** True once the deadline passed (the call was aborted for it). */
  get expired(): boolean {
    return this.#controller.signal.reason instanceof DeadlineExceeded;
  }

  /** The reason of an expired deadline. */
  get reason(): DeadlineExceeded | undefined {
    const r: unknown = this.#controller.signal.reason;
    return r instanceof DeadlineExceeded ? r : undefined;
  }

  /** The call turned out to move `bytes`: it may take base + bytes / rate from its start. */
  grow(bytes: number): void {
    if (this.#controller.signal.aborted) return;
    this.#ms = deadlineMs(this.#settings, bytes);
    this.#arm(Math.max(0, this.#started + this.#ms - Date.now()));
  }

  /** Progress (a listing's next item): the base deadline counts again from now. */
  renew(): void {
    if (this.#controller.signal.aborted || !this.#timer) return;
    this.#timer.refresh();
  }

  /** Stops the clock: the call is over. */
  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    clearTimeout(this.#timer);
    const total = this.#ms;
    this.#timer = setTimeout(() => this.#controller.abort(new DeadlineExceeded(this.#action, total)), ms);
    // A deadline never keeps the process alive on its own.
    this.#timer.unref();
  }
}

/**
 * Runs `call` under a fresh deadline of `action` moving `bytes`; the deadline is cleared when it settles. `onError`
 * turns a failure (with the deadline, to tell an expiry from any other abort) into what the caller throws.
 */
export async function withDeadline<T>(
  settings: DeadlineSettings,
  action: string,
  bytes: number,
  call: (signal: AbortSignal, deadline: CallDeadline) => Promise<T>,
  onError: (err: unknown, deadline: CallDeadline) => unknown = (err) => err,
): Promise<T> {
  const deadline = new CallDeadline(settings, action, bytes);
  try {
    return await call(deadline.signal, deadline);
  } catch (err) {
    throw onError(err, deadline);
  } finally {
    deadline.clear();
  }
}

/** The abort signal of one call moving `bytes` (0 when small): `AbortSignal.timeout` of its deadline. */
export type DeadlineSignal = (bytes?: number) => AbortSignal;

/** The {@link DeadlineSignal} of `settings` ({@link DEFAULT_DEADLINES} when none). */
export function deadlineSignals(settings: DeadlineSettings = DEFAULT_DEADLINES): DeadlineSignal {
  return (bytes = 0) => AbortSignal.timeout(deadlineMs(settings, bytes));
}
