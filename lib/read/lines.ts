/**
 * The lines file_read returns, taken from a file's bytes as they stream: a window of lines, each cut at
 * `lineChars`, the window ended early once the model's text (numbered, see numbered.ts) would pass `chars` or the
 * content would pass `bytes`. Memory stays bounded by the window, whatever the file: a 5 MB line keeps only the
 * bytes that can still be shown of it. The whole file is still scanned, to count its lines.
 */
import { cutChars, numberedCost } from './numbered.js';

/** Which lines, and the budgets that bound them. */
export interface LineWindowOptions {
  /** First line (1-based). */
  first: number;
  /** Last line asked for (Infinity: to the end). */
  last: number;
  /** Longest line shown, in UTF-16 code units. */
  lineChars: number;
  /** Most characters of the model's numbered text, lines and their numbers together. */
  chars: number;
  /** Most bytes of raw content. */
  bytes: number;
}

/** One line as returned. */
export interface ShownLine {
  n: number;
  /** The line's text without its LF (a CR stays), possibly cut. */
  text: string;
  /** True when the file's line ends in LF. */
  lf: boolean;
  cut: boolean;
}

/** What a window holds once the file has been read to its end. */
export interface LineWindow {
  lines: ShownLine[];
  totalLines: number;
  /** True when a budget ended the window before `last` (or before the end of the file). */
  stoppedEarly: boolean;
}

/** Collects a {@link LineWindow} from chunks of a file, in order. */
export class LineWindowReader {
  readonly #o: LineWindowOptions;
  /** Bytes of a line kept at most: enough for `lineChars` code points, whatever their encoding. */
  readonly #keepBytes: number;
  readonly lines: ShownLine[] = [];
  #line = 1; // number of the line the next byte belongs to
  #parts: Buffer[] = [];
  #kept = 0; // bytes of the current line in #parts
  #whole = true; // false once bytes of the current line were dropped
  #chars = 0;
  #bytes = 0;
  #stopped = false;
  #pending = false; // the current line has bytes not yet ended by LF
  #sawBytes = false;

  constructor(o: LineWindowOptions) {
    this.#o = o;
    this.#keepBytes = 4 * o.lineChars;
  }

  /** Folds the next chunk of the file in. */
  push(chunk: Buffer): void {
    if (chunk.length > 0) this.#sawBytes = true;
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      const end = nl === -1 ? chunk.length : nl;
      if (this.#wanted()) this.#keep(chunk.subarray(pos, end));
      else if (end > pos) this.#pending = true;
      if (nl === -1) return;
      if (this.#wanted()) this.#end(true);
      this.#pending = false;
      this.#line++;
      pos = nl + 1;
    }
  }

  /** The window, once every chunk was pushed. */
  finish(): LineWindow {
    const lastHasNoLf = this.#pending || this.#kept > 0 || !this.#whole;
    if (lastHasNoLf && this.#wanted()) this.#end(false);
    const totalLines = !this.#sawBytes ? 0 : lastHasNoLf ? this.#line : this.#line - 1;
    const { last } = this.#o;
    const lastShown = this.lines.at(-1)?.n ?? this.#o.first - 1;
    const stoppedEarly = this.#stopped && lastShown < Math.min(last, totalLines);
    return { lines: this.lines, totalLines, stoppedEarly };
  }

  #wanted(): boolean {
    return !this.#stopped && this.#line >= this.#o.first && this.#line <= this.#o.last;
  }

  #keep(piece: Buffer): void {
    if (piece.length === 0) return;
    this.#pending = true;
    const room = this.#keepBytes - this.#kept;
    if (piece.length > room) this.#whole = false;
    if (room <= 0) return;
    const kept = piece.length > room ? Buffer.from(piece.subarray(0, room)) : piece;
    this.#parts.push(kept);
    this.#kept += kept.length;
  }

  /** Ends the current (wanted) line: cut it to the budgets, or stop the window before it. */
  #end(lf: boolean): void {
    const o = this.#o;
    const raw = this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts);
    this.#parts = [];
    this.#kept = 0;
    let text = raw.toString('utf8');
    let cut = !this.#whole || text.length > o.lineChars;
    this.#whole = true;
    if (cut) text = cutChars(text, o.lineChars);
    const n = this.#line;
    let cost = numberedCost(n, text, cut);
    let bytes = Buffer.byteLength(text) + (lf ? 1 : 0);
    if (this.#chars + cost > o.chars || this.#bytes + bytes > o.bytes) {
      if (this.lines.length > 0) {
        this.#stopped = true;
        return;
      }
      // The first line alone is over a budget: show what fits of it, so the answer is never empty.
      const room = Math.max(0, Math.min(o.chars - numberedCost(n, '', true), o.bytes - 1));
      text = cutChars(text, room);
      while (Buffer.byteLength(text) + 1 > o.bytes && text.length > 0) text = cutChars(text, text.length - 1);
      cut = true;
      cost = numberedCost(n, text, cut);
      bytes = Buffer.byteLength(text) + (lf ? 1 : 0);
      this.#stopped = true;
    }
    this.#chars += cost;
    this.#bytes += bytes;
    this.lines.push({ n, text, lf, cut });
  }
}
