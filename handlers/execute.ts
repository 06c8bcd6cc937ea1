/** `POST /execute`: one shell command in the project, as one child process with its own process group. */
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ToolhostError, errnoCode } from '../lib/errors.js';
import { resolveInProject } from '../lib/paths.js';
import { runCommand } from '../lib/process/run-command.js';
import type { ExecuteRequest } from '../lib/schemas.js';
import type { Handler } from './context.js';

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
}

export const execute: Handler<ExecuteRequest, ExecuteResult> = async (req, ctx) => {
  const cwd = await resolveInProject(ctx.root, req.cwd ?? '.');
  try {
    if (!(await stat(cwd)).isDirectory()) {
      throw new ToolhostError('not_a_directory', `cwd "${req.cwd}" is a file; pass a folder of the project`, { path: req.cwd });
    }
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new ToolhostError('file_not_found', `cwd "${req.cwd}" does not exist in the project; create it first or pass another folder`, { path: req.cwd });
    }
    throw err;
  }
  // Each project gets its own HOME outside the working copy, so tool caches (~/.npm, ~/.cache) are not packed
  // into the project.
  const home = join(ctx.config.dataDir, 'homes', ctx.projectId);
  await mkdir(home, { recursive: true });
  const c = ctx.config.commands;
  const r = await runCommand({
    command: req.command,
    cwd,
    home,
    env: req.env,
    jobId: ctx.jobId,
    timeoutMs: Math.min(req.timeout_s ?? c.defaultTimeoutS, c.maxTimeoutS) * 1000,
    killGraceMs: c.killGraceS * 1000,
    maxOutputBytes: c.maxOutputBytes,
    signal: ctx.signal,
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
  };
};
