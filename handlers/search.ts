/**
 * The `search` tool: ripgrep over a project, streamed as `--json` and parsed line by line, stopped as soon as
 * enough matches are in (or at the deadline, or on cancel). What counts as ignored is what `file.list` ignores:
 * the project's own .gitignore files, `.git` never searched.
 */
import { spawn } from 'node:child_process';
import { lstat, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { rgPath } from '@vscode/ripgrep';
import { ToolhostError, cancelled, errnoCode } from '../lib/errors.js';
import { projectRelative, resolveInProject } from '../lib/paths.js';
import type { SearchRequest } from '../lib/schemas.js';
import type { Handler } from './context.js';
import { GitignoreRules } from '../lib/gitignore.js';

/** One matching line. */
export interface SearchMatch {
  /** Project-relative path with forward slashes. */
  path: string;
  /** 1-based line number. */
  line: number;
  /** 1-based column of the first match on the line, in Unicode code points of the whole line. */
  column: number;
  /** The line without its line break, cut to {@link MAX_LINE_CHARS} (see there). */
  text: string;
  /** Up to `context_lines` lines just before the match, nearest last; they may themselves be matches. */
  before: string[];
  /** Up to `context_lines` lines just after the match, nearest first; they may themselves be matches. */
  after: string[];
}

/** What `search` returns. */
export interface SearchResult {
  /** Matches in path order, then line order. */
  matches: SearchMatch[];
  /** True when the search stopped at max_results (clamped to `search.maxResults`); there may be more. */
  truncated: boolean;
  /** Present and true when the search was stopped at `search.timeoutS`; `matches` holds what it found by then. */
  timed_out?: boolean;
}

/**
 * Longest line returned, in code points. A longer line keeps its first {@link MAX_LINE_CHARS} code points and
 * gets "…" appended; when the match starts beyond that, the window starts {@link LEAD_CHARS} before the match
 * instead and "…" is prepended too. `column` always counts from the start of the whole line.
 */
export const MAX_LINE_CHARS = 500;
const LEAD_CHARS = 100;
const ELLIPSIS = '…';

/**
 * One JSON message of rg larger than this (a match on a huge minified line) is dropped rather than buffered:
 * stdout is never held in memory beyond one message of this size.
 */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
const MAX_STDERR_BYTES = 64 * 1024;

/** rg's text fields: UTF-8 text, or base64 `bytes` when the data is not valid UTF-8. */
interface RgData {
  text?: string;
  bytes?: string;
}
interface RgLine {
  path: RgData;
  lines: RgData;
  line_number: number;
  submatches: { start: number; end: number }[];
}
type RgMessage =
  | { type: 'begin' | 'end'; data: { path: RgData } }
  | { type: 'match' | 'context'; data: RgLine }
  | { type: 'summary'; data: unknown };

function rawOf(d: RgData): Buffer {
  return d.text !== undefined ? Buffer.from(d.text, 'utf8') : Buffer.from(d.bytes ?? '', 'base64');
}

function stripEol(s: string): string {
  return s.replace(/\r?\n$/, '');
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Cuts a long line as documented on {@link MAX_LINE_CHARS}; `start` and `end` are code-point offsets. */
function cutLine(line: string, start = 0, end = 0): string {
  if (line.length <= MAX_LINE_CHARS) return line; // code units >= code points, so nothing to cut
  const chars = Array.from(line);
  if (chars.length <= MAX_LINE_CHARS) return line;
  const from = end <= MAX_LINE_CHARS ? 0 : Math.max(0, start - LEAD_CHARS);
  const to = from + MAX_LINE_CHARS;
  return (from > 0 ? ELLIPSIS : '') + chars.slice(from, to).join('') + (to < chars.length ? ELLIPSIS : '');
}

/** The rg command line. The user pattern goes through `-e` so a leading "-" is never read as a flag. */
function rgArgs(req: SearchRequest, target: string, gitignore: 'walk' | string | null): string[] {
  const args = [
    '--json',
    '--no-config', // RIPGREP_CONFIG_PATH of the host must not change results
    '--sort=path', // deterministic order (and so a deterministic cut at max_results), at the cost of one thread
    '--hidden',
    // Only the project's own .gitignore files count: --no-require-git for projects shipped without .git, and
    // --no-ignore-parent because with it rg would also apply .gitignore files of folders above the project root
    // (the data dir's, the host's), since it stops at a repository boundary only when it requires git.
    '--no-require-git',
    '--no-ignore-parent',
    '--no-ignore-global',
    '--no-ignore-exclude',
    '--no-ignore-dot', // .ignore/.rgignore are rg's own; file.list does not read them either
  ];
  if (gitignore === null) args.push('--no-ignore-vcs');
  else if (gitignore !== 'walk') args.push(`--ignore-file=${gitignore}`);
  if (!req.regex) args.push('--fixed-strings');
  if (!req.case_sensitive) args.push('--ignore-case');
  if (req.context_lines > 0) args.push(`--context=${req.context_lines}`);
  if (req.glob) args.push(`--glob=${req.glob}`);
  // Last, so it wins over a user glob such as "**": .git is never searched.
  args.push('--glob=!.git', '-e', req.pattern, '--', target);
  return args;
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

/** Maps a failed rg run (exit 2 before any search happened) to the caller's error. */
function rgFailure(req: SearchRequest, stderr: string): ToolhostError {
  const first = stderr.split('\n').find((l) => l.trim() !== '')?.replace(/^rg: /, '') ?? 'ripgrep failed';
  if (/error parsing glob/.test(stderr)) {
    return new ToolhostError('bad_request', `glob "${req.glob ?? ''}" is invalid: ${first}; fix it or leave glob out`, {
      glob: req.glob,
    });
  }
  // rg words these "regex parse error", "compiled regex exceeds size limit", "... is not allowed in a regex".
  if (/regex/i.test(stderr)) return invalidRegex(req.pattern, stderr);
  return new ToolhostError('internal', `search failed: ${first}`);
}

/** Checks the search target and returns its path relative to the root, as rg gets it. */
async function checkTarget(root: string, userPath: string): Promise<{ rel: string; isDir: boolean }> {
  const abs = await resolveInProject(root, userPath);
  const rel = projectRelative(root, abs);
  if (rel.split('/').includes('.git')) {
    throw new ToolhostError(
      'bad_request',
      'search never looks inside .git; search a folder of the working tree, or run git commands with execute',
      { path: userPath },
    );
  }
  try {
    return { rel, isDir: (await stat(abs)).isDirectory() };
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new ToolhostError(
        'file_not_found',
        `"${userPath}" does not exist; search "." or list the project to find the right path`,
        { path: userPath },
      );
    }
    throw err;
  }
}

/**
 * How rg is to apply .gitignore files: 'walk' (those it meets while walking), the path of the root .gitignore to
 * add when searching below the root (rg no longer reads parents, see rgArgs), or null for none at all.
 */
async function gitignoreMode(root: string, rel: string, namedIgnored: boolean): Promise<'walk' | string | null> {
  if (namedIgnored) return null;
  if (rel === '.') return 'walk';
  const file = join(root, '.gitignore');
  const st = await lstat(file).catch(() => null);
  return st?.isFile() ? file : 'walk';
}

/**
 * Whether a match in file `rel` survives the project's .gitignore files. rg already prunes by them; this catches
 * what rg lets through: files whose path a user glob matches (rg's globs override ignore rules, so "src/**" would
 * otherwise reach into an ignored src/node_modules) and .gitignore files of folders between the root and a
 * searched subfolder.
 */
class MatchFilter {
  readonly #rules: GitignoreRules | null;
  readonly #base: string;
  readonly #verdicts = new Map<string, Promise<boolean>>();

  /** @param rules null to only keep .git out. */
  constructor(rules: GitignoreRules | null, base: string) {
    this.#rules = rules;
    this.#base = base === '.' ? '' : `${base}/`;
  }

  /** True when `rel` (a file below the searched folder) is to be reported. Cached per file. */
  keeps(rel: string): Promise<boolean> {
    let verdict = this.#verdicts.get(rel);
    if (!verdict) {
      verdict = this.#check(rel);
      this.#verdicts.set(rel, verdict);
    }
    return verdict;
  }

  async #check(rel: string): Promise<boolean> {
    if (!rel.startsWith(this.#base)) return true;
    const parts = rel.split('/');
    if (parts.includes('.git')) return false;
    const rules = this.#rules;
    if (!rules) return true;
    const first = this.#base === '' ? 1 : this.#base.split('/').length; // parts[first - 1] is the first below base
    for (let i = first; i < parts.length; i++) {
      if (await rules.ignores(parts.slice(0, i).join('/'), true)) return false;
    }
    return !(await rules.ignores(rel, false));
  }
}

/**
 * Searches the project with ripgrep. `pattern` is a literal unless `regex` is true (Rust regex syntax, one line at
 * a time); `glob` is a gitignore-style glob over project-relative paths ("*.ts", "src/**", "!*.min.js"). Binary
 * files are skipped; symlinks are not followed. A folder that .gitignore excludes (say node_modules/some-dep),
 * when named as `path`, is searched whole but for .git, as `file.list` lists it; a file named as `path` is
 * searched whatever .gitignore says.
 */
export const search: Handler<SearchRequest, SearchResult> = async (req, ctx) => {
  const { root, config, signal } = ctx;
  if (signal.aborted) throw cancelled(signal, 'the search');
  if (/[\r\n]/.test(req.pattern)) {
    throw new ToolhostError(
      'bad_request',
      'pattern contains a line break; search matches one line at a time, so search for a single line of the text',
      { pattern: req.pattern },
    );
  }
  const target = await checkTarget(root, req.path);
  const rules = new GitignoreRules(root);
  const namedIgnored = target.isDir && target.rel !== '.' && (await rules.ignores(target.rel, true));
  const args = rgArgs(req, target.rel, await gitignoreMode(root, target.rel, namedIgnored));
  const filter = target.isDir ? new MatchFilter(namedIgnored ? null : rules, target.rel) : null;
  const run = await runRg(args, {
    root,
    context: req.context_lines,
    maxResults: Math.min(req.max_results, config.search.maxResults),
    timeoutMs: config.search.timeoutS * 1000,
    signal,
    filter,
  });
  if (run.end === 'cancelled') throw cancelled(signal, 'the search');
  if (run.end === 'failed') throw rgFailure(req, run.stderr);
  const result: SearchResult = { matches: run.matches, truncated: run.end === 'full' };
  if (run.end === 'timeout') result.timed_out = true;
  return result;
};

interface RunOptions {
  root: string;
  context: number;
  maxResults: number;
  timeoutMs: number;
  signal: AbortSignal;
  filter: MatchFilter | null;
}

/**
 * How a run ended. States, each set once, the first one wins:
 *   done      rg exited by itself having searched everything (exit 0, 1, or 2 with a summary: some files unreadable)
 *   full      max_results matches collected (plus the last one's after-context), rg killed
 *   timeout   search.timeoutS passed, rg killed
 *   cancelled ctx.signal fired, rg killed
 *   failed    rg exited 2 without searching (bad regex, bad glob)
 */
type RunEnd = 'done' | 'full' | 'timeout' | 'cancelled' | 'failed';

/**
 * rg's stdout as parsed JSON messages, one per line. Reading pulls from the pipe, so a slow consumer makes rg
 * wait rather than stdout pile up; a message over {@link MAX_MESSAGE_BYTES} is skipped without being kept.
 */
async function* rgMessages(stdout: AsyncIterable<Buffer>): AsyncGenerator<RgMessage> {
  let chunks: Buffer[] = [];
  let size = 0;
  let dropping = false;
  for await (const chunk of stdout) {
    let from = 0;
    for (let nl = chunk.indexOf(10, from); nl !== -1; nl = chunk.indexOf(10, from)) {
      const piece = chunk.subarray(from, nl);
      const line = dropping ? null : size === 0 ? piece : Buffer.concat([...chunks, piece]);
      chunks = [];
      size = 0;
      dropping = false;
      from = nl + 1;
      if (line && line.length > 0) {
        let msg: RgMessage;
        try {
          msg = JSON.parse(line.toString('utf8')) as RgMessage;
        } catch {
          continue; // rg prints nothing but JSON lines in --json mode; ignore anything else
        }
        yield msg;
      }
    }
    if (from < chunk.length && !dropping) {
      size += chunk.length - from;
      chunks.push(chunk.subarray(from));
      if (size > MAX_MESSAGE_BYTES) {
        dropping = true;
        chunks = [];
        size = 0;
      }
    }
  }
}

/** Runs rg and folds its JSON stream into matches; returns once rg has exited and its pipes are closed. */
async function runRg(
  args: string[],
  o: RunOptions,
): Promise<{ end: RunEnd; matches: SearchMatch[]; stderr: string }> {
  const child = spawn(rgPath, args, { cwd: o.root, stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = new Promise<number | null>((res, rej) => {
    child.once('error', (err) => rej(new ToolhostError('internal', `cannot run ripgrep (${rgPath}): ${err.message}`)));
    child.once('close', (code) => res(code));
  });
  closed.catch(() => {}); // awaited below; this only keeps an early rejection from being reported as unhandled

  let end: RunEnd | null = null;
  const stop = (why: RunEnd): void => {
    if (end !== null) return;
    end = why;
    // rg keeps no state worth a graceful exit and starts no children: SIGKILL ends it at once.
    child.kill('SIGKILL');
  };
  const timer = setTimeout(() => stop('timeout'), o.timeoutMs);
  const onAbort = (): void => stop('cancelled');
  o.signal.addEventListener('abort', onAbort, { once: true });
  if (o.signal.aborted) stop('cancelled'); // fired while the target was being checked: no event will come

  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < MAX_STDERR_BYTES) stderr += chunk.toString('utf8');
  });

  const matches: SearchMatch[] = [];
  let sawSummary = false;
  // State of the current file: whether it survives the ignore filter, its last `context` lines, and the matches
  // that are still collecting after-lines. rg sends a file's messages together, between begin and end.
  let path = '';
  let kept = true;
  let recent: { line: number; text: string }[] = [];
  let open: SearchMatch[] = [];

  const onLine = (kind: 'match' | 'context', d: RgLine): void => {
    const raw = rawOf(d.lines);
    const full = stripEol(raw.toString('utf8'));
    const n = d.line_number;
    // A line can be after-context of several earlier matches and before-context of the next: adjacent matches
    // share their context lines, and a matching line is context of its neighbours too.
    for (const m of open) if (n > m.line && n <= m.line + o.context) m.after.push(cutLine(full));
    open = open.filter((m) => n < m.line + o.context);
    if (kind === 'match') {
      if (matches.length >= o.maxResults) return stop('full');
      const sub = d.submatches[0];
      const start = sub ? codePoints(raw.subarray(0, sub.start).toString('utf8')) : 0;
      const stopAt = sub ? codePoints(raw.subarray(0, sub.end).toString('utf8')) : 0;
      const m: SearchMatch = {
        path,
        line: n,
        column: start + 1,
        text: cutLine(full, start, stopAt),
        before: recent.filter((r) => r.line >= n - o.context).map((r) => r.text),
        after: [],
      };
      matches.push(m);
      if (o.context > 0) open.push(m);
    }
    if (o.context > 0) {
      recent.push({ line: n, text: cutLine(full) });
      if (recent.length > o.context) recent.shift();
    }
    if (matches.length >= o.maxResults && open.length === 0) stop('full');
  };

  try {
    for await (const msg of rgMessages(child.stdout)) {
      if (end !== null) break;
      switch (msg.type) {
        case 'begin':
          path = projectRelative(o.root, resolve(o.root, rawOf(msg.data.path).toString('utf8')));
          kept = o.filter ? await o.filter.keeps(path) : true;
          recent = [];
          open = [];
          break;
        case 'match':
        case 'context':
          if (kept) onLine(msg.type, msg.data);
          break;
        case 'end':
          // The file is done, so the last match gets no more after-lines.
          open = [];
          if (matches.length >= o.maxResults) stop('full');
          break;
        case 'summary':
          sawSummary = true;
          break;
      }
    }
  } catch (err) {
    stop('failed');
    await closed.catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener('abort', onAbort);
  }
  const code = await closed;
  if (end === null) end = code === 2 && !sawSummary ? 'failed' : 'done';
  return { end, matches, stderr };
}
