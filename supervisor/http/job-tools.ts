/**
 * The jobs tools, for commands that outlive their request: follow one (long-poll by offsets), write to its stdin,
 * list them, cancel one. The supervisor answers them itself from the jobs API (supervisor/jobs-api.ts), which
 * reads the command's record wherever it runs; nothing is queued.
 */
import { z } from 'zod';
import { commandText, MAX_OUTPUT_CHARS_DOC, outputBudgetLimit } from '../../handlers/command-text.js';
import { commandView, jobListItem } from '../../handlers/command-view.js';
import { jobId, projectId } from '../../lib/schemas.js';
import type { ToolBase } from '../../lib/tool.js';
import type { AppDeps, ToolCall } from './deps.js';

/** A tool the supervisor answers itself. */
export interface SupervisorTool<In extends z.ZodObject = z.ZodObject, Out extends z.ZodType = z.ZodType> extends ToolBase<In, Out> {
  /** Runs the tool on validated input; `call.signal` fires when the caller went away. */
  serve(d: AppDeps, input: z.output<In>, call: ToolCall): Promise<z.input<Out>>;
}

/** Checks a supervisor tool's definition against its schemas (and infers their types). */
export function supervisorTool<In extends z.ZodObject, Out extends z.ZodType>(tool: SupervisorTool<In, Out>): SupervisorTool<In, Out> {
  return tool;
}

const offset = z.coerce.number().int().min(0).default(0);
const theJobId = jobId.describe('The job_id that execute returned.');

/** Where to continue reading a command's output: GET /jobs/:id and its event stream. */
export const outputOffsets = z.strictObject({
  stdout_offset: offset.describe('Byte offset in stdout already seen; only newer output is returned.'),
  stderr_offset: offset.describe('Byte offset in stderr already seen.'),
});

export const jobStatusTool = supervisorTool({
  name: 'job_status',
  title: 'Follow a command job',
  route: { method: 'GET', path: '/jobs/{job_id}', notFound: 'job_not_found' },
  input: z.strictObject({
    job_id: theJobId,
    wait_s: z.coerce.number().min(0).max(190).default(30).describe('Answer at the latest after this long (at most 190).'),
    ...outputOffsets.shape,
    max_output_chars: z.coerce.number().int().min(1000).optional().describe(MAX_OUTPUT_CHARS_DOC),
  }),
  output: commandView,
  readOnly: true,
  errors: ['job_not_found'],
  describe: ({ jobs, budgets }) =>
    "Get a command job's status and its output since the offsets you pass (stdout_offset and stderr_offset from the " +
    'previous answer, or from the line of an answer that says what it left out; 0 for everything). Waits up to wait_s ' +
    '(default 30, at most 190) for new output or the end, so calling it in a loop does not spin. Returns status ' +
    '(queued, running, completed, timed_out, cancelled, failed, or interrupted: the server restarted while it ran, its output up ' +
    'to then is shown, run it again if needed), exit_code once done, the new stdout and stderr text ' +
    `(a page of at most the command's own budget, ${budgets.outputChars} characters for both unless execute asked for ` +
    'max_output_chars, ending on a line boundary; max_output_chars here asks for another size) and the offsets to pass next; more_bytes above 0 means more output is already there. ' +
    `Finished jobs are kept ${jobs.retentionMinutes} minutes, across restarts of the server.`,
  limits: (q, config) => outputBudgetLimit(q.max_output_chars, config),
  toModel: (view) => commandText(view),
  examples: [{ job_id: '00000000-0000-4000-8000-000000000000', stdout_offset: 0, stderr_offset: 0, wait_s: 5 }],
  serve: (d, q, { signal }) =>
    // Without max_output_chars a page is as large as the command's own answers were.
    d.jobs.page(q.job_id, { stdout: q.stdout_offset, stderr: q.stderr_offset }, q.wait_s * 1000, signal, q.max_output_chars),
});

export const jobInputTool = supervisorTool({
  name: 'job_input',
  title: 'Send input to a command',
  route: { method: 'POST', path: '/jobs/{job_id}/input', notFound: 'job_not_found' },
  input: z.strictObject({
    job_id: theJobId,
    data: z.string().max(1_000_000).describe('Text written to the command\'s stdin (add "\\n" to end a line).'),
    eof: z.boolean().default(false).describe('Close stdin after writing.'),
  }),
  output: z.strictObject({ job_id: z.string(), bytes: z.number().int().describe('Bytes written.'), eof: z.boolean() }),
  readOnly: false,
  errors: ['job_not_found', 'job_finished', 'stdin_not_piped'],
  describe: () =>
    'Write text to the stdin of a command started with stdin: "pipe" (end a line with "\\n"; eof: true closes stdin). ' +
    'Use it to answer a prompt or drive a REPL, then read the reaction with job_status.',
  examples: [{ job_id: '00000000-0000-4000-8000-000000000000', data: 'yes\n' }],
  serve: async (d, q) => {
    await d.jobs.input(q.job_id, q.data, q.eof);
    return { job_id: q.job_id, bytes: Buffer.byteLength(q.data), eof: q.eof };
  },
});

export const jobListTool = supervisorTool({
  name: 'job_list',
  title: 'List command jobs',
  route: { method: 'GET', path: '/jobs' },
  input: z.strictObject({ project_id: projectId.optional() }),
  output: z.strictObject({ jobs: z.array(jobListItem) }),
  readOnly: true,
  errors: [],
  describe: () =>
    'List running and recent command jobs, newest first, of one project or all: job_id, command, status, exit_code. ' +
    'Use it to find the job_id of a background command. Jobs outlive a restart of the server; status interrupted means ' +
    'the server restarted while it ran: its output up to then is shown by job_status; run it again if needed.',
  examples: [{ project_id: 'demo' }],
  serve: async (d, q) => ({ jobs: await d.jobs.list(q.project_id) }),
});

export const jobCancelTool = supervisorTool({
  name: 'job_cancel',
  title: 'Stop a command job',
  route: { method: 'DELETE', path: '/jobs/{job_id}', notFound: 'job_not_found' },
  input: z.strictObject({ job_id: theJobId }),
  output: commandView,
  readOnly: false,
  errors: ['job_not_found'],
  describe: ({ commands }) =>
    'Stop a command job: a queued one never starts, a running one has its whole process tree killed (SIGTERM, then ' +
    `SIGKILL after ${commands.killGraceS} s). Returns the job's final status and output (head and tail within the ` +
    "command's output budget). Use it for background servers you no longer need and for commands that hang.",
  toModel: (view) => commandText(view),
  examples: [{ job_id: '00000000-0000-4000-8000-000000000000' }],
  // The handler kills the tree (TERM, then KILL after the grace) and reports; wait for that.
  serve: (d, q) => d.jobs.cancel(q.job_id, (d.config.commands.killGraceS + 10) * 1000),
});

/** The jobs tools, in the order models see them. */
export const JOB_API_TOOLS: readonly SupervisorTool[] = [jobStatusTool, jobInputTool, jobListTool, jobCancelTool];
