/**
 * Cutting text to a budget of characters on line boundaries, head and tail. Every character we answer lands in a
 * model's context, so long output is cut to a budget; a cut that falls mid-line leaves a model guessing what the
 * line was, so cuts fall after a newline wherever one lies in the half of the budget nearest the cut.
 *
 * The cutters work on bytes (UTF-8) because what they cut is paged back by byte offset (a command's log): the
 * answer says where the left-out part starts, and that offset must be exact. Characters are counted as JavaScript
 * counts them (UTF-16 code units, what `string.length` says), bytes that are not UTF-8 as the U+FFFD they decode
 * to; a cut never splits a multi-byte character.
 */
import { isAscii } from 'node:buffer';

const NL = 0x0a;

/** Characters of `buf` decoded as UTF-8. */
export function charLength(buf: Buffer): number {
  return buf.toString('utf8').length;
}

/** Newlines in `buf` (a byte loop: as fast as memchr on dense lines, and no call per line). */
export function countNewlines(buf: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < buf.length; i++) if (buf[i] === NL) n++;
  return n;
}

/**
 * End of the longest prefix of `buf` that decodes to at most `maxChars` characters and does not split a
 * character. Bisects on the decoded length, which never shrinks as bytes are added.
 */
export function prefixWithin(buf: Buffer, maxChars: number): number {
  if (maxChars <= 0) return 0;
  // A character takes at most 3 bytes per UTF-16 unit (an invalid byte run decodes to one U+FFFD per <= 3 bytes).
  let lo = Math.min(buf.length, maxChars); // bytes >= characters, so this many always fit
  let hi = Math.min(buf.length, maxChars * 3);
  // Most output is ASCII: a byte a character, no decoding (the bisection decodes up to 3 x maxChars bytes ~20 times).
  if (isAscii(buf.subarray(0, hi))) return lo;
  if (charLength(buf.subarray(0, hi)) <= maxChars) return utf8Boundary(buf, hi);
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (charLength(buf.subarray(0, mid)) <= maxChars) lo = mid;
    else hi = mid;
  }
  return utf8Boundary(buf, lo);
}

/** Start of the longest suffix of `buf` that decodes to at most `maxChars` characters and starts a character. */
export function suffixWithin(buf: Buffer, maxChars: number): number {
  if (maxChars <= 0) return buf.length;
  const len = buf.length;
  let hi = len - Math.min(len, maxChars); // fits
  let lo = len - Math.min(len, maxChars * 3);
  if (isAscii(buf.subarray(lo))) return hi;
  const startAt = (i: number): number => i + utf8StartBoundary(buf.subarray(i));
  if (charLength(buf.subarray(startAt(lo))) <= maxChars) return startAt(lo);
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (charLength(buf.subarray(startAt(mid))) <= maxChars) hi = mid;
    else lo = mid;
  }
  return startAt(hi);
}

/** Where a cut fell, in bytes of the buffer, and the characters kept. */
export interface Cut {
  /** Byte index: the end of a head, the start of a tail. */
  at: number;
  chars: number;
  /** True when the cut falls on a line boundary (or keeps the whole buffer). */
  onLine: boolean;
}

/**
 * The head of `buf` within `maxChars`: up to the last newline that fits, unless that would keep less than half
 * of what fits (a very long line), then mid-line at a character boundary. All of `buf` when it fits.
 */
export function headCut(buf: Buffer, maxChars: number): Cut {
  const end = prefixWithin(buf, maxChars);
  if (end === buf.length) return { at: end, chars: charLength(buf), onLine: true };
  const nl = end > 0 ? buf.lastIndexOf(NL, end - 1) : -1;
  if (nl >= 0) {
    const chars = charLength(buf.subarray(0, nl + 1));
    if (chars * 2 >= maxChars) return { at: nl + 1, chars, onLine: true };
  }
  return { at: end, chars: charLength(buf.subarray(0, end)), onLine: false };
}

/**
 * The tail of `buf` within `maxChars`: from the first line start that fits, unless that would keep less than
 * half of what fits, then mid-line at a character boundary. All of `buf` when it fits.
 */
export function tailCut(buf: Buffer, maxChars: number): Cut {
  const start = suffixWithin(buf, maxChars);
  if (start === 0) return { at: 0, chars: charLength(buf), onLine: true };
  if (buf[start - 1] === NL) return { at: start, chars: charLength(buf.subarray(start)), onLine: true };
  const nl = buf.indexOf(NL, start);
  if (nl >= 0 && nl + 1 < buf.length) {
    const chars = charLength(buf.subarray(nl + 1));
    if (chars * 2 >= maxChars) return { at: nl + 1, chars, onLine: true };
  }
  return { at: start, chars: charLength(buf.subarray(start)), onLine: false };
}

/**
 * Shares of `budget` for parts that need `needs` characters each (Infinity: more than the whole budget): every
 * part gets what it needs if all fit; otherwise equal shares, and a part that needs less than its share gives
 * the rest to the others.
 */
export function splitBudget(budget: number, needs: readonly number[]): number[] {
  const shares = needs.map(() => 0);
  let left = budget;
  let open = needs.map((_, i) => i);
  // Hand out in rounds: whoever needs no more than an equal share of what is left gets it all.
  for (;;) {
    const each = Math.floor(left / Math.max(1, open.length));
    const small = open.filter((i) => (needs[i] ?? 0) <= each);
    if (small.length === 0) break;
    for (const i of small) {
      shares[i] = needs[i] ?? 0;
      left -= shares[i] ?? 0;
    }
    open = open.filter((i) => !small.includes(i));
    if (open.length === 0) return shares;
  }
  open.forEach((i, k) => {
    shares[i] = Math.floor(left / open.length) + (k < left % open.length ? 1 : 0);
  });
  return shares;
}

/** What {@link cutText} kept of a string. */
export interface CutText {
  head: string;
  tail: string;
  /** Lines left out (newlines in the left-out part). */
  omittedLines: number;
  omittedChars: number;
}

/**
 * A string cut to head and tail within `maxChars` on line boundaries (for text that is not paged back by byte
 * offset: a list, a search answer). Null when it fits whole.
 */
export function cutText(text: string, maxChars: number): CutText | null {
  if (text.length <= maxChars) return null;
  const buf = Buffer.from(text, 'utf8');
  const h = headCut(buf, Math.floor(maxChars / 2));
  const rest = buf.subarray(h.at);
  const t = tailCut(rest, maxChars - h.chars);
  const omitted = rest.subarray(0, t.at);
  const head = buf.subarray(0, h.at).toString('utf8');
  const tail = rest.subarray(t.at).toString('utf8');
  return { head, tail, omittedLines: countNewlines(omitted), omittedChars: text.length - head.length - tail.length };
}

/** A byte count for people: "812 bytes", "15.3 kB", "1.9 MB" (powers of 1000, as `ls --si`). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} bytes`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)} kB`;
  if (n < 1_000_000_000) return `${(n / 1_000_000).toFixed(1)} MB`;
  return `${(n / 1_000_000_000).toFixed(1)} GB`;
}

/** A count with thousands separators: 299,412. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * Largest index <= end that does not split a UTF-8 sequence: an incomplete but so far valid sequence at the end
 * is held back. Bytes that can never become valid (0xF8-0xFF, stray continuation bytes) are not held back, so
 * binary output cannot stall a reader waiting for a character that will never complete.
 */
export function utf8Boundary(buf: Uint8Array, end: number): number {
  let i = end;
  // Step back over continuation bytes (10xxxxxx) to the lead byte, then drop the lead if its sequence is cut.
  while (i > 0 && i > end - 3 && ((buf[i - 1] ?? 0) & 0xc0) === 0x80) i--;
  if (i === 0) return end;
  const lead = buf[i - 1] ?? 0;
  if (lead < 0xc0 || lead >= 0xf8) return end;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
  return end - (i - 1) >= need ? end : i - 1;
}

/** First index that starts a UTF-8 sequence (skips at most 3 continuation bytes). */
export function utf8StartBoundary(buf: Uint8Array): number {
  let i = 0;
  while (i < 3 && i < buf.length && ((buf[i] ?? 0) & 0xc0) === 0x80) i++;
  return i;
}
