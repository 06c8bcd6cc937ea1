/**
 * How an rg run becomes the caller's answer: the matches with every reason the answer is incomplete spelled out
 * (`complete`, `incomplete_reasons`, `note`), or the error a run that found nothing usable ends with.
 */
import type { Config } from '../../config/schema.js';
import { cancelled, ToolhostError } from '../errors.js';
import type { RgRunOutcome } from './run-rg.js';
import { COUNT_CAP, type IncompleteReason, type SearchQuery, type SearchResult } from './types.js';

/**
 * The answer of a run, saying plainly what is missing; throws when the run was cancelled, failed before it
 * searched (a bad regex or glob), or died before it found anything.
 */
export function answer(run: RgRunOutcome, req: SearchQuery, s: Config['search'] & Pick<Config['budgets'], 'searchResults'>, signal: AbortSignal): SearchResult {
  if (run.end === 'cancelled') throw cancelled(signal, 'the search');
  if (run.end === 'failed') throw rgFailure(req, run.stderr);
  if (run.end === 'aborted' && run.total === 0) {
    throw new ToolhostError(
      'search_failed',
      `the search stopped before it could finish: ${abortCause(run, s.maxMemoryBytes)}; nothing was found ` +
        'before that. Search a subfolder (path) or fewer files (glob, e.g. "!*.min.js" to leave out huge files)' +
        (run.skippedLong > 0 ? `; ${run.skippedLong} matching line(s) too long to show were seen first` : ''),
      { path: req.path },
    );
  }
  const max = Math.min(req.max_results ?? s.searchResults, s.maxResults);
  const result: SearchResult = {
    matches: run.matches,
    ...(req.output === 'files' ? { files: run.files } : {}),
    total_matches: run.total,
    total_files: run.totalFiles,
    total_exact: run.end === 'done',
    truncated: run.overflow > 0,
    complete: true,
  };
  const reasons: IncompleteReason[] = [];
  const notes: string[] = [];
  if (result.truncated || run.end === 'full') {
    const what =
      req.output === 'files'
        ? `files (${run.totalFiles}${run.end === 'done' ? '' : ' or more'} in all)`
        : `matching lines (${run.total}${run.end === 'done' ? '' : ' or more'} in all)`;
    reasons.push('max_results');
    notes.push(
      `listed the first ${max} ${what}` +
        (run.end === 'full' ? `, and stopped counting at ${COUNT_CAP}` : '') +
        `: narrow the search with path or glob, or ask for more (max_results up to ${s.maxResults})` +
        (req.output === 'files' ? '' : ', or pass output: "files" to see which files match'),
    );
  }
  if (run.end === 'timeout') {
    result.timed_out = true;
    reasons.push('timed_out');
    notes.push(`stopped after ${s.timeoutS} s (search.timeoutS); files not reached by then were not searched: search a subfolder (path) or fewer files (glob)`);
  }
  if (run.skippedLong > 0) {
    result.skipped_long_lines = run.skippedLong;
    result.long_lines = run.longLines;
    reasons.push('long_lines');
    notes.push(
      `${run.skippedLong} matching line(s) longer than ${s.maxLineBytes} bytes (search.maxLineBytes) are not in ` +
        "matches; long_lines says where: look at them with execute, e.g. grep -o '.{0,80}PATTERN.{0,80}' FILE",
    );
  }
  if (run.errorCount > 0) {
    result.errors = run.errors;
    reasons.push('unreadable_files');
    notes.push(
      `ripgrep could not read ${run.errorCount} file(s) or folder(s) (errors lists them), so their content was not ` +
        'searched: check them with execute (ls -l) and fix their mode, or search elsewhere',
    );
  }
  if (run.end === 'aborted') {
    reasons.push('search_aborted');
    notes.push(
      `${abortCause(run, s.maxMemoryBytes)}; matches holds what it found until then: search a subfolder (path) or ` +
        'fewer files (glob, e.g. "!*.min.js" to leave out huge files)',
    );
  }
  if (reasons.length > 0) {
    result.complete = false;
    result.incomplete_reasons = reasons;
    result.note = `${notes.join('. ')}.`;
  }
  return result;
}

/** Why rg ended early, for the caller. */
function abortCause(run: RgRunOutcome, maxMemoryBytes: number): string {
  if (/memory allocation|out of memory|failed to spawn thread|Cannot allocate memory/i.test(run.stderr) || run.signal === 'SIGABRT' || run.code === 134) {
    return `ripgrep ran out of memory (search.maxMemoryBytes is ${maxMemoryBytes} bytes), most likely on a huge file`;
  }
  const first = run.stderr.split('\n').find((l) => l.trim() !== '');
  const how = run.signal ? `signal ${run.signal}` : `exit code ${run.code}`;
  return `ripgrep ended with ${how}${first ? ` (${first.slice(0, 300)})` : ''}`;
}

/** Maps a failed rg run (exit 2 before any search happened) to the caller's error. */
function rgFailure(req: SearchQuery, stderr: string): ToolhostError {
  const first =
    stderr
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.replace(/^rg: /, '') ?? 'ripgrep failed';
  if (/error parsing glob/.test(stderr)) {
    return new ToolhostError('bad_request', `glob "${req.glob ?? ''}" is invalid: ${first}; fix it or leave glob out`, {
      glob: req.glob,
    });
  }
  // rg words these "regex parse error", "compiled regex exceeds size limit", "... is not allowed in a regex".
  if (/regex/i.test(stderr)) return invalidRegex(req.pattern, stderr);
  return new ToolhostError('internal', `search failed: ${first}`);
}

function invalidRegex(pattern: string, stderr: string): ToolhostError {
  const lines = stderr.split('\n').map((l) => l.trim());
  const reason =
    lines.find((l) => l.startsWith('error: '))?.slice('error: '.length) ??
    lines.find((l) => l.startsWith('rg: '))?.slice('rg: '.length) ??
    'not a valid regular expression';
  return new ToolhostError(
    'invalid_regex',
    `pattern is not a valid regular expression (Rust regex syntax): ${reason}; escape special characters such as ` +
      '( ) [ ] { } . * + ? | \\ with a backslash, or pass regex: false to search for the text literally',
    { pattern, reason },
  );
}
