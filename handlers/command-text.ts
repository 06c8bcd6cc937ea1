/**
 * A command's answer as a model reads it (execute, job_status, job_cancel): one line of facts (status, exit code,
 * duration, and the job_id whenever there is more to read), then stdout and stderr, each labelled and only when
 * not empty; a cut stream carries its one notice line in its text (lib/process/command-output.ts), and one last
 * line says how to read on when the command is still running or a page stopped short. Also the output budget a
 * call may ask for, shared by execute and job_status.
 */
import type { Config } from '../config/schema.js';
import { formatBytes } from '../lib/budget.js';
import type { ModelContent } from '../lib/tool.js';
import { type CommandView, isFinal } from './command-view.js';

/** The fields of a command's view that its text shows. */
export type CommandAnswer = Pick<
  CommandView,
  | 'job_id'
  | 'status'
  | 'exit_code'
  | 'signal'
  | 'duration_ms'
  | 'stdout'
  | 'stderr'
  | 'stdout_offset'
  | 'stderr_offset'
  | 'more_bytes'
  | 'truncated'
  | 'invalid_utf8'
  | 'log_dropped_bytes'
  | 'logs_removed'
  | 'error'
  | 'session'
>;

/** How many times the configured budget a call may ask for: more would flood a model's context anyway. */
export const MAX_BUDGET_FACTOR = 10;

/** The schema text of max_output_chars. */
export const MAX_OUTPUT_CHARS_DOC =
  'Characters of output (stdout and stderr together) in this answer, cut head and tail on line boundaries (default budgets.outputChars).';

/** The budget of an answer: what the call asked for, else the configured one. */
export function outputBudget(config: Config, asked: number | undefined): number {
  return asked ?? config.budgets.outputChars;
}

/** The refusal of a command's timeout_s above commands.maxTimeoutS or max_output_chars above its bound, or undefined. */
export function commandLimit(req: { timeout_s?: number | undefined; max_output_chars?: number | undefined }, config: Config): string | undefined {
  return req.timeout_s !== undefined && req.timeout_s > config.commands.maxTimeoutS
    ? `timeout_s ${req.timeout_s} exceeds the server's maximum of ${config.commands.maxTimeoutS} s; ask for less`
    : outputBudgetLimit(req.max_output_chars, config);
}

/** The refusal of a max_output_chars above the bound, or undefined. */
export function outputBudgetLimit(asked: number | undefined, config: Config): string | undefined {
  const max = MAX_BUDGET_FACTOR * config.budgets.outputChars;
  return asked !== undefined && asked > max
    ? `max_output_chars ${asked} exceeds the server's maximum of ${max}; ask for less and page through the rest with job_status (stdout_offset, stderr_offset)`
    : undefined;
}

const seconds = (ms: number | null): string => (ms === null ? '' : ` after ${(ms / 1000).toFixed(1)} s`);

/** The first line: the facts. */
function headline(v: CommandAnswer): string {
  const exit = v.exit_code === null ? '' : `exit_code ${v.exit_code}${v.signal ? ` (${v.signal})` : ''}`;
  switch (v.status) {
    case 'queued':
      return 'queued (waiting for a command slot)';
    case 'running':
      return `running${v.duration_ms === null ? '' : ` for ${(v.duration_ms / 1000).toFixed(1)} s`}`;
    case 'completed':
      return `${exit}${seconds(v.duration_ms)}`;
    case 'timed_out':
      return `timed_out${seconds(v.duration_ms)}: the process tree was killed, ${exit}`;
    case 'cancelled':
      return exit ? `cancelled${seconds(v.duration_ms)}, ${exit}` : 'cancelled before it started';
    case 'interrupted':
      return `interrupted${seconds(v.duration_ms)}: the server restarted while it ran; its output up to then is shown; run it again if needed`;
    default:
      return `failed: ${v.error ? `${v.error.code}: ${v.error.message}` : 'the command could not run'}`;
  }
}

/** What a session exec's text says when its shell did not survive the command. */
export const RESTARTED_LINE =
  "[the session's shell did not survive this command and was restarted: the working directory, variables, functions and aliases are back to the session's start]";

/** The answer as text. */
export function commandText(v: CommandAnswer): ModelContent[] {
  const final = isFinal(v.status);
  const more = v.more_bytes.stdout + v.more_bytes.stderr;
  const cut = v.truncated.stdout || v.truncated.stderr;
  const lines = [`${headline(v)}${!final || cut || more > 0 ? `; job_id ${v.job_id}` : ''}`];
  for (const s of ['stdout', 'stderr'] as const) {
    if (v[s] === '') continue;
    lines.push(`--- ${s}${v.invalid_utf8[s] ? ' (not UTF-8: bad bytes shown as U+FFFD)' : ''} ---`);
    lines.push(v[s].endsWith('\n') ? v[s].slice(0, -1) : v[s]);
  }
  if (final && v.stdout === '' && v.stderr === '' && v.status !== 'failed' && more === 0) lines.push('(no output)');
  const next = JSON.stringify({ job_id: v.job_id, stdout_offset: v.stdout_offset, stderr_offset: v.stderr_offset });
  if (more > 0) lines.push(`[... ${formatBytes(more)} more output already written; next page: job_status ${next} ...]`);
  else if (!final) lines.push(`[still running; follow it with job_status ${next}]`);
  for (const s of ['stdout', 'stderr'] as const) {
    if (v.log_dropped_bytes[s] > 0) lines.push(`[${formatBytes(v.log_dropped_bytes[s])} of ${s} past commands.maxLogBytes were never logged]`);
  }
  if (v.logs_removed) lines.push('[the output logs were removed to free disk (jobs.maxLogDiskBytes): nothing more can be read]');
  if (v.session?.restarted) lines.push(RESTARTED_LINE);
  return [{ type: 'text', text: lines.join('\n') }];
}
