/**
 * Runs one shell command as one child process: `bash -c` (or its launch through the sandbox plan), stdin closed
 * unless piped, a clean environment, output captured within a fixed budget and spooled to disk. Spawning it into
 * its own process group and cgroup, its deadline, its cancellation and the kill of its whole tree are
 * bounded-spawn.ts's.
 */
import type { Readable, Writable } from 'node:stream';
import { boundedSpawn } from './bounded-spawn.js';
import type { LogSpool } from './log-spool.js';
import { type CapturedOutput, OutputBuffer } from './output-buffer.js';
import { JOB_MARKER_VAR } from './process-tree.js';
import { type Launch, PRELUDE_ENV } from './sandbox.js';

/** Settings that make tools behave in a non-interactive session. */
export const NON_INTERACTIVE_ENV: Readonly<Record<string, string>> = Object.freeze({
  CI: '1',
  GIT_TERMINAL_PROMPT: '0',
  PAGER: 'cat',
  GIT_PAGER: 'cat',
  DEBIAN_FRONTEND: 'noninteractive',
  TERM: 'dumb',
});

/** What command to run and how. */
export interface CommandOptions {
  command: string;
  cwd: string;
  /** HOME of the command. */
  home: string;
  /** Extra variables from the request (cannot override the job marker; a PATH there is the caller's choice). */
  env?: Record<string, string> | undefined;
  /** PATH of the command (config commands.path); default the system's, see {@link commandPath}. */
  path?: string | null | undefined;
  jobId: string;
  timeoutMs: number;
  killGraceMs: number;
  /** Niceness of the command's tree (config commands.nice). */
  nice?: number | undefined;
  /** Bytes kept per stream. */
  maxOutputBytes: number;
  /** Cancels the command: its tree is killed and the result says `cancelled`. */
  signal?: AbortSignal | undefined;
  /** `ignore` (default): stdin is /dev/null. `pipe`: the caller writes to it through `onStdin`. */
  stdin?: 'ignore' | 'pipe' | undefined;
  /** Receives the command's stdin when `stdin` is `pipe`. */
  onStdin?: ((stdin: Writable) => void) | undefined;
  /** Spools the full output to disk as well (up to their caps). */
  logs?: { stdout: LogSpool; stderr: LogSpool } | undefined;
  /**
   * What to spawn (limits, cgroup, sandbox wrapped around the command) and the environment of that launch, which
   * hands the command its own; default `bash -c command` with {@link commandEnv}.
   */
  argv?: Launch | undefined;
  /** Every pid of the job (its cgroup members); replaces the /proc scan of the tree kill. */
  treeMembers?: (() => Promise<number[]>) | undefined;
}

/** The outcome of a command. */
export interface CommandResult {
  /** Exit code; 128 + signal number when a signal ended it. */
  exitCode: number;
  /** The signal that ended the command, if any. */
  signal: NodeJS.Signals | null;
  /** Head and tail of each stream (within maxOutputBytes), on line boundaries where a newline is near. */
  stdout: CapturedOutput;
  stderr: CapturedOutput;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/**
 * PATH inside commands: `configured` (commands.path), else the system's. Never the supervisor's own: started by
 * `npm start`, that begins with toolhost's node_modules/.bin, and a project's `tsc` would silently be toolhost's.
 */
export function commandPath(configured: string | null | undefined): string {
  return configured ?? (PRELUDE_ENV.PATH as string);
}

/** The environment a command sees: nothing of the supervisor's own but LANG. */
export function commandEnv(opts: Pick<CommandOptions, 'home' | 'env' | 'jobId' | 'path'>): Record<string, string> {
  return {
    PATH: commandPath(opts.path),
    LANG: process.env.LANG ?? 'C.UTF-8',
    HOME: opts.home,
    ...NON_INTERACTIVE_ENV,
    ...opts.env,
    [JOB_MARKER_VAR]: opts.jobId,
  };
}

/** Runs the command to its end; rejects only when it cannot be started. */
export function runCommand(opts: CommandOptions): Promise<CommandResult> {
  const started = Date.now();
  const stdout = new OutputBuffer(opts.maxOutputBytes);
  const stderr = new OutputBuffer(opts.maxOutputBytes);
  const proc = boundedSpawn({
    launch: opts.argv ?? { file: 'bash', args: ['-c', opts.command], env: commandEnv(opts), cwd: opts.cwd },
    stdin: opts.stdin,
    deadlineMs: opts.timeoutMs,
    signal: opts.signal,
    killGraceMs: opts.killGraceMs,
    nice: opts.nice,
    jobId: opts.jobId,
    treeMembers: opts.treeMembers,
  });
  capture(proc.stdout, stdout, opts.logs?.stdout);
  capture(proc.stderr, stderr, opts.logs?.stderr);
  if (proc.stdin) opts.onStdin?.(proc.stdin);

  return proc.done.then(async ({ code, signal: sig }) => {
    await Promise.all([opts.logs?.stdout.close(), opts.logs?.stderr.close()]);
    return {
      exitCode: code ?? 128 + (SIGNAL_NUMBERS[sig ?? ''] ?? 0),
      signal: sig,
      stdout: stdout.result(),
      stderr: stderr.result(),
      timedOut: proc.stopped === 'deadline',
      cancelled: proc.stopped === 'abort',
      durationMs: Date.now() - started,
    };
  });
}

/** Feeds a stream into its head/tail buffer and its spool, pausing the stream while the spool's disk catches up. */
function capture(stream: Readable, buffer: OutputBuffer, spool: LogSpool | undefined): void {
  stream.on('data', (c: Buffer) => {
    buffer.push(c);
    if (spool && !spool.write(c)) {
      stream.pause();
      void spool.drained().then(() => stream.resume());
    }
  });
}
