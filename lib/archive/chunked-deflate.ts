/**
 * Deflate made one chunk at a time with synchronous zlib calls, shared by the two archive writers
 * (`zip-writer.ts`, `tar-writer.ts`).
 */
import { constants, deflateRawSync } from 'node:zlib';

/** zlib's default level, which `zip` and `gzip` use too. */
const DEFLATE_LEVEL = 6;
/** Deflate's window: how much of the previous chunk the next one may refer back to. */
const WINDOW_BYTES = 32 * 1024;

/**
 * A raw deflate stream made one chunk at a time, each with a synchronous zlib call. Every chunk but the last ends
 * in a sync flush (on a byte boundary, not final) and the next one starts with the previous chunk's last 32 KiB
 * as its dictionary, so the concatenated output is one valid stream compressed almost as well as in one go (the
 * way pigz splits its work). A streaming zlib object would run on libuv's shared pool instead.
 */
export class ChunkedDeflate {
  #dictionary: Buffer | null = null;
  #finished = false;

  /** True once the last chunk was pushed. */
  get finished(): boolean {
    return this.#finished;
  }

  /** The compressed bytes of `chunk` (which may be reused afterwards); `last` ends the stream. */
  push(chunk: Buffer, last: boolean): Buffer {
    if (this.#finished) throw new Error('ChunkedDeflate: push after the last chunk');
    const packed = deflateRawSync(chunk, {
      level: DEFLATE_LEVEL,
      finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
      // One output buffer in the common case; zlib's default of 16 KiB would concatenate many.
      chunkSize: Math.max(64, Math.min(chunk.length + 1024, 1024 * 1024 + 1024)),
      ...(this.#dictionary === null ? {} : { dictionary: this.#dictionary }),
    });
    this.#finished = last;
    if (!last) {
      const tail = chunk.subarray(Math.max(0, chunk.length - WINDOW_BYTES));
      // A copy: the chunk's memory belongs to the caller. Too short a tail is topped up from the old dictionary.
      this.#dictionary =
        tail.length === WINDOW_BYTES || this.#dictionary === null ? Buffer.from(tail) : Buffer.concat([this.#dictionary, tail]).subarray(-WINDOW_BYTES);
    }
    return packed;
  }
}
