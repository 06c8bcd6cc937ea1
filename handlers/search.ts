/**
 * The `search` tool: ripgrep over a project, its output parsed record by record as it streams, stopped as soon as
 * enough matches are in (or at the deadline, or on cancel). What counts as ignored is what `file.list` ignores:
 * the project's own .gitignore files, `.git` never searched.
 *
 * The project's files and names may be written by a hostile command running at the same time, and this thread
 * is root, so:
 * - The target (the root or the request's `path`) is opened and the opened object is checked to be inside the
 *   project, a folder or a regular file; a name swapped for a symlink after a check by name would win a race.
 * - With bubblewrap (`commands.sandbox`), rg is launched as a command is (lib/process/sandbox.ts): as the
 *   project's uid, in a user namespace without capabilities, seeing the system folders, the project (read-only)
 *   and rg itself. rg opens the folders and files of its walk by name after reading them from their folder, so a
 *   folder replaced by a symlink to /etc in between would be followed (no `-L` only spares links rg sees as
 *   links); in that namespace such a link points at nothing. Without bubblewrap rg gets the opened target as fd 3
 *   and searches that, so the named target cannot be redirected, and runs as the project's uid (when toolhost is
 *   root), so a swap inside its walk reaches nothing the project's own commands could not read.
 * - rg runs with RLIMIT_AS = `search.maxMemoryBytes`, no core dumps, and an empty environment.
 * - Lines longer than `search.maxLineBytes` are not printed by rg (`--max-columns`): the answer counts them.
 *   Such lines, files rg could not read, a timeout, an rg that died and the cut at max_results all make the
 *   answer say `complete: false`, with the reasons; an answer never looks complete when something was skipped.
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync, fstatSync, lstatSync, openSync, readlinkSync, realpathSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { rgPath } from '@vscode/ripgrep';
import ignore, { type Ignore } from 'ignore';
import { ToolhostError, cancelled, errnoCode } from '../lib/errors.js';
import { GitignoreRules } from '../lib/gitignore.js';
import { isInside, projectRelative, resolveInProject } from '../lib/paths.js';
import { projectOwner } from '../lib/process/owner.js';
import { launchArgv, planOf, ulimit } from '../lib/process/sandbox.js';
import type { SearchRequest } from '../lib/schemas.js';
import type { Handler, HandlerContext } from './context.js';

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

/** What `search` returns. */
export interface SearchResult {
  /** Matches in path order, then line order. */
  matches: SearchMatch[];
  /** True when the search stopped at max_results (clamped to `search.maxResults`); there may be more. */
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
const LEAD_CHARS = 100;
const ELLIPSIS = '…';

/** At most this many long lines and error messages are listed (all are counted). */
export const MAX_LISTED = 20;

const MAX_STDERR_BYTES = 64 * 1024;
/** A path longer than this is not a path: output that does not parse, dropped (and counted). */
const MAX_PATH_BYTES = 64 * 1024;
/**
 * rg prints no line longer than `search.maxLineBytes` (it prints a placeholder instead); a record longer than
 * that plus this slack is dropped without being held in memory, and counted as a skipped long line.
 */
const RECORD_SLACK_BYTES = 64 * 1024;

/** Linux's O_PATH (x86-64 and arm64): an fd naming an object without opening it, so a FIFO cannot block. */
const O_PATH = 0o10000000;
/** Where rg finds the target opened here when there is no sandbox (the fd is passed as stdio[3]). */
const FD_TARGET = '/proc/self/fd/3';

const PLACEHOLDER_MATCH = '[Omitted long matching line]';
const PLACEHOLDER_CONTEXT = '[Omitted long context line]';
// rg prints the count variant when it knows the column (--column).
const PLACEHOLDER_MATCH_RE = /^\[Omitted long (?:matching line|line with \d+ matches?)\]$/;

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

/**
 * The rg command line. Output is rg's standard printer, not --json: --max-columns works only there, and --json
 * builds each match with all its submatches in memory (670 MB for one 21 MB line). Each record is
 * `path NUL line:column:text LF` (a match) or `path NUL line-text LF` (a context line); text holds neither NUL nor
 * LF, a path may hold LF. The user pattern goes through `-e` so a leading "-" is never read as a flag.
 */
function rgArgs(req: SearchRequest, target: string, ignoreFile: 'walk' | string | null, glob: string | undefined, maxLineBytes: number): string[] {
  const args = [
    '--no-config', // RIPGREP_CONFIG_PATH of the host must not change results
    '--sort=path', // deterministic order (and so a deterministic cut at max_results), at the cost of one thread
    '--null',
    '--line-number',
    '--column',
    '--with-filename',
    '--no-heading',
    '--color=never',
    '--no-context-separator',
    '--stats', // printed only when rg got to the end: the proof that a search finished
    // Each line as it is found: a pipe would get rg's output in 8 KiB blocks, and the block not yet written when
    // rg is killed (timeout) or dies (out of memory) would be lost from the partial answer.
    '--line-buffered',
    `--max-columns=${maxLineBytes}`,
    // rg would quote lines of an ignore file it cannot parse; without a sandbox that file may be a link to any
    // file of the host. The rules are applied again by MatchFilter anyway.
    '--no-ignore-messages',
    '--hidden',
    // Only the project's own .gitignore files count: --no-require-git for projects shipped without .git, and
    // --no-ignore-parent because with it rg would also apply .gitignore files of folders above the searched one
    // (the data dir's, the host's), since it stops at a repository boundary only when it requires git.
    '--no-require-git',
    '--no-ignore-parent',
    '--no-ignore-global',
    '--no-ignore-exclude',
    '--no-ignore-dot', // .ignore/.rgignore are rg's own; file.list does not read them either
  ];
  if (ignoreFile === null) args.push('--no-ignore-vcs');
  else if (ignoreFile !== 'walk') args.push(`--ignore-file=${ignoreFile}`);
  if (!req.regex) args.push('--fixed-strings');
  if (!req.case_sensitive) args.push('--ignore-case');
  if (req.context_lines > 0) args.push(`--context=${req.context_lines}`);
  if (glob) args.push(`--glob=${glob}`);
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

/** The search target, opened: `fd` is an O_PATH descriptor of the very object that was checked. */
interface OpenTarget {
  fd: number;
  /** Project-relative real path of the target ("." for the root). */
  rel: string;
  isDir: boolean;
}

/**
 * Opens the target and checks the opened object: inside the project (by the kernel's own name for the fd, so a
 * symlink swapped in after any earlier check is caught), not in .git, a folder or a regular file. A FIFO, socket
 * or device is refused: rg would block reading it. The caller closes `fd`.
 */
function openTarget(root: string, userPath: string): OpenTarget {
  resolveInProject(root, userPath); // the lexical and NUL checks, with their errors
  const gitRefused = (): ToolhostError =>
    new ToolhostError(
      'bad_request',
      'search never looks inside .git; search a folder of the working tree, or run git commands with execute',
      { path: userPath },
    );
  if (projectRelative(root, resolve(root, userPath)).split('/').includes('.git')) throw gitRefused();
  let fd: number;
  try {
    fd = openSync(resolve(root, userPath), O_PATH);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') {
      throw new ToolhostError(
        'file_not_found',
        `"${userPath}" does not exist${code === 'ELOOP' ? ' (a loop of symlinks)' : ''}; search "." or list the project to find the right path`,
        { path: userPath },
      );
    }
    throw err;
  }
  try {
    const real = readlinkSync(`/proc/self/fd/${fd}`);
    if (real.endsWith(' (deleted)')) {
      throw new ToolhostError('file_not_found', `"${userPath}" was deleted while the search started; search again`, { path: userPath });
    }
    if (!isInside(root, real)) {
      throw new ToolhostError(
        'path_outside_project',
        `path "${userPath}" is outside the project (it is, or passes through, a link out of it); search a folder or file inside the project`,
        { path: userPath },
      );
    }
    const rel = projectRelative(root, real);
    if (rel.split('/').includes('.git')) throw gitRefused();
    const st = fstatSync(fd);
    if (!st.isDirectory() && !st.isFile()) {
      throw new ToolhostError(
        'not_a_regular_file',
        `"${userPath}" is not a regular file or folder (a FIFO, socket or device); search its folder, or inspect it with execute`,
        { path: userPath },
      );
    }
    return { fd, rel, isDir: st.isDirectory() };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Whether a match in file `rel` survives the project's .gitignore files (and the request's glob, when rg could not
 * apply it). rg already prunes by them; this catches what rg lets through: files whose path a user glob matches
 * (rg's globs override ignore rules, so "src/**" would otherwise reach into an ignored src/node_modules) and
 * .gitignore files of the root and the folders between it and a searched subfolder.
 */
class MatchFilter {
  readonly #rules: GitignoreRules | null;
  readonly #base: string;
  readonly #glob: { exclude: boolean; matcher: Ignore } | null;
  readonly #verdicts = new Map<string, Promise<boolean>>();

  /**
   * @param rules null to only keep .git out.
   * @param glob a glob (gitignore syntax, "!" to exclude) that paths must match, or undefined.
   */
  constructor(rules: GitignoreRules | null, base: string, glob?: string) {
    this.#rules = rules;
    this.#base = base === '.' ? '' : `${base}/`;
    const exclude = glob?.startsWith('!') ?? false;
    this.#glob = glob === undefined ? null : { exclude, matcher: ignore().add(exclude ? glob.slice(1) : glob) };
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
    if (this.#glob && this.#glob.matcher.ignores(rel) === this.#glob.exclude) return false;
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
 * How rg is started and how its paths map back to the project.
 * - In the sandbox rg sees the project at its own path, works in it and gets the target by its real
 *   relative name, so globs and .gitignore files apply exactly as on the host; a name can still change under it,
 *   but every name resolves inside the project.
 * - Without it rg gets the opened target as fd 3: a folder becomes its working folder (`cd /proc/self/fd/3`,
 *   done before exec) and it searches "."; a file it searches as /proc/self/fd/3. rg's paths are then relative to
 *   the target, not the root, so for a subfolder the root .gitignore and a glob anchored at the root ("src/**")
 *   cannot be handed to rg (rg would match "*" then "!src/**" against "a.ts" and prune all of src): MatchFilter
 *   applies them instead. rg runs as the project's uid, as its commands do when toolhost is root: a swap inside
 *   rg's walk then reaches nothing the project's own commands cannot read anyway.
 */
interface RgLaunch {
  file: string;
  args: string[];
  /** The launch's environment, when it sets one (the sandbox's fixed prelude environment). */
  env?: Record<string, string>;
  stdio: StdioOptions;
  /** rg's path of a file -> project-relative path. */
  toRel(p: string): string;
  /** The request's glob when rg did not get it: MatchFilter applies it. */
  filterGlob: string | undefined;
  /** Who rg runs as, when not this process's user. */
  user: { uid: number; gid: number } | null;
}

/** A glob anchored at the folder it is matched from: a "/" before its end, and not starting with "**\/". */
function anchored(glob: string): boolean {
  const g = glob.replace(/^!/, '').replace(/\/$/, '');
  return g.includes('/') && !(g.startsWith('**/') && !g.slice(3).includes('/'));
}

function rgLaunch(req: SearchRequest, ctx: HandlerContext, target: OpenTarget, ignoreFile: 'walk' | 'root' | null): RgLaunch {
  const { root, config } = ctx;
  // Searches run in the sandbox commands run in (the config's sandbox is the one resolved at start).
  const plan = { ...planOf(config.commands, config.dataDir), network: false };
  const maxLine = config.search.maxLineBytes;
  if (plan.mode === 'bwrap') {
    const rgIgnore = ignoreFile === 'root' ? `${root}/.gitignore` : ignoreFile;
    const args = rgArgs(req, target.rel, rgIgnore, req.glob, maxLine);
    const rg = realRgPath();
    const launch = launchArgv({
      command: '',
      exec: [rg, ...args],
      cwd: root,
      root,
      home: null,
      env: {},
      limits: { addressSpaceBytes: config.search.maxMemoryBytes, cpuSeconds: 0, processes: 0, openFiles: 0, fileSizeBytes: 0 },
      owner: projectOwner(config, ctx.projectId),
      plan,
      projectReadOnly: true,
      extraReadOnly: [rg],
    });
    return {
      file: launch.file,
      args: launch.args,
      env: launch.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      toRel: (p) => projectRelative(root, posix.resolve(root, p)),
      filterGlob: undefined,
      user: launch.user ?? null,
    };
  }
  const stdio: StdioOptions = ['ignore', 'pipe', 'pipe', target.fd];
  const user = projectOwner(config, ctx.projectId);
  if (!target.isDir) {
    const args = rgArgs(req, FD_TARGET, ignoreFile, req.glob, maxLine);
    const prelude = limitPrelude(config.search.maxMemoryBytes, false);
    return { file: plan.launchers.bash, args: [...BASH, prelude, 'toolhost', rgPath, ...args], stdio, toRel: () => target.rel, filterGlob: undefined, user };
  }
  const below = target.rel !== '.';
  const filterGlob = below && req.glob !== undefined && anchored(req.glob) ? req.glob : undefined;
  const args = rgArgs(req, '.', ignoreFile === 'root' ? 'walk' : ignoreFile, filterGlob ? undefined : req.glob, maxLine);
  return {
    file: plan.launchers.bash,
    args: [...BASH, limitPrelude(config.search.maxMemoryBytes, true), 'toolhost', rgPath, ...args],
    stdio,
    toRel: (p) => projectRelative(root, resolve(root, target.rel, p)),
    filterGlob,
    user,
  };
}

let rgReal: string | undefined;
/** The rg binary's real path (node_modules may link it): bwrap binds it read-only at that path. */
function realRgPath(): string {
  rgReal ??= realpathSync(rgPath);
  return rgReal;
}

/**
 * bash's flags for the prelude: no rc files, ever (bash reads ~/.bashrc when its stdin is a socket, taking it for
 * rshd; stdin is /dev/null here, but the rule costs nothing).
 */
const BASH = ['--norc', '--noprofile', '-c'];

/**
 * The bash prelude that sets rg's limits, optionally enters the folder passed as fd 3, and execs the rest of its
 * arguments with an empty environment (bash itself would add PWD and SHLVL; rg needs none). A failed step exits
 * 125, never 1 (rg's "no match"); an rg that never ran prints no stats, so it cannot pass for a finished search
 * anyway. No core dumps: an rg out of memory aborts, and a 1 GiB core would be written for nothing.
 */
function limitPrelude(maxMemoryBytes: number, cdToFd3: boolean): string {
  const steps = ['ulimit -S -H -c 0'];
  const memory = ulimit('-v', 'Max address space', maxMemoryBytes, 1024);
  if (memory) steps.push(memory);
  if (cdToFd3) steps.push(`cd ${FD_TARGET}`);
  return `${steps.join(' && ')} || exit 125; exec -c "$@"`;
}

/** Searches the project with ripgrep; see the module comment for what the answer promises. */
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
  const target = openTarget(root, req.path);
  let run: RunOutcome;
  try {
    const rules = new GitignoreRules(root);
    const namedIgnored = target.isDir && target.rel !== '.' && (await rules.ignores(target.rel, true));
    // A folder .gitignore excludes, named as path, is searched whole (as file.list lists it); a file named as path
    // is searched whatever .gitignore says.
    const ignoreFile = namedIgnored ? null : target.rel === '.' || !target.isDir || !rootGitignoreIsFile(root) ? 'walk' : 'root';
    const launch = rgLaunch(req, ctx, target, ignoreFile);
    const filter = target.isDir ? new MatchFilter(namedIgnored ? null : rules, target.rel, launch.filterGlob) : null;
    run = await runRg(launch, {
      context: req.context_lines,
      maxResults: Math.min(req.max_results, config.search.maxResults),
      timeoutMs: config.search.timeoutS * 1000,
      maxRecordBytes: config.search.maxLineBytes + RECORD_SLACK_BYTES,
      signal,
      filter,
      fixedPath: target.isDir ? null : target.rel,
    });
  } finally {
    closeSync(target.fd); // the child has its own copy
  }
  if (run.end === 'cancelled') throw cancelled(signal, 'the search');
  if (run.end === 'failed') throw rgFailure(req, run.stderr);
  if (run.end === 'aborted' && run.matches.length === 0) {
    throw new ToolhostError(
      'search_failed',
      `the search stopped before it could finish: ${abortCause(run, config.search.maxMemoryBytes)}; nothing was found ` +
        'before that. Search a subfolder (path) or fewer files (glob, e.g. "!*.min.js" to leave out huge files)' +
        (run.skippedLong > 0 ? `; ${run.skippedLong} matching line(s) too long to show were seen first` : ''),
      { path: req.path },
    );
  }
  return answer(run, req, ctx);
};

/** Whether the root has a .gitignore rg can be given (a symlink or FIFO there is git's business, not rg's). */
function rootGitignoreIsFile(root: string): boolean {
  try {
    return lstatSync(join(root, '.gitignore')).isFile();
  } catch {
    return false;
  }
}

/** Why rg ended early, for the caller. */
function abortCause(run: RunOutcome, maxMemoryBytes: number): string {
  if (/memory allocation|out of memory|failed to spawn thread|Cannot allocate memory/i.test(run.stderr) || run.signal === 'SIGABRT' || run.code === 134) {
    return `ripgrep ran out of memory (search.maxMemoryBytes is ${maxMemoryBytes} bytes), most likely on a huge file`;
  }
  const first = run.stderr.split('\n').find((l) => l.trim() !== '');
  const how = run.signal ? `signal ${run.signal}` : `exit code ${run.code}`;
  return `ripgrep ended with ${how}${first ? ` (${first.slice(0, 300)})` : ''}`;
}

/** Folds a run into the answer, saying plainly what is missing. */
function answer(run: RunOutcome, req: SearchRequest, ctx: HandlerContext): SearchResult {
  const s = ctx.config.search;
  const result: SearchResult = { matches: run.matches, truncated: run.end === 'full', complete: true };
  const reasons: IncompleteReason[] = [];
  const notes: string[] = [];
  if (run.end === 'full') {
    reasons.push('max_results');
    notes.push(
      `stopped at max_results (${Math.min(req.max_results, s.maxResults)}); there may be more matches: narrow the ` +
        `search with path or glob, or ask for more (max_results up to ${s.maxResults})`,
    );
  }
  if (run.end === 'timeout') {
    result.timed_out = true;
    reasons.push('timed_out');
    notes.push(
      `stopped after ${s.timeoutS} s (search.timeoutS); files not reached by then were not searched: search a ` +
        'subfolder (path) or fewer files (glob)',
    );
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
  if (run.errors.length > 0) {
    result.errors = run.errors.slice(0, MAX_LISTED);
    reasons.push('unreadable_files');
    notes.push(
      `ripgrep could not read ${run.errors.length} file(s) or folder(s) (errors lists them), so their content was not ` +
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

interface RunOptions {
  context: number;
  maxResults: number;
  timeoutMs: number;
  maxRecordBytes: number;
  signal: AbortSignal;
  filter: MatchFilter | null;
  /** The project-relative path of a file target: every record is in it. */
  fixedPath: string | null;
}

/**
 * How a run ended. States, each set once, the first one wins:
 *   done      rg got to the end (its stats block was printed), whatever its exit code (2: some files unreadable)
 *   full      max_results matches collected (plus the last one's after-context), rg killed
 *   timeout   search.timeoutS passed, rg killed
 *   cancelled ctx.signal fired, rg killed
 *   failed    rg exited 2 without printing anything (bad regex, bad glob)
 *   aborted   rg ended without its stats by itself: killed by a signal (out of memory), or a launch failure
 */
type RunEnd = 'done' | 'full' | 'timeout' | 'cancelled' | 'failed' | 'aborted';

interface RunOutcome {
  end: RunEnd;
  matches: SearchMatch[];
  skippedLong: number;
  longLines: { path: string; line: number }[];
  /** rg's per-path error messages, paths project-relative. */
  errors: string[];
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One record of rg's output: a line of a file, or a line too long to keep (`body` null, `head` its start). */
interface RgRecord {
  /** The path bytes, or null when they did not parse. */
  path: Buffer | null;
  body: Buffer | null;
  head: Buffer;
}

/**
 * Splits rg's output into records (see {@link rgArgs}) as chunks arrive, holding at most one record: a record
 * over `maxBody` bytes is dropped but for its first bytes. What follows the last record (warnings, the stats
 * block) is kept as {@link RgOutput.tail}.
 */
class RgOutput {
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
function recordPath(raw: Buffer): string {
  const s = raw.toString('utf8');
  if (!s.includes('\n')) return s;
  const lines = s.split('\n');
  let i = 0;
  while (i < lines.length - 1 && (lines[i] === '' || RG_STDOUT_WARNING.test(lines[i]!))) i++;
  return lines.slice(i).join('\n');
}

/** `s` cut to about `max` characters, keeping its start and end (a path's end names the file). */
function shorten(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max / 2 - 1)}…${s.slice(-(max / 2))}`;
}

/** rg's message about one path it could not read: `rg: PATH: MESSAGE (os error N)`. */
const RG_PATH_ERROR = /^rg: (.+): ([^:]+ \(os error \d+\))$/;

/** rg's per-path errors from its stderr, with paths made project-relative; other lines are not quoted. */
function pathErrors(stderr: string, toRel: (p: string) => string): string[] {
  const out: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = RG_PATH_ERROR.exec(line);
    if (m) out.push(`${shorten(toRel(m[1]!), 200)}: ${shorten(m[2]!, 200)}`);
    else if (line.startsWith('rg: ')) out.push(shorten(line.slice(4), 400));
  }
  return out;
}

/** Runs rg and folds its output into matches; returns once rg has exited and its pipes are closed. */
async function runRg(launch: RgLaunch, o: RunOptions): Promise<RunOutcome> {
  const env = launch.env ?? { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
  // Its own process group: a stop kills rg wherever it is (in the sandbox's pid namespace too), even if bwrap's
  // death-with-parent never reached it.
  const child = spawn(launch.file, launch.args, { cwd: '/', stdio: launch.stdio, env, detached: true, ...launch.user });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
    child.once('error', (err) => rej(new ToolhostError('internal', `cannot run ripgrep (${rgPath}): ${err.message}`)));
    child.once('close', (code, signal) => res({ code, signal }));
  });
  closed.catch(() => {}); // awaited below; this only keeps an early rejection from being reported as unhandled
  const stdout = child.stdout!;
  const stderrStream = child.stderr!;

  let end: RunEnd | null = null;
  const stop = (why: RunEnd): void => {
    if (end !== null) return;
    end = why;
    // rg keeps no state worth a graceful exit.
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL'); // the group is gone already, or never formed
    }
  };
  const timer = setTimeout(() => stop('timeout'), o.timeoutMs);
  const onAbort = (): void => stop('cancelled');
  o.signal.addEventListener('abort', onAbort, { once: true });
  if (o.signal.aborted) stop('cancelled'); // fired while the target was being checked: no event will come

  let stderr = '';
  stderrStream.on('data', (chunk: Buffer) => {
    if (stderr.length < MAX_STDERR_BYTES) stderr += chunk.toString('utf8');
  });

  const matches: SearchMatch[] = [];
  let skippedLong = 0;
  const longLines: { path: string; line: number }[] = [];
  let records = 0;
  // State of the current file: whether it survives the ignore filter, its last `context` lines, and the matches
  // that are still collecting after-lines. rg prints a file's records together.
  let rawPath: string | null = null;
  let path = '';
  let kept = true;
  let recent: { line: number; text: string }[] = [];
  let open: SearchMatch[] = [];

  const onLine = (isMatch: boolean, n: number, text: string, start: number, long: boolean): void => {
    // A line can be after-context of several earlier matches and before-context of the next: adjacent matches
    // share their context lines, and a matching line is context of its neighbours too.
    const shown = long ? (isMatch ? PLACEHOLDER_MATCH : PLACEHOLDER_CONTEXT) : cutLine(text);
    for (const m of open) if (n > m.line && n <= m.line + o.context) m.after.push(shown);
    open = open.filter((m) => n < m.line + o.context);
    if (isMatch && long) {
      skippedLong++;
      if (longLines.length < MAX_LISTED) longLines.push({ path, line: n });
    } else if (isMatch) {
      if (matches.length >= o.maxResults) return stop('full');
      const m: SearchMatch = {
        path,
        line: n,
        column: start + 1,
        text: cutLine(text, start),
        before: recent.filter((r) => r.line >= n - o.context).map((r) => r.text),
        after: [],
      };
      matches.push(m);
      if (o.context > 0) open.push(m);
    }
    if (o.context > 0) {
      recent.push({ line: n, text: shown });
      if (recent.length > o.context) recent.shift();
    }
    if (matches.length >= o.maxResults && open.length === 0) stop('full');
  };

  const onRecord = async (r: RgRecord): Promise<void> => {
    records++;
    const p = r.path === null ? null : recordPath(r.path);
    if (p === null || p !== rawPath) {
      // A new file: the last match of the previous one gets no more after-lines.
      if (matches.length >= o.maxResults) return stop('full');
      rawPath = p;
      path = o.fixedPath ?? (p === null ? '?' : launch.toRel(p));
      kept = o.filter ? await o.filter.keeps(path) : true;
      recent = [];
      open = [];
    }
    if (!kept) return;
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
    if (r.body === null) return onLine(isMatch, n, '', 0, true);
    const raw = r.body.subarray(rest);
    const text = stripCr(raw.toString('utf8'));
    const long = raw.length < 64 && (isMatch ? PLACEHOLDER_MATCH_RE.test(text) : text === PLACEHOLDER_CONTEXT);
    const start = isMatch && !long ? codePoints(raw.subarray(0, byteColumn - 1).toString('utf8')) : 0;
    onLine(isMatch, n, text, start, long);
  };

  const output = new RgOutput(o.maxRecordBytes);
  try {
    outer: for await (const chunk of stdout) {
      for (const r of output.push(chunk as Buffer)) {
        if (end !== null) break outer;
        await onRecord(r);
      }
      if (end !== null) break;
    }
  } catch (err) {
    stop('failed');
    await closed.catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener('abort', onAbort);
  }
  const { code, signal } = await closed;
  if (end === null) {
    if (/(?:^|\n)\d+ files searched\n/.test(output.tail)) end = 'done';
    else if (code === 2 && records === 0 && output.tail === '') end = 'failed';
    else end = 'aborted';
  }
  const errors = end === 'failed' ? [] : pathErrors(stderr, launch.toRel);
  return { end, matches, skippedLong, longLines, errors, stderr, code, signal };
}
