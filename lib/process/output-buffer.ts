/**
 * Bounded capture of a stream: keeps the first and the last `cap / 2` bytes and counts what was dropped between,
 * so a command that prints a gigabyte costs at most `cap` bytes of memory. The head ends and the tail starts on a
 * line boundary where a newline lies in the half of each nearest the cut, so what is kept is whole lines.
 */

import { countNewlines, utf8Boundary, utf8StartBoundary } from '../budget.js';

export { utf8Boundary, utf8StartBoundary };

/** What a capture yields when the stream ended. */
export interface CapturedOutput {
  /** The first bytes of the stream: all of it when nothing was dropped (then `tail` is empty). */
  head: Buffer;
  /** The last bytes of the stream, after the dropped ones. */
  tail: Buffer;
  /** True when bytes were dropped between head and tail. */
  truncated: boolean;
  /** Bytes dropped between head and tail. */
  omittedBytes: number;
  /** All bytes the stream produced. */
  totalBytes: number;
  /** Newlines in all the stream produced (the kept ones and the dropped ones). */
  newlines: number;
}

const NL = 0x0a;

/** Keeps the head and the tail of a byte stream within a fixed budget. */
export class OutputBuffer {
  readonly #headCap: number;
  readonly #tailCap: number;
  readonly #head: Buffer[] = [];
  #headBytes = 0;
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #total = 0;
  #newlines = 0;

  /** @param cap bytes kept in all: half for the head, half for the tail. */
  constructor(cap: number) {
    this.#headCap = Math.ceil(cap / 2);
    this.#tailCap = Math.floor(cap / 2);
  }

  /** Adds a chunk. */
  push(chunk: Buffer): void {
    this.#total += chunk.length;
    this.#newlines += countNewlines(chunk);
    if (this.#headBytes < this.#headCap) {
      const take = Math.min(chunk.length, this.#headCap - this.#headBytes);
      this.#head.push(chunk.subarray(0, take));
      this.#headBytes += take;
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    if (this.#tailCap === 0) return;
    if (chunk.length >= this.#tailCap) {
      // Copy so a huge chunk's backing memory is not retained.
      this.#tail = [Buffer.from(chunk.subarray(chunk.length - this.#tailCap))];
      this.#tailBytes = this.#tailCap;
      return;
    }
    this.#tail.push(chunk);
    this.#tailBytes += chunk.length;
    for (let first = this.#tail[0]; first && this.#tailBytes - first.length >= this.#tailCap; first = this.#tail[0]) {
      this.#tailBytes -= first.length;
      this.#tail.shift();
    }
  }

  /** The captured head and tail. */
  result(): CapturedOutput {
    let tail = Buffer.concat(this.#tail);
    if (tail.length > this.#tailCap) tail = tail.subarray(tail.length - this.#tailCap);
    const head = Buffer.concat(this.#head);
    const base = { totalBytes: this.#total, newlines: this.#newlines };
    if (this.#total === head.length + tail.length)
      return { ...base, head: Buffer.concat([head, tail]), tail: Buffer.alloc(0), truncated: false, omittedBytes: 0 };
    // Cut after a newline in the head's second half, before one in the tail's first half; else at a character
    // boundary, so a split multi-byte character does not turn into replacement characters.
    const nl = head.lastIndexOf(NL);
    const h = head.subarray(0, nl >= 0 && (nl + 1) * 2 >= head.length ? nl + 1 : utf8Boundary(head, head.length));
    const first = tail.indexOf(NL);
    const t = tail.subarray(first >= 0 && (first + 1) * 2 <= tail.length ? first + 1 : utf8StartBoundary(tail));
    return { ...base, head: h, tail: t, truncated: true, omittedBytes: this.#total - h.length - t.length };
  }
}
