/**
 * Folds rg's records into the answer's matches: each matching line with its context lines, long lines counted
 * instead of kept, files the ignore rules leave out passed over. It keeps the first max_results matches (or files)
 * in path order, whatever order the files come in, and only counts the rest, so the answer can say how many there
 * are; it asks for a stop at {@link COUNT_CAP} matching lines.
 */
import type { MatchFilter } from './match-filter.js';
import { PathOrderedTop } from './path-order.js';
import { type RgRecord, recordPath } from './rg-output.js';
import { COUNT_CAP, LEAD_CHARS, MAX_LINE_CHARS, MAX_LISTED, type SearchFile, type SearchMatch } from './types.js';

const ELLIPSIS = '…';
const PLACEHOLDER_MATCH = '[Omitted long matching line]';
const PLACEHOLDER_CONTEXT = '[Omitted long context line]';
// rg prints the count variant when it knows the column (--column).
const PLACEHOLDER_MATCH_RE = /^\[Omitted long (?:matching line|line with \d+ matches?)\]$/;

/** What a {@link MatchCollector} keeps. */
export interface CollectorOptions {
  /** Context lines kept before and after each match. */
  context: number;
  /** Most matches kept (0 with output "files"). */
  maxResults: number;
  /** Most files listed with their counts (0 unless output is "files"). */
  maxFiles: number;
  /** The second look at each file rg reports, or null to keep all. */
  filter: MatchFilter | null;
  /** The project-relative path of a file target: every record is in it. */
  fixedPath: string | null;
  /** rg's path of a file -> project-relative path. */
  toRel(p: string): string;
}

/** What a run collected, in path order (see {@link MatchCollector.finish}). */
export interface Collected {
  /** The first max_results matches. */
  matches: SearchMatch[];
  /** With output "files": the first files with matches, and their counts. */
  files: SearchFile[];
  /** Where the first {@link MAX_LISTED} skipped long lines are. */
  longLines: { path: string; line: number }[];
  /** Matching lines (or files) left out because max_results was reached. */
  overflow: number;
}

/**
 * Collects the matches of one rg run, record by record. A file's records come together, in line order; files come
 * in any order (rg searches in parallel), and what is kept is what comes first in path order (path-order.ts), so the
 * answer is the same whatever order rg's threads finished the files in.
 */
export class MatchCollector {
  /** Matching lines too long to keep. */
  skippedLong = 0;
  /** Matching lines seen in files the filter keeps, long ones included. */
  total = 0;
  /** Files with a matching line. */
  totalFiles = 0;
  /** Records seen. */
  records = 0;
  readonly #o: CollectorOptions;
  readonly #matches: PathOrderedTop<SearchMatch>;
  readonly #files: PathOrderedTop<SearchFile>;
  readonly #long = new PathOrderedTop<{ path: string; line: number }>(MAX_LISTED);
  /** Matching lines short enough to list. */
  #listable = 0;
  #full = false;
  // State of the current file: its path (rg's bytes, the sort key), whether it survives the ignore filter, how many
  // of its matches can be among the first max_results, its last `context` lines, the matches that are still
  // collecting after-lines, and what it adds to the answer.
  #rawPath: Buffer | null = null;
  #path = '';
  #kept = true;
  #room = 0;
  #longRoom = 0;
  #recent: { line: number; text: string }[] = [];
  #open: SearchMatch[] = [];
  #fileMatches: SearchMatch[] = [];
  #fileLong: { path: string; line: number }[] = [];
  /** The current file's entry for output "files", once it has a matching line. */
  #file: SearchFile | null = null;

  constructor(o: CollectorOptions) {
    this.#o = o;
    this.#matches = new PathOrderedTop(o.maxResults);
    this.#files = new PathOrderedTop(o.maxFiles);
  }

  /** True once {@link COUNT_CAP} matching lines were counted: the search can stop, its total a lower bound. */
  get full(): boolean {
    return this.#full;
  }

  /** Folds one record in. */
  async add(r: RgRecord): Promise<void> {
    this.records++;
    const raw = r.path === null ? UNPARSED : recordPath(r.path);
    // Each record whose path did not parse counts as a file of its own, as it always has.
    if (r.path === null || this.#rawPath === null || !raw.equals(this.#rawPath)) await this.#startFile(raw, r.path === null);
    if (!this.#kept) return;
    const bytes = r.body ?? r.head;
    let i = 0;
    while (i < bytes.length && bytes[i]! >= 48 && bytes[i]! <= 57) i++;
    const n = Number(bytes.subarray(0, i).toString('latin1'));
    const isMatch = bytes[i] === 58; // ':' (a context line has '-')
    if (i === 0 || !Number.isSafeInteger(n)) return; // not a record rg writes: nothing to report
    let rest = i + 1;
    let byteColumn = 1;
    if (isMatch) {
      const colon = bytes.indexOf(58, rest);
      byteColumn = Number(bytes.subarray(rest, colon).toString('latin1')) || 1;
      rest = colon + 1;
    }
    if (r.body === null) return this.#line(isMatch, n, '', 0, true);
    const line = r.body.subarray(rest);
    // Past what this file can add to the answer only the count matters: no text decoded.
    if (this.#open.length === 0 && this.#fileMatches.length >= this.#room) {
      if (isMatch) this.#countOnly(n, line.length < 64 && PLACEHOLDER_MATCH_RE.test(stripCr(line.toString('utf8'))));
      return;
    }
    const text = stripCr(line.toString('utf8'));
    const long = line.length < 64 && (isMatch ? PLACEHOLDER_MATCH_RE.test(text) : text === PLACEHOLDER_CONTEXT);
    const start = isMatch && !long ? codePoints(line.subarray(0, byteColumn - 1).toString('utf8')) : 0;
    this.#line(isMatch, n, text, start, long);
  }

  /** What the run collected; call once, after the last record. */
  finish(): Collected {
    this.#endFile();
    const matches = this.#matches.items();
    const files = this.#files.items();
    return {
      matches,
      files,
      longLines: this.#long.items(),
      overflow: this.#o.maxFiles > 0 ? this.totalFiles - files.length : this.#listable - matches.length,
    };
  }

  /** A new file: the last match of the previous one gets no more after-lines, and its part of the answer is filed. */
  async #startFile(raw: Buffer, unparsed: boolean): Promise<void> {
    const o = this.#o;
    this.#endFile();
    this.#rawPath = raw;
    this.#path = o.fixedPath ?? (unparsed ? '?' : o.toRel(raw.toString('utf8')));
    this.#kept = o.filter ? await o.filter.keeps(this.#path) : true;
    this.#room = this.#kept ? this.#matches.room(raw) : 0;
    this.#longRoom = this.#kept ? this.#long.room(raw) : 0;
  }

  #endFile(): void {
    const key = this.#rawPath;
    if (key === null) return;
    this.#matches.add(key, this.#fileMatches);
    this.#long.add(key, this.#fileLong);
    if (this.#file) this.#files.add(key, [this.#file]);
    this.#fileMatches = [];
    this.#fileLong = [];
    this.#file = null;
    this.#recent = [];
    this.#open = [];
  }

  /** One line of the current file; `start` is the match's code-point offset, `long` a line rg did not print. */
  #line(isMatch: boolean, n: number, text: string, start: number, long: boolean): void {
    const { context } = this.#o;
    // A line can be after-context of several earlier matches and before-context of the next: adjacent matches
    // share their context lines, and a matching line is context of its neighbours too.
    const shown = context === 0 ? '' : long ? (isMatch ? PLACEHOLDER_MATCH : PLACEHOLDER_CONTEXT) : cutLine(text);
    if (this.#open.length > 0) {
      for (const m of this.#open) if (n > m.line && n <= m.line + context) m.after.push(shown);
      this.#open = this.#open.filter((m) => n < m.line + context);
    }
    if (isMatch) this.#countOnly(n, long);
    if (isMatch && !long && this.#fileMatches.length < this.#room) {
      const m: SearchMatch = {
        path: this.#path,
        line: n,
        column: start + 1,
        text: cutLine(text, start),
        before: this.#recent.filter((r) => r.line >= n - context).map((r) => r.text),
        after: [],
      };
      this.#fileMatches.push(m);
      if (context > 0) this.#open.push(m);
    }
    if (context > 0) {
      this.#recent.push({ line: n, text: shown });
      if (this.#recent.length > context) this.#recent.shift();
    }
  }

  /** Counts one matching line of the current file (line `n`; `long` when rg did not print it). */
  #countOnly(n: number, long: boolean): void {
    this.total++;
    if (this.total >= COUNT_CAP) this.#full = true;
    if (long) {
      this.skippedLong++;
      if (this.#fileLong.length < this.#longRoom) this.#fileLong.push({ path: this.#path, line: n });
    } else {
      this.#listable++;
    }
    if (this.#file) {
      this.#file.matches++;
      return;
    }
    this.totalFiles++;
    this.#file = { path: this.#path, matches: 1 };
  }
}

/** The sort key of records whose path did not parse: they come after every path. */
const UNPARSED = Buffer.from([0xff]);

function stripCr(s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s;
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Cuts a long line as documented on {@link MAX_LINE_CHARS}; `start` is the match's code-point offset. */
function cutLine(line: string, start = 0): string {
  if (line.length <= MAX_LINE_CHARS) return line; // code units >= code points, so nothing to cut
  const chars = Array.from(line);
  if (chars.length <= MAX_LINE_CHARS) return line;
  const from = start < MAX_LINE_CHARS - LEAD_CHARS ? 0 : start - LEAD_CHARS;
  const to = from + MAX_LINE_CHARS;
  return (from > 0 ? ELLIPSIS : '') + chars.slice(from, to).join('') + (to < chars.length ? ELLIPSIS : '');
}
