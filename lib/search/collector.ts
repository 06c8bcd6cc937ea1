/**
 * Folds rg's records into the answer's matches: each matching line with its context lines, long lines counted
 * instead of kept, files the ignore rules leave out passed over. Past max_results matches (or files) it only counts,
 * so the answer can say how many there are; it asks for a stop at {@link COUNT_CAP} matching lines.
 */
import type { MatchFilter } from './match-filter.js';
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

/** Collects the matches of one rg run, record by record in rg's order (a file's records come together). */
export class MatchCollector {
  /** The matches so far, in rg's order (path, then line). */
  readonly matches: SearchMatch[] = [];
  /** Where the first {@link MAX_LISTED} skipped long lines are. */
  readonly longLines: { path: string; line: number }[] = [];
  /** With output "files": the first files with matches, and their counts. */
  readonly files: SearchFile[] = [];
  /** Matching lines too long to keep. */
  skippedLong = 0;
  /** Matching lines seen in files the filter keeps, long ones included. */
  total = 0;
  /** Files with a matching line. */
  totalFiles = 0;
  /** Matching lines (or files) left out because max_results was reached. */
  overflow = 0;
  /** Records seen. */
  records = 0;
  readonly #o: CollectorOptions;
  #full = false;
  // State of the current file: whether it survives the ignore filter, its last `context` lines, and the matches
  // that are still collecting after-lines.
  #rawPath: string | null = null;
  #path = '';
  #kept = true;
  #recent: { line: number; text: string }[] = [];
  #open: SearchMatch[] = [];
  /** The current file's entry in {@link files}, or its count alone once the list is full. */
  #file: SearchFile | null = null;

  constructor(o: CollectorOptions) {
    this.#o = o;
  }

  /** True once {@link COUNT_CAP} matching lines were counted: the search can stop, its total a lower bound. */
  get full(): boolean {
    return this.#full;
  }

  /** Folds one record in. */
  async add(r: RgRecord): Promise<void> {
    const o = this.#o;
    this.records++;
    const p = r.path === null ? null : recordPath(r.path);
    if (p === null || p !== this.#rawPath) {
      // A new file: the last match of the previous one gets no more after-lines.
      this.#rawPath = p;
      this.#file = null;
      this.#path = o.fixedPath ?? (p === null ? '?' : o.toRel(p));
      this.#kept = o.filter ? await o.filter.keeps(this.#path) : true;
      this.#recent = [];
      this.#open = [];
    }
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
    const raw = r.body.subarray(rest);
    const text = stripCr(raw.toString('utf8'));
    const long = raw.length < 64 && (isMatch ? PLACEHOLDER_MATCH_RE.test(text) : text === PLACEHOLDER_CONTEXT);
    const start = isMatch && !long ? codePoints(raw.subarray(0, byteColumn - 1).toString('utf8')) : 0;
    this.#line(isMatch, n, text, start, long);
  }

  /** One line of the current file; `start` is the match's code-point offset, `long` a line rg did not print. */
  #line(isMatch: boolean, n: number, text: string, start: number, long: boolean): void {
    const { context, maxResults } = this.#o;
    // A line can be after-context of several earlier matches and before-context of the next: adjacent matches
    // share their context lines, and a matching line is context of its neighbours too.
    const shown = long ? (isMatch ? PLACEHOLDER_MATCH : PLACEHOLDER_CONTEXT) : cutLine(text);
    for (const m of this.#open) if (n > m.line && n <= m.line + context) m.after.push(shown);
    this.#open = this.#open.filter((m) => n < m.line + context);
    if (isMatch) this.#count();
    if (isMatch && long) {
      this.skippedLong++;
      if (this.longLines.length < MAX_LISTED) this.longLines.push({ path: this.#path, line: n });
    } else if (isMatch) {
      if (this.matches.length >= maxResults) {
        if (this.#o.maxFiles === 0) this.overflow++;
        return;
      }
      const m: SearchMatch = {
        path: this.#path,
        line: n,
        column: start + 1,
        text: cutLine(text, start),
        before: this.#recent.filter((r) => r.line >= n - context).map((r) => r.text),
        after: [],
      };
      this.matches.push(m);
      if (context > 0) this.#open.push(m);
    }
    if (context > 0) {
      this.#recent.push({ line: n, text: shown });
      if (this.#recent.length > context) this.#recent.shift();
    }
  }

  /** Counts one matching line of the current file. */
  #count(): void {
    this.total++;
    if (this.total >= COUNT_CAP) this.#full = true;
    if (this.#file) {
      this.#file.matches++;
      return;
    }
    this.totalFiles++;
    this.#file = { path: this.#path, matches: 1 };
    if (this.files.length < this.#o.maxFiles) this.files.push(this.#file);
    else if (this.#o.maxFiles > 0) this.overflow++;
  }
}

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
