/**
 * Bounded capture of a stream: keeps the first and the last `cap / 2` bytes and counts what was dropped between,
 * so a command that prints a gigabyte costs at most `cap` bytes of memory.
 */

import { isUtf8 } from 'node:buffer';

/** What a capture yields when the stream ended. */
export interface CapturedOutput {
  /** Head, then tail, decoded as UTF-8 (invalid bytes replaced with U+FFFD). */
  text: string;
  /** True when bytes were dropped between head and tail. */
  truncated: boolean;
  /** Bytes dropped between head and tail. */
  omittedBytes: number;
  /** All bytes the stream produced. */
  totalBytes: number;
  /** True when the kept bytes are not valid UTF-8 (the text shows U+FFFD for them). */
  invalidUtf8: boolean;
}

/** Keeps the head and the tail of a byte stream within a fixed budget. */
export class OutputBuffer {
  readonly #headCap: number;
  readonly #tailCap: number;
  readonly #head: Buffer[] = [];
  #headBytes = 0;
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #total = 0;

  /** @param cap bytes kept in all: half for the head, half for the tail. */
  constructor(cap: number) {
    this.#headCap = Math.ceil(cap / 2);
    this.#tailCap = Math.floor(cap / 2);
  }

  /** Adds a chunk. */
  push(chunk: Buffer): void {
    this.#total += chunk.length;
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
    while (this.#tailBytes - (this.#tail[0]?.length ?? 0) >= this.#tailCap) {
      this.#tailBytes -= this.#tail.shift()!.length;
    }
  }

  /** The captured head and tail. */
  result(): CapturedOutput {
    let tail = Buffer.concat(this.#tail);
    if (tail.length > this.#tailCap) tail = tail.subarray(tail.length - this.#tailCap);
    const head = Buffer.concat(this.#head);
    const omittedBytes = this.#total - head.length - tail.length;
    if (omittedBytes === 0) {
      const all = Buffer.concat([head, tail]);
      return { text: all.toString('utf8'), truncated: false, omittedBytes: 0, totalBytes: this.#total, invalidUtf8: !isUtf8(all) };
    }
    // Cut at character boundaries so a split multi-byte character does not turn into replacement characters.
    const h = head.subarray(0, utf8Boundary(head, head.length));
    const t = tail.subarray(utf8StartBoundary(tail));
    const dropped = this.#total - h.length - t.length;
    return {
      text: `${h.toString('utf8')}\n[... ${dropped} bytes omitted ...]\n${t.toString('utf8')}`,
      truncated: true,
      omittedBytes: dropped,
      totalBytes: this.#total,
      invalidUtf8: !isUtf8(h) || !isUtf8(t),
    };
  }
}

/**
 * Largest index <= end that does not split a UTF-8 sequence: an incomplete but so far valid sequence at the end
 * is held back. Bytes that can never become valid (0xF8-0xFF, stray continuation bytes) are not held back, so
 * binary output cannot stall a reader waiting for a character that will never complete.
 */
export function utf8Boundary(buf: Buffer, end: number): number {
  let i = end;
  // Step back over continuation bytes (10xxxxxx) to the lead byte, then drop the lead if its sequence is cut.
  while (i > 0 && i > end - 3 && (buf[i - 1]! & 0xc0) === 0x80) i--;
  if (i === 0) return end;
  const lead = buf[i - 1]!;
  if (lead < 0xc0 || lead >= 0xf8) return end;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
  return end - (i - 1) >= need ? end : i - 1;
}

/** First index that starts a UTF-8 sequence (skips at most 3 continuation bytes). */
export function utf8StartBoundary(buf: Buffer): number {
  let i = 0;
  while (i < 3 && i < buf.length && (buf[i]! & 0xc0) === 0x80) i++;
  return i;
}
