/**
 * What every command run in a pool thread shares, whether it is one `bash -c` (execute.ts) or one exec on a
 * persistent shell (session-host.ts): where it runs (its cwd, checked where it really is, its project's uid and
 * HOME), its logs with their progress messages, and the {@link ExecuteResult} its record turns into the answer.
 */
import { lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from '../config/schema.js';
import { headAndTail, heldRegion } from '../lib/process/command-output.js';
import { jobLogPaths, jobLogsDir } from '../lib/process/job-logs.js';
import { LogSpool } from '../lib/process/log-spool.js';
import type { CapturedOutput } from '../lib/process/output-buffer.js';
import { chownTree, type Owner, ownedDir, projectOwner } from '../lib/process/owner.js';
import { reachFolder, withFileErrors } from '../lib/safe-fs.js';
import type { HandlerContext } from '../lib/tool.js';
import { outputBudget } from './command-text.js';
import type { ProgressMessage } from './protocol.js';

/** What a command's run was, for its record (which turns it into the caller's answer). */
export interface ExecuteResult {
  job_id: string;
  exit_code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  timed_out: boolean;
  cancelled: boolean;
  duration_ms: number;
  truncated: { stdout: boolean; stderr: boolean };
  omitted_bytes: { stdout: number; stderr: number };
  omitted_lines: { stdout: number; stderr: number };
  omitted_offset: { stdout: number | null; stderr: number | null };
  /** Bytes of each stream spooled to disk: where GET /jobs/:id continues. */
  stdout_offset: number;
  stderr_offset: number;
  /** Bytes beyond commands.maxLogBytes that were not spooled. */
  log_dropped_bytes: { stdout: number; stderr: number };
  /** Whether the kept output had bytes that are not UTF-8 (shown as U+FFFD). */
  invalid_utf8: { stdout: boolean; stderr: boolean };
  /** The session an exec ran on (session_exec), and whether its shell had to be restarted. */
  session?: { session_id: string; restarted: boolean };
}

/** Where a command runs: its cwd (absolute), HOME and uid. */
export interface CommandPlace {
  cwd: string;
  home: string;
  owner: Owner | null;
}

/**
 * The cwd `rel` of the project, opened and checked where it really is (a command may swap it for a symlink at any
 * moment; the sandbox resolves it again in its own view, where nothing outside exists), and the project's HOME
 * outside the working copy (so tool caches, ~/.npm, are not packed into the project), both the project uid's.
 */
export function commandPlace(ctx: Pick<HandlerContext, 'root' | 'config' | 'projectId'>, rel: string | undefined): CommandPlace {
  const cwd = join(
    ctx.root,
    withFileErrors(ctx.root, rel ?? '.', () => {
      const at = reachFolder(ctx.root, rel ?? '.');
      at.close();
      return at.rel;
    }),
  );
  // A copy extracted before uids were given out is handed over on its first command.
  const owner = projectOwner(ctx.config, ctx.projectId);
  if (owner && statSync(ctx.root).uid !== owner.uid) chownTree(ctx.root, owner);
  const home = join(ctx.config.dataDir, 'homes', ctx.projectId);
  mkdirSync(dirname(home), { recursive: true, mode: 0o711 });
  ownedDir(home, owner);
  if (owner && needsHandover(home, owner)) chownTree(home, owner);
  mkdirSync(jobLogsDir(ctx.config.dataDir), { recursive: true, mode: 0o700 });
  return { cwd, home, owner };
}

const handedOver = new Set<string>();
/** True once per thread for a HOME made before uids were given out (its contents still root's). */
function needsHandover(home: string, owner: { uid: number }): boolean {
  if (handedOver.has(home)) return false;
  handedOver.add(home);
  return readdirSync(home, { withFileTypes: true }).some((d) => lstatSync(join(home, d.name)).uid !== owner.uid);
}

/** A command's two logs, and the progress messages that tell the supervisor how far they are. */
export interface CommandLogs {
  stdout: LogSpool;
  stderr: LogSpool;
  /** Closes both logs and posts the final sizes. */
  close(): Promise<void>;
}

/** Opens the logs of job `jobId`; their growth is posted on `port` at most every PROGRESS_MS. */
export function commandLogs(config: Config, jobId: string, port: HandlerContext['port']): CommandLogs {
  const paths = jobLogPaths(config.dataDir, jobId);
  let timer: NodeJS.Timeout | undefined;
  const post = (): void => {
    timer = undefined;
    port?.postMessage({ t: 'progress', stdout: logs.stdout.written, stderr: logs.stderr.written } satisfies ProgressMessage);
  };
  const notify = (): void => {
    timer ??= setTimeout(post, PROGRESS_MS);
  };
  const max = config.commands.maxLogBytes;
  const logs: CommandLogs = {
    stdout: new LogSpool(paths.stdout, max, notify),
    stderr: new LogSpool(paths.stderr, max, notify),
    close: async () => {
      await Promise.all([logs.stdout.close(), logs.stderr.close()]);
      clearTimeout(timer);
      post();
    },
  };
  return logs;
}

/** Longest delay between output reaching disk and the supervisor hearing of it. */
const PROGRESS_MS = 25;

/** How a run ended, as the two ways of running a command report it. */
export interface RunOutcome {
  exitCode: number;
  signal: string | null;
  stdout: CapturedOutput;
  stderr: CapturedOutput;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
}

/**
 * The run's result: what the thread held in memory (the true tail even past commands.maxLogBytes), cut to the
 * call's budget; the notice of a cut names the log offset where the left-out part starts.
 */
export async function commandResult(
  r: RunOutcome,
  logs: CommandLogs,
  config: Config,
  jobId: string,
  maxOutputChars: number | undefined,
): Promise<ExecuteResult> {
  const ends = { stdout: logs.stdout.written, stderr: logs.stderr.written };
  const { stdout: out, stderr: err } = await headAndTail({ stdout: heldRegion(r.stdout), stderr: heldRegion(r.stderr) }, outputBudget(config, maxOutputChars), {
    jobId,
    ends,
    logged: { stdout: logs.stdout.dropped > 0 ? ends.stdout : null, stderr: logs.stderr.dropped > 0 ? ends.stderr : null },
  });
  return {
    job_id: jobId,
    exit_code: r.exitCode,
    signal: r.signal,
    stdout: out.text,
    stderr: err.text,
    timed_out: r.timedOut,
    cancelled: r.cancelled,
    duration_ms: r.durationMs,
    truncated: { stdout: out.omittedBytes > 0, stderr: err.omittedBytes > 0 },
    omitted_bytes: { stdout: out.omittedBytes, stderr: err.omittedBytes },
    omitted_lines: { stdout: out.omittedLines, stderr: err.omittedLines },
    omitted_offset: { stdout: out.omittedOffset, stderr: err.omittedOffset },
    stdout_offset: ends.stdout,
    stderr_offset: ends.stderr,
    log_dropped_bytes: { stdout: logs.stdout.dropped, stderr: logs.stderr.dropped },
    invalid_utf8: { stdout: out.invalidUtf8, stderr: err.invalidUtf8 },
  };
}
