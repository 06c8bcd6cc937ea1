/** `POST /execute`: one shell command in the project, as one child process with its own process group. */
import { lstatSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { createJobCgroup } from '../lib/process/cgroup.js';
import { headAndTail, heldRegion } from '../lib/process/command-output.js';
import { jobLogPaths, jobLogsDir } from '../lib/process/job-logs.js';
import { LogSpool } from '../lib/process/log-spool.js';
import { chownTree, ownedDir, projectOwner } from '../lib/process/owner.js';
import { commandEnv, runCommand } from '../lib/process/run-command.js';
import { launchArgv, planOf } from '../lib/process/sandbox.js';
import { reachFolder, withFileErrors } from '../lib/safe-fs.js';
import { noNul, projectId, relPath } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';
import { commandText, MAX_BUDGET_FACTOR, MAX_OUTPUT_CHARS_DOC, outputBudget, outputBudgetLimit } from './command-text.js';
import { commandView } from './command-view.js';
import type { ProgressMessage } from './protocol.js';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names must match ^[A-Za-z_][A-Za-z0-9_]*$');

/**
 * Environment variables as a record, or as a list of {name, value} pairs: the list is the form OpenAI's strict
 * mode can express (it has no free-form records, lib/strict-schema.ts). Both become the same record.
 */
const envField = z.union([
  z.record(envName, noNul(z.string())).describe('As {"NAME": "value"}.'),
  z
    .array(z.strictObject({ name: envName, value: noNul(z.string()) }))
    .refine((pairs) => new Set(pairs.map((p) => p.name)).size === pairs.length, 'each env name may appear once')
    .transform((pairs): Record<string, string> => Object.fromEntries(pairs.map((p) => [p.name, p.value])))
    .describe('As [{"name": "NAME", "value": "value"}].'),
]);

export const executeRequest = z.strictObject({
  project_id: projectId,
  command: noNul(z.string().min(1).max(1_000_000)).describe('Shell command, run as `bash -c command`.'),
  cwd: relPath.optional().describe('Working directory relative to the project root (default: the root).'),
  env: envField.optional().describe('Extra environment variables for the command.'),
  timeout_s: z.number().positive().optional().describe('Kill the command tree after this many seconds.'),
  wait_s: z
    .number()
    .min(0)
    .max(190)
    .optional()
    .describe('How long this request waits; a command still running then is answered with status "running" and keeps running.'),
  background: z.boolean().default(false).describe('Answer at once with the job_id (dev servers, watchers); follow it with the jobs API.'),
  stdin: z.enum(['null', 'pipe']).default('null').describe('"pipe" keeps stdin open for POST /jobs/:id/input; "null" makes prompts fail fast.'),
  max_output_chars: z.number().int().min(1000).optional().describe(MAX_OUTPUT_CHARS_DOC),
});
export type ExecuteRequest = z.infer<typeof executeRequest>;

/** The execute tool. Its answer is the command's view, made by its record from the {@link ExecuteResult}. */
export const executeTool = jobTool({
  name: 'execute',
  title: 'Run a shell command',
  route: { method: 'POST', path: '/execute' },
  input: executeRequest,
  output: commandView,
  readOnly: false,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'not_a_directory'],
  describe: ({ commands: c, budgets: b }) =>
    'Run a shell command in the project with `bash -c` and return its exit_code, stdout and stderr. Use it to build, ' +
    'run tests and scripts, use git, install dependencies, or inspect what the file tools cannot (binary files, processes). ' +
    "It runs in the project root (or `cwd`) with a clean environment: none of the server's secrets, CI=1, no pager, no " +
    'prompts; stdin is closed unless `stdin: "pipe"` (then write to it with job_input), so pass flags such as -y ' +
    'instead of answering prompts. ' +
    `The call waits up to wait_s (default ${c.defaultWaitS} s); a command still running then is answered with ` +
    'status "running" and its job_id and keeps running: follow it with job_status. `background: true` answers at once ' +
    '(dev servers, watchers). ' +
    `The whole process tree is killed after timeout_s (default ${c.defaultTimeoutS} s, at most ${c.maxTimeoutS} s) and ` +
    `the answer says timed_out: true. The answer shows at most ${b.outputChars} characters of output, stdout and stderr ` +
    `together (max_output_chars asks for another budget, up to ${MAX_BUDGET_FACTOR * b.outputChars}): a longer output is cut to its head ` +
    'and tail on line boundaries, and one line where it was cut says how many lines were left out and the job_status ' +
    'call (job_id, stdout_offset) that reads them; job_status pages through the whole log within the same budget. ' +
    'Prefer narrowing the output (grep, tail, head) to paging through it. Processes a command leaves behind ' +
    'are killed when it ends (start servers with background: true). A non-zero exit_code is a normal result, not an error.',
  limits: (req, config) =>
    req.timeout_s !== undefined && req.timeout_s > config.commands.maxTimeoutS
      ? `timeout_s ${req.timeout_s} exceeds the server's maximum of ${config.commands.maxTimeoutS} s; ask for less`
      : outputBudgetLimit(req.max_output_chars, config),
  toModel: (view) => commandText(view),
  examples: [{ project_id: 'demo', command: 'ls -la && git status --short' }],
  job: { type: 'execute', lane: 'commands', mutates: true, handler: execute },
});

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
}

async function execute(req: ExecuteRequest, ctx: HandlerContext): Promise<ExecuteResult> {
  // Opened and checked where it really is (a command may swap it for a symlink at any moment); the prelude only
  // starts there, and the sandbox resolves the path again in its own view, where nothing outside exists.
  const cwd = join(
    ctx.root,
    withFileErrors(ctx.root, req.cwd ?? '.', () => {
      const at = reachFolder(ctx.root, req.cwd ?? '.');
      at.close();
      return at.rel;
    }),
  );
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
    env: commandEnv({ home, env: req.env, jobId: ctx.jobId, path: c.path }),
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
    path: c.path,
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
  // The answer's output: what the thread held in memory (the true tail even past commands.maxLogBytes), cut to
  // the call's budget; the notice of a cut names the log offset where the left-out part starts.
  const ends = { stdout: logs.stdout.written, stderr: logs.stderr.written };
  const { stdout: out, stderr: err } = await headAndTail(
    { stdout: heldRegion(r.stdout), stderr: heldRegion(r.stderr) },
    outputBudget(ctx.config, req.max_output_chars),
    {
      jobId: ctx.jobId,
      ends,
      logged: { stdout: logs.stdout.dropped > 0 ? ends.stdout : null, stderr: logs.stderr.dropped > 0 ? ends.stderr : null },
    },
  );
  return {
    job_id: ctx.jobId,
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
