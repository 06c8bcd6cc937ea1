/**
 * The one shape of a command job as callers see it: the answer of /execute (finished or still running), of
 * GET /jobs/:id and of DELETE /jobs/:id. Only the command's record (supervisor/command-jobs.ts) makes it; the
 * execute tool declares it as its output and command-text.ts renders it for a model. It does not repeat the
 * command: the caller sent it, and it may be long (GET /jobs lists it).
 */
import { z } from 'zod';

/** Where a command job is in its life. */
export const commandStatus = z
  .enum(['queued', 'running', 'completed', 'timed_out', 'cancelled', 'failed', 'interrupted'])
  .describe(
    'queued and running are not final; the rest are. interrupted: the server stopped or restarted while the command ran ' +
      '(or waited); its output up to then is shown; run it again if it is still needed.',
  );
export type CommandStatus = z.infer<typeof commandStatus>;

/** True once the job has ended (nothing more will run or be written). */
export function isFinal(status: CommandStatus): boolean {
  return status !== 'queued' && status !== 'running';
}

const perStream = <T extends z.ZodType>(t: T) => z.strictObject({ stdout: t, stderr: t });
const when = z.string().describe('ISO 8601 time.');

/** The error a failed command ended with. */
const errorBody = z.object({ code: z.string(), message: z.string() }).catchall(z.unknown());

export const commandView = z.strictObject({
  job_id: z.string(),
  project_id: z.string(),
  status: commandStatus,
  exit_code: z.number().int().nullable().describe('The exit code once the command ended (128 + n after signal n), else null.'),
  signal: z.string().nullable().describe('The signal that ended the command, if one did.'),
  timed_out: z.boolean().describe('True when timeout_s ran out and the process tree was killed.'),
  cancelled: z.boolean(),
  duration_ms: z.number().int().nullable(),
  created_at: when,
  started_at: when.nullable(),
  finished_at: when.nullable(),
  stdin: z.enum(['null', 'pipe']),
  stdout: z.string(),
  stderr: z.string(),
  stdout_offset: z.number().int().describe('Pass as stdout_offset to job_status to get only newer output.'),
  stderr_offset: z.number().int().describe('Pass as stderr_offset to job_status to get only newer output.'),
  more_bytes: perStream(z.number().int()).describe('Bytes already available past the returned ones (read again with the new offsets).'),
  omitted_bytes: perStream(z.number().int()).describe('Bytes left out between head and tail (the text says so in one line where they were).'),
  omitted_lines: perStream(z.number().int()).describe('Lines left out between head and tail (newlines in the left-out bytes).'),
  omitted_offset: perStream(z.number().int().nullable()).describe(
    'Log offset where the left-out bytes start, null when none were: job_status with stdout_offset (stderr_offset) set to it reads them.',
  ),
  truncated: perStream(z.boolean()),
  invalid_utf8: perStream(z.boolean()),
  log_dropped_bytes: perStream(z.number().int()).describe('Bytes beyond commands.maxLogBytes that were never logged.'),
  logs_removed: z.boolean().describe('True when the logs were removed (jobs.maxLogDiskBytes): the output is gone.'),
  error: errorBody.optional().describe('Why a failed command failed.'),
  session: z
    .strictObject({
      session_id: z.string(),
      restarted: z
        .boolean()
        .describe('True when the shell did not survive the command (an exit, a timeout it did not come back from) and a fresh one now serves the session.'),
    })
    .optional()
    .describe('The persistent shell session the command ran on (session_exec, shell).'),
});
export type CommandView = z.infer<typeof commandView>;

/** A line of GET /jobs: the command (its first 200 characters) tells the jobs apart. */
export const jobListItem = commandView
  .pick({ job_id: true, project_id: true, status: true, exit_code: true, created_at: true, finished_at: true })
  .extend({ command: z.string() });
export type JobListItem = z.infer<typeof jobListItem>;
