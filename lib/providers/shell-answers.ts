/**
 * What a command run on a persistent shell session answered (the supervisor's shellCall), as the providers' shell
 * tools take it: Anthropic's `bash` tool gets one text (stdout, then stderr under a line of its own, then a line for
 * anything but a plain exit 0), OpenAI's `shell` tool gets `{stdout, stderr, outcome}` per command. The types here
 * are the fields of a command's view these renderings read (handlers/command-view.ts has the whole shape).
 */
import { cutText, formatBytes } from '../budget.js';
import { cutChars } from '../read/numbered.js';

/** Where a command is in its life (CommandStatus). */
export type ShellStatus = 'queued' | 'running' | 'completed' | 'timed_out' | 'cancelled' | 'failed' | 'interrupted';

/** The fields of a command's view that the renderings read. */
export interface ShellView {
  job_id: string;
  status: ShellStatus;
  exit_code: number | null;
  signal: string | null;
  duration_ms: number | null;
  stdout: string;
  stderr: string;
  stdout_offset: number;
  stderr_offset: number;
  more_bytes: { stdout: number; stderr: number };
  error?: { code: string; message: string } | undefined;
}

/** A shell call's answer: the command's view (null for a restart alone), and whether the shell was restarted. */
export interface ShellRun {
  restarted: boolean;
  view: ShellView | null;
}

const seconds = (ms: number | null): string => (ms === null ? '' : ` after ${(ms / 1000).toFixed(1)} s`);
const chomp = (s: string): string => (s.endsWith('\n') ? s.slice(0, -1) : s);

/** The job_status call that reads on from the view's offsets. */
function followCall(v: ShellView): string {
  return `job_status ${JSON.stringify({ job_id: v.job_id, stdout_offset: v.stdout_offset, stderr_offset: v.stderr_offset })}`;
}

/** A line saying the shell was restarted, so what earlier calls set up there is gone. */
const RESET = 'the working directory, variables and functions of earlier calls are gone';

/**
 * The `bash` tool's answer as text, and whether it is an error: a timeout, a failure or a cancel is; a non-zero
 * exit is not (the text gives the exit code, as a terminal would show the model a failing command).
 */
export function bashText(run: ShellRun, restartAsked: boolean): { text: string; isError: boolean } {
  const lines: string[] = [];
  if (restartAsked) lines.push('tool has been restarted.');
  const v = run.view;
  if (!v) return { text: lines.join('\n') || 'tool has been restarted.', isError: false };
  if (v.stdout !== '') lines.push(chomp(v.stdout));
  if (v.stderr !== '') lines.push('--- stderr ---', chomp(v.stderr));
  let isError = false;
  switch (v.status) {
    case 'completed':
      if (v.exit_code !== 0) lines.push(`[exit code ${v.exit_code}${v.signal ? ` (${v.signal})` : ''}]`);
      else if (v.stdout === '' && v.stderr === '' && v.more_bytes.stdout + v.more_bytes.stderr === 0) lines.push('(no output)');
      break;
    case 'queued':
    case 'running':
      lines.push(
        `[still running${seconds(v.duration_ms)} as job ${v.job_id}: this shell is busy until it ends; follow it with ${followCall(v)}, or stop it with job_cancel]`,
      );
      break;
    case 'timed_out':
      isError = true;
      lines.push(`[timed out${seconds(v.duration_ms)}: the command's processes were killed${run.restarted ? `; the shell was restarted, so ${RESET}` : ''}]`);
      break;
    case 'cancelled':
      isError = true;
      lines.push(`[cancelled${seconds(v.duration_ms)}${run.restarted ? `; the shell was restarted, so ${RESET}` : ''}]`);
      break;
    case 'interrupted':
      isError = true;
      lines.push(`[interrupted${seconds(v.duration_ms)}: the server stopped while it ran; run it again if needed (${RESET})]`);
      break;
    default:
      isError = true;
      lines.push(`[failed: ${v.error ? `${v.error.code}: ${v.error.message}` : 'the command could not run'}]`);
  }
  if (run.restarted && !restartAsked && v.status !== 'timed_out' && v.status !== 'cancelled') {
    lines.push(`[the shell exited and was restarted: ${RESET}]`);
  }
  const more = v.more_bytes.stdout + v.more_bytes.stderr;
  if (more > 0 && v.status === 'completed') lines.push(`[${formatBytes(more)} more output already written; read it with ${followCall(v)}]`);
  return { text: lines.join('\n'), isError };
}

/** One command's entry of an OpenAI `shell_call_output` (ResponseFunctionShellCallOutputContent). */
export interface ShellCallOutputContent {
  stdout: string;
  stderr: string;
  outcome: { type: 'exit'; exit_code: number } | { type: 'timeout' };
}

/**
 * A command's entry in a `shell_call_output`, its output within `maxChars` characters (stdout and stderr together,
 * each cut head and tail on line boundaries), and whether the commands after it may still run: not after a timeout,
 * a failure, or a command still running when the wait ended.
 */
export function shellOutputContent(run: ShellRun, maxChars: number | undefined): { content: ShellCallOutputContent; goOn: boolean } {
  const v = run.view;
  if (!v) return { content: { stdout: '', stderr: '', outcome: { type: 'exit', exit_code: 0 } }, goOn: true };
  const notes: string[] = [];
  let outcome: ShellCallOutputContent['outcome'];
  let goOn = false;
  switch (v.status) {
    case 'completed':
      outcome = { type: 'exit', exit_code: v.exit_code ?? 0 };
      goOn = true;
      break;
    case 'timed_out':
      outcome = { type: 'timeout' };
      notes.push(`[toolhost: timed out${seconds(v.duration_ms)}; its processes were killed${run.restarted ? ` and the shell restarted (${RESET})` : ''}]`);
      break;
    case 'queued':
    case 'running':
      outcome = { type: 'timeout' };
      notes.push(
        `[toolhost: stopped waiting${seconds(v.duration_ms)}; the command still runs as job ${v.job_id}: ${followCall(v)} follows it, job_cancel stops it]`,
      );
      break;
    case 'cancelled':
      outcome = { type: 'exit', exit_code: v.exit_code ?? 130 };
      notes.push('[toolhost: the command was cancelled]');
      break;
    case 'interrupted':
      outcome = { type: 'exit', exit_code: v.exit_code ?? 130 };
      notes.push('[toolhost: the server stopped while the command ran; run it again if needed]');
      break;
    default:
      outcome = { type: 'exit', exit_code: v.exit_code ?? 1 };
      notes.push(`[toolhost: the command failed: ${v.error ? `${v.error.code}: ${v.error.message}` : 'it could not run'}]`);
  }
  if (run.restarted && v.status === 'completed') notes.push(`[toolhost: the shell exited and was restarted: ${RESET}]`);
  const more = v.more_bytes.stdout + v.more_bytes.stderr;
  if (more > 0 && v.status === 'completed') notes.push(`[toolhost: ${formatBytes(more)} more output already written; ${followCall(v)} reads it]`);
  const [stdout, stderr] = fitPair(v.stdout, v.stderr, maxChars);
  const stderrOut = notes.length === 0 ? stderr : `${stderr}${stderr === '' || stderr.endsWith('\n') ? '' : '\n'}${notes.join('\n')}\n`;
  return { content: { stdout, stderr: stderrOut, outcome }, goOn };
}

/** stdout and stderr within `max` characters together (each its share, cut head and tail), or as they are. */
function fitPair(stdout: string, stderr: string, max: number | undefined): [string, string] {
  if (max === undefined || stdout.length + stderr.length <= max) return [stdout, stderr];
  const outShare = stderr.length < max / 2 ? max - stderr.length : stdout.length < max / 2 ? stdout.length : Math.ceil(max / 2);
  return [fitChars(stdout, outShare), fitChars(stderr, max - Math.min(outShare, stdout.length))];
}

/** `s` within `max` characters, head and tail with one line saying how much was left out. */
function fitChars(s: string, max: number): string {
  const notice = (n: number) => `\n[... ${n} characters left out ...]\n`;
  if (max < 2 * notice(s.length).length) return cutChars(s, max);
  const c = cutText(s, Math.max(0, max - notice(s.length).length));
  if (!c) return cutChars(s, max);
  return `${c.head}${notice(c.omittedChars)}${c.tail}`;
}
