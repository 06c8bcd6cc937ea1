/** `POST /execute`: one shell command in the project, as one child process with its own process group. */
import { z } from 'zod';
import { createJobCgroup } from '../lib/process/cgroup.js';
import { commandEnv, runCommand } from '../lib/process/run-command.js';
import { launchArgv, planOf } from '../lib/process/sandbox.js';
import { commandWait, noNul, projectId, relPath, shellCommand } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';
import { commandLogs, commandPlace, commandResult, type ExecuteResult } from './command-run.js';
import { commandLimit, commandText, MAX_BUDGET_FACTOR, MAX_OUTPUT_CHARS_DOC } from './command-text.js';
import { commandView } from './command-view.js';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names must match ^[A-Za-z_][A-Za-z0-9_]*$');

/**
 * Environment variables as a record, or as a list of {name, value} pairs: the list is the form OpenAI's strict
 * mode can express (it has no free-form records, lib/strict-schema.ts). Both become the same record.
 */
export const envField = z.union([
  z.record(envName, noNul(z.string())).describe('As {"NAME": "value"}.'),
  z
    .array(z.strictObject({ name: envName, value: noNul(z.string()) }))
    .refine((pairs) => new Set(pairs.map((p) => p.name)).size === pairs.length, 'each env name may appear once')
    .transform((pairs): Record<string, string> => Object.fromEntries(pairs.map((p) => [p.name, p.value])))
    .describe('As [{"name": "NAME", "value": "value"}].'),
]);

export const executeRequest = z.strictObject({
  project_id: projectId,
  command: shellCommand.describe('Shell command, run as `bash -c command`.'),
  cwd: relPath.optional().describe('Working directory relative to the project root (default: the root).'),
  env: envField.optional().describe('Extra environment variables for the command.'),
  timeout_s: z.number().positive().optional().describe('Kill the command tree after this many seconds.'),
  wait_s: commandWait.optional(),
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
  limits: (req, config) => commandLimit(req, config),
  toModel: (view) => commandText(view),
  examples: [{ project_id: 'demo', command: 'ls -la && git status --short' }],
  job: { type: 'execute', lane: 'commands', mutates: true, handler: execute },
});

export type { ExecuteResult } from './command-run.js';

async function execute(req: ExecuteRequest, ctx: HandlerContext): Promise<ExecuteResult> {
  const { cwd, home, owner } = commandPlace(ctx, req.cwd);
  const c = ctx.config.commands;
  const logs = commandLogs(ctx.config, ctx.jobId, ctx.port);
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
    nice: c.nice,
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
    // The cgroup goes beside the answer: nothing of the result depends on it, and a sandbox's pid 1 still tearing
    // down its namespaces may keep it busy for a moment (remove() retries, and never rejects).
    void cgroup?.remove();
    await logs.close();
  });
  return commandResult(r, logs, ctx.config, ctx.jobId, req.max_output_chars);
}
