/**
 * What the `search` tool answers, and what it needs to run: the types and limits the files of lib/search share
 * and the handler re-exports. A leaf: it imports nothing but types.
 */
import type { Config } from '../../config/schema.js';

/** What a search runs with: the job's project, configuration, cancel signal and id (a handler's context is one). */
export interface SearchContext {
  /** Absolute real path of the project's working copy. */
  root: string;
  config: Config;
  /** Fires when the job must stop: rg is killed and the search ends as cancelled. */
  signal: AbortSignal;
  /** The job's id: the kill of rg's process tree looks for it. */
  jobId: string;
  projectId: string;
}

/** What to search for and where: the search tool's validated request. */
export interface SearchQuery {
  pattern: string;
  /** Rust regex syntax when true; literal text otherwise. */
  regex: boolean;
  glob?: string | undefined;
  case_sensitive: boolean;
  context_lines: number;
  /** Most matches (or files, with output "files") listed; default `budgets.searchResults`. */
  max_results?: number | undefined;
  /** `matches` (default): the matching lines; `files`: only the files, with their counts. */
  output?: 'matches' | 'files' | undefined;
  /** Project-relative folder or file to search within. */
  path: string;
}

/** One matching line. */
export interface SearchMatch {
  /** Project-relative path with forward slashes (symlinks in the requested `path` resolved). */
  path: string;
  /** 1-based line number. */
  line: number;
  /** 1-based column of the first match on the line, in Unicode code points of the whole line. */
  column: number;
  /** The line without its line break, cut to {@link MAX_LINE_CHARS} (see there). */
  text: string;
  /**
   * Up to `context_lines` lines just before the match, nearest last; they may themselves be matches. A line
   * longer than `search.maxLineBytes` shows as "[Omitted long context line]" (or "[Omitted long matching line]").
   */
  before: string[];
  /** Up to `context_lines` lines just after the match, nearest first; same rules as `before`. */
  after: string[];
}

/**
 * Why an answer is incomplete, in the order they are listed:
 *   max_results       stopped at max_results; there may be more matches (`truncated` is true)
 *   timed_out         stopped at `search.timeoutS`; files not reached yet were not searched
 *   long_lines        matching lines over `search.maxLineBytes` are not in `matches` (`skipped_long_lines`, `long_lines`)
 *   unreadable_files  rg could not read some files or folders (`errors`); their content was not searched
 *   search_aborted    rg died before the end (out of memory under `search.maxMemoryBytes`, or a crash)
 */
export type IncompleteReason = 'max_results' | 'timed_out' | 'long_lines' | 'unreadable_files' | 'search_aborted';

/** A file with matches, and how many matching lines it has (output "files"). */
export interface SearchFile {
  path: string;
  matches: number;
}

/** What `search` returns. */
export interface SearchResult {
  /** Matches in path order, then line order (none with output "files"). */
  matches: SearchMatch[];
  /** With output "files": the files with matches, in path order, at most max_results. */
  files?: SearchFile[];
  /** Matching lines found, counted past max_results (long ones included); a lower bound unless total_exact. */
  total_matches: number;
  /** Files with a matching line; a lower bound unless total_exact. */
  total_files: number;
  /** False when the count stopped early (a timeout, rg ended early, or {@link COUNT_CAP} reached). */
  total_exact: boolean;
  /** True when max_results left matches (or files) out: total_matches (total_files) says how many there are. */
  truncated: boolean;
  /** Present and true when the search was stopped at `search.timeoutS`; `matches` holds what it found by then. */
  timed_out?: boolean;
  /** True only when every file under the target was searched to its end and every match found is in `matches`. */
  complete: boolean;
  /** Present when `complete` is false: why. */
  incomplete_reasons?: IncompleteReason[];
  /** Present when `complete` is false: what each reason means for the caller and what to do next. */
  note?: string;
  /** Matching lines longer than `search.maxLineBytes`, left out of `matches`. */
  skipped_long_lines?: number;
  /** Where the first {@link MAX_LISTED} of those lines are. */
  long_lines?: { path: string; line: number }[];
  /** rg's messages about files or folders it could not read (the first {@link MAX_LISTED}), paths project-relative. */
  errors?: string[];
}

/**
 * Longest line returned, in code points. A longer line keeps {@link MAX_LINE_CHARS} code points and gets "…" where
 * it was cut: from its start when the match starts within the first `MAX_LINE_CHARS - LEAD_CHARS` code points,
 * otherwise from {@link LEAD_CHARS} before the match. `column` always counts from the start of the whole line.
 */
export const MAX_LINE_CHARS = 500;
/** How much of a long line is kept before its match, when the match is too far in to keep the line's start. */
export const LEAD_CHARS = 100;

/**
 * Matching lines counted at most: past this rg is stopped and the total is a lower bound. Counting streams every
 * matching line through the parser, so a pattern that matches everything in a huge tree must not run to the timeout.
 */
export const COUNT_CAP = 100_000;

/** At most this many long lines and error messages are listed (all are counted). */
export const MAX_LISTED = 20;
