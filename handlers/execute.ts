/** `POST /execute`: one shell command in the project, as one child process with its own process group. */
import { lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { reachFolder, withFileErrors } from '../lib/safe-fs.js';
import { jobLogPaths, jobLogsDir } from '../lib/process/job-logs.js';
import { LogSpool } from '../lib/process/log-spool.js';
import { commandEnv, runCommand } from '../lib/process/run-command.js';
import { createJobCgroup } from '../lib/process/cgroup.js';
import { chownTree, ownedDir, projectOwner } from '../lib/process/owner.js';
import { launchArgv, planOf } from '../lib/process/sandbox.js';
import type { ExecuteRequest } from '../lib/schemas.js';
import type { Handler, HandlerContext, ProgressMessage } from './context.js';

/** The JSON answer of /execute. */
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
  /** Bytes of each stream spooled to disk: where GET /jobs/:id continues. */
  stdout_offset: number;
  stderr_offset: number;
  /** Bytes beyond commands.maxLogBytes that were not spooled. */
  log_dropped_bytes: { stdout: number; stderr: number };
}

export const execute: Handler<ExecuteRequest, ExecuteResult> = async (req, ctx) => {
  // Opened and checked where it really is (a command may swap it for a symlink at any moment); the prelude only
  // starts there, and the sandbox resolves the path again in its own view, where nothing outside exists.
  const cwd = join(ctx.root, withFileErrors(ctx.root, req.cwd ?? '.', () => {
    const at = reachFolder(ctx.root, req.cwd ?? '.');
    at.close();
    return at.rel;
  }));
  // Each project gets its own HOME outside the working copy, so tool caches (~/.npm, ~/.cache) are not packed
  // into the project. Both belong to the project's uid (toolhost as root); a copy extracted before uids were
  // given out is handed over on its first command.
  const owner = projectOwner(ctx.config, ctx.projectId);
  if (owner && statSync(ctx.root).uid !== owner.uid) chownTree(ctx.root, owner);
  const home = join(ctx.config.dataDir, 'homes', ctx.projectId);
  mkdirSync(dirname(home), { recursive: true, mode: 0o711 });
  ownedDir(home, owner);
  if (owner && needsHandover(home, owner)) chownTree(home, owner);
  mkdirSync(jobLogsDir(ctx.config.dataDir), { recursive: true, mode: 0o700 });
  const c = ctx.config.commands;
  const paths = jobLogPaths(ctx.config.dataDir, ctx.jobId);
  const progress = throttledProgress(ctx);
  const logs = {
    stdout: new LogSpool(paths.stdout, c.maxLogBytes, progress.notify),
    stderr: new LogSpool(paths.stderr, c.maxLogBytes, progress.notify),
  };
  progress.bind(logs);
  const cgroup = c.limits.processes > 0 ? createJobCgroup(ctx.jobId, c.limits.processes) : null;
  const argv = launchArgv({
    command: req.command,
    cwd,
    root: ctx.root,
    home,
    env: commandEnv({ home, env: req.env, jobId: ctx.jobId }),
    limits: c.limits,
    cgroupProcs: cgroup?.procsFile,
    owner,
    plan: planOf(c, ctx.config.dataDir),
  });
  const r = await runCommand({
    command: req.command,
    cwd,
    home,
    env: req.env,
    jobId: ctx.jobId,
    timeoutMs: Math.min(req.timeout_s ?? (req.background ? c.maxTimeoutS : c.defaultTimeoutS), c.maxTimeoutS) * 1000,
    killGraceMs: c.killGraceS * 1000,
    maxOutputBytes: c.maxOutputBytes,
    signal: ctx.signal,
    stdin: req.stdin === 'pipe' ? 'pipe' : 'ignore',
    onStdin: (stdin) =>
      ctx.onStdin?.((m) => {
        if (m.data) stdin.write(m.data);
        if (m.eof) stdin.end();
      }),
    logs,
    argv,
    treeMembers: cgroup?.pids,
  }).finally(async () => {
    await Promise.all([logs.stdout.close(), logs.stderr.close(), cgroup?.remove()]);
    progress.flush();
  });
  return {
    job_id: ctx.jobId,
    exit_code: r.exitCode,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr,
    timed_out: r.timedOut,
    cancelled: r.cancelled,
    duration_ms: r.durationMs,
    truncated: r.truncated,
    omitted_bytes: r.omittedBytes,
    stdout_offset: logs.stdout.written,
    stderr_offset: logs.stderr.written,
    log_dropped_bytes: { stdout: logs.stdout.dropped, stderr: logs.stderr.dropped },
  };
};

const handedOver = new Set<string>();
/** True once per thread for a HOME made before uids were given out (its contents still root's). */
function needsHandover(home: string, owner: { uid: number }): boolean {
  if (handedOver.has(home)) return false;
  handedOver.add(home);
  return readdirSync(home, { withFileTypes: true }).some((d) => lstatSync(join(home, d.name)).uid !== owner.uid);
}

/** Posts the spooled sizes to the supervisor at most every PROGRESS_MS, and once more at the end. */
function throttledProgress(ctx: HandlerContext) {
  let logs: { stdout: LogSpool; stderr: LogSpool } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const post = (): void => {
    timer = undefined;
    if (logs) ctx.port?.postMessage({ t: 'progress', stdout: logs.stdout.written, stderr: logs.stderr.written } satisfies ProgressMessage);
  };
  return {
    bind(l: typeof logs) {
      logs = l;
    },
    notify: () => {
      timer ??= setTimeout(post, PROGRESS_MS);
    },
    flush() {
      clearTimeout(timer);
      post();
    },
  };
}

/** Longest delay between output reaching disk and the supervisor hearing of it. */
const PROGRESS_MS = 25;
