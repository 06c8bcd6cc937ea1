/**
 * Reading rg's output (the form lib/search/rg-args.ts asks for): stdout split into records as it streams, holding
 * at most one record and never a huge one whole, and the per-path errors of its stderr.
 */

import { PathOrderedTop } from './path-order.js';
import { MAX_LISTED } from './types.js';

/** A path longer than this is not a path: output that does not parse, dropped (and counted). */
const MAX_PATH_BYTES = 64 * 1024;

/** One record of rg's output: a line of a file, or a line too long to keep (`body` null, `head` its start). */
export interface RgRecord {
  /** The path bytes, or null when they did not parse. */
  path: Buffer | null;
  body: Buffer | null;
  head: Buffer;
}

/**
 * Splits rg's output into records (see rgArgs) as chunks arrive, holding at most one record: a record over
 * `maxBody` bytes is dropped but for its first bytes. What follows the last record (warnings, the stats block) is
 * kept as {@link RgOutput.tail}.
 */
export class RgOutput {
  readonly #maxBody: number;
  #inBody = false;
  #parts: Buffer[] = [];
  #size = 0;
  #head: Buffer | null = null;
  #path: Buffer | null = null;

  constructor(maxBody: number) {
    this.#maxBody = maxBody;
  }

  /** The records completed by `chunk`. */
  push(chunk: Buffer): RgRecord[] {
    const out: RgRecord[] = [];
    let from = 0;
    while (from < chunk.length) {
      const at = chunk.indexOf(this.#inBody ? 10 : 0, from);
      const piece = chunk.subarray(from, at === -1 ? chunk.length : at);
      this.#append(piece);
      if (at === -1) break;
      from = at + 1;
      const field = this.#take();
      if (!this.#inBody) {
        this.#path = field.whole;
        this.#inBody = true;
      } else {
        out.push({ path: this.#path, body: field.whole, head: field.head });
        this.#inBody = false;
      }
    }
    return out;
  }

  /** The text after the last record, once rg's stdout ended (empty if rg was stopped inside a record). */
  get tail(): string {
    return this.#inBody || this.#head ? '' : Buffer.concat(this.#parts).toString('utf8');
  }

  #append(piece: Buffer): void {
    if (piece.length === 0) return;
    const max = this.#inBody ? this.#maxBody : MAX_PATH_BYTES;
    if (this.#head) return; // dropping: only the head is kept
    if (this.#size + piece.length <= max) {
      this.#parts.push(piece);
      this.#size += piece.length;
      return;
    }
    this.#head = Buffer.concat([...this.#parts, piece.subarray(0, 64)]).subarray(0, 64);
    this.#parts = [];
    this.#size = 0;
  }

  #take(): { whole: Buffer | null; head: Buffer } {
    const whole = this.#head ? null : this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts);
    const head = this.#head ?? whole!.subarray(0, 64);
    this.#parts = [];
    this.#size = 0;
    this.#head = null;
    return { whole, head };
  }
}

// Lines rg prints to stdout that are not records; they end up before the next record's path.
const RG_STDOUT_WARNING = /: (?:WARNING: stopped searching binary file|binary file matches) /;

/**
 * The path of a record: the bytes before NUL, less any warning lines rg printed before the record. Bytes, not text:
 * they are the key of the path order (path-order.ts), and a name that is not UTF-8 must keep its own place in it.
 */
export function recordPath(raw: Buffer): Buffer {
  if (!raw.includes(10)) return raw;
  let from = 0;
  for (let at = raw.indexOf(10); at !== -1; at = raw.indexOf(10, from)) {
    // latin1 maps each byte to one character, so the ASCII of the warning matches as in the UTF-8 text.
    const line = raw.subarray(from, at);
    if (line.length > 0 && !RG_STDOUT_WARNING.test(line.toString('latin1'))) break;
    from = at + 1;
  }
  return raw.subarray(from);
}

/** True when the text after the last record holds rg's stats block: rg got to the end of its search. */
export function finished(tail: string): boolean {
  return /(?:^|\n)\d+ files searched\n/.test(tail);
}

/** `s` cut to about `max` characters, keeping its start and end (a path's end names the file). */
function shorten(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max / 2 - 1)}…${s.slice(-(max / 2))}`;
}

/** rg's message about one path it could not read: `rg: PATH: MESSAGE (os error N)`. */
const RG_PATH_ERROR = /^rg: (.+): ([^:]+ \(os error \d+\))$/;

/** A longer line of stderr is cut to this before it is parsed. */
const MAX_STDERR_LINE_BYTES = 64 * 1024;

/**
 * rg's stderr as it streams: its start kept as text (what a failure is explained with), and its messages about
 * paths it could not read counted, the first {@link MAX_LISTED} in path order kept (rg's threads print them in any
 * order), paths project-relative. Other `rg: ` lines are listed after them; lines that are neither are not quoted.
 */
export class RgErrors {
  /** The first `maxText` bytes or so of stderr. */
  text = '';
  /** The messages seen, listed or not. */
  count = 0;
  readonly #maxText: number;
  readonly #toRel: (p: string) => string;
  readonly #listed = new PathOrderedTop<string>(MAX_LISTED);
  #line: Buffer[] = [];
  #lineBytes = 0;

  constructor(toRel: (p: string) => string, maxText: number) {
    this.#toRel = toRel;
    this.#maxText = maxText;
  }

  /** Folds in a chunk of stderr. */
  push(chunk: Buffer): void {
    if (this.text.length < this.#maxText) this.text += chunk.toString('utf8');
    let from = 0;
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, from)) {
      this.#append(chunk.subarray(from, at));
      this.#endLine();
      from = at + 1;
    }
    this.#append(chunk.subarray(from));
  }

  /** The first {@link MAX_LISTED} messages, once stderr ended. */
  listed(): string[] {
    if (this.#lineBytes > 0) this.#endLine();
    return this.#listed.items();
  }

  #append(piece: Buffer): void {
    const room = MAX_STDERR_LINE_BYTES - this.#lineBytes;
    if (room <= 0 || piece.length === 0) return;
    const kept = piece.subarray(0, room);
    this.#line.push(kept);
    this.#lineBytes += kept.length;
  }

  #endLine(): void {
    const line = Buffer.concat(this.#line).toString('utf8');
    this.#line = [];
    this.#lineBytes = 0;
    const m = RG_PATH_ERROR.exec(line);
    if (m) {
      const rel = this.#toRel(m[1]!);
      this.count++;
      this.#listed.add(Buffer.from(rel, 'utf8'), [`${shorten(rel, 200)}: ${shorten(m[2]!, 200)}`]);
    } else if (line.startsWith('rg: ')) {
      this.count++;
      // 0xFF starts no UTF-8 character: these sort after every path, among themselves by their text.
      this.#listed.add(Buffer.concat([AFTER_PATHS, Buffer.from(line, 'utf8')]), [shorten(line.slice(4), 400)]);
    }
  }
}

const AFTER_PATHS = Buffer.from([0xff]);
