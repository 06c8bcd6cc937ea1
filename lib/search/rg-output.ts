/**
 * Reading rg's output (the form lib/search/rg-args.ts asks for): stdout split into records as it streams, holding
 * at most one record and never a huge one whole, and the per-path errors of its stderr.
 */

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

/** The path of a record: the bytes before NUL, less any warning lines rg printed before the record. */
export function recordPath(raw: Buffer): string {
  const s = raw.toString('utf8');
  if (!s.includes('\n')) return s;
  const lines = s.split('\n');
  let i = 0;
  while (i < lines.length - 1 && (lines[i] === '' || RG_STDOUT_WARNING.test(lines[i]!))) i++;
  return lines.slice(i).join('\n');
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

/** rg's per-path errors from its stderr, with paths made project-relative; other lines are not quoted. */
export function pathErrors(stderr: string, toRel: (p: string) => string): string[] {
  const out: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = RG_PATH_ERROR.exec(line);
    if (m) out.push(`${shorten(toRel(m[1]!), 200)}: ${shorten(m[2]!, 200)}`);
    else if (line.startsWith('rg: ')) out.push(shorten(line.slice(4), 400));
  }
  return out;
}
