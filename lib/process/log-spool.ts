/**
 * Spools one output stream of a command to a file on disk, up to a byte cap, so the full output can be read by
 * offset after the request returned without the supervisor holding it in memory. Writes apply backpressure: the
 * caller pauses its source while the disk catches up.
 */

import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';

/** A capped, append-only log file. */
export class LogSpool {
  readonly #out: WriteStream;
  readonly #max: number;
  readonly #onWritten: () => void;
  #queued = 0;
  #written = 0;
  #dropped = 0;

  /**
   * @param file the log file (created or truncated)
   * @param maxBytes bytes kept; what comes after is counted as dropped
   * @param onWritten called after bytes reached the file (for progress notices)
   */
  constructor(file: string, maxBytes: number, onWritten: () => void) {
    this.#out = createWriteStream(file, { flags: 'w', mode: 0o600 });
    this.#max = maxBytes;
    this.#onWritten = onWritten;
  }

  /** Bytes on disk. */
  get written(): number {
    return this.#written;
  }

  /** Bytes beyond the cap, not kept. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Appends a chunk; false means "pause the source until {@link drained}". */
  write(chunk: Buffer): boolean {
    const room = this.#max - this.#queued;
    if (room <= 0) {
      this.#dropped += chunk.length;
      return true;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#dropped += chunk.length - part.length;
    this.#queued += part.length;
    return this.#out.write(part, () => {
      this.#written += part.length;
      this.#onWritten();
    });
  }

  /** Resolves when the file can take more. */
  async drained(): Promise<void> {
    if (this.#out.writableNeedDrain) await once(this.#out, 'drain');
  }

  #closed: Promise<void> | undefined;

  /** Flushes and closes the file; later calls return the first call's promise. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#out.once('close', () => resolve());
      this.#out.end();
    });
    return this.#closed;
  }
}
