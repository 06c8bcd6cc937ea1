/**
 * Runs one shell command as one child process: `bash -c`, detached into its own process group and session,
 * stdin closed, a clean environment, output captured within a fixed budget, and its whole tree killed when it
 * ends, times out or is cancelled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import type { LogSpool } from './log-spool.js';
import { OutputBuffer } from './output-buffer.js';
import { JOB_MARKER_VAR, killTree } from './process-tree.js';
import type { Launch } from './sandbox.js';

/** Settings that make tools behave in a non-interactive session. */
export const NON_INTERACTIVE_ENV: Readonly<Record<string, string>> = Object.freeze({
  CI: '1',
  GIT_TERMINAL_PROMPT: '0',
  PAGER: 'cat',
  GIT_PAGER: 'cat',
  DEBIAN_FRONTEND: 'noninteractive',
  TERM: 'dumb',
});

/** What to run and how. */
export interface RunOptions {
  command: string;
  cwd: string;
  /** HOME of the command. */
  home: string;
  /** Extra variables from the request (cannot override the job marker). */
  env?: Record<string, string> | undefined;
  jobId: string;
  timeoutMs: number;
  killGraceMs: number;
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
export interface RunResult {
  /** Exit code; 128 + signal number when a signal ended it. */
  exitCode: number;
  /** The signal that ended the command, if any. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
  truncated: { stdout: boolean; stderr: boolean };
  omittedBytes: { stdout: number; stderr: number };
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** The environment a command sees: nothing of the supervisor's own but PATH and LANG. */
export function commandEnv(opts: Pick<RunOptions, 'home' | 'env' | 'jobId'>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: process.env.LANG ?? 'C.UTF-8',
    HOME: opts.home,
    ...NON_INTERACTIVE_ENV,
    ...opts.env,
    [JOB_MARKER_VAR]: opts.jobId,
  };
}

/** Runs the command to its end; rejects only when it cannot be started. */
export function runCommand(opts: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const stdout = new OutputBuffer(opts.maxOutputBytes);
  const stderr = new OutputBuffer(opts.maxOutputBytes);
  const argv = opts.argv ?? { file: 'bash', args: ['-c', opts.command], env: commandEnv(opts), cwd: opts.cwd };
  const child = spawn(argv.file, argv.args, {
    cwd: argv.cwd,
    env: argv.env,
    detached: true,
    stdio: [opts.stdin === 'pipe' ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(argv.joinCgroup ? ['pipe' as const] : [])],
    ...argv.user,
  });
  const joinFailed = argv.joinCgroup ? joinThenGo(child, argv.joinCgroup) : undefined;
  capture(child.stdout!, stdout, opts.logs?.stdout);
  capture(child.stderr!, stderr, opts.logs?.stderr);
  if (child.stdin) {
    // A command that exits without reading its input makes our writes fail with EPIPE: not an error of ours.
    child.stdin.on('error', () => {});
    opts.onStdin?.(child.stdin);
  }

  let timedOut = false;
  let cancelled = false;
  let killing: Promise<void> | undefined;
  const kill = (): Promise<void> => {
    if (child.pid === undefined) return Promise.resolve();
    killing ??= killTree(child.pid, opts.jobId, opts.killGraceMs, opts.treeMembers);
    return killing;
  };
  const timer = setTimeout(() => {
    timedOut = true;
    void kill();
  }, opts.timeoutMs);
  const onAbort = (): void => {
    cancelled = true;
    void kill();
  };
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  return new Promise<RunResult>((resolve, reject) => {
    child.once('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(err);
    });
    // `exit` fires before `close` while a background grandchild holds the pipes: the command is over when bash
    // exits, so whatever it left running is killed and the pipes are given a moment to drain.
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (joinFailed) return reject(joinFailed); // killed before it ran: no result of the command's to report
      void (async () => {
        if (child.pid !== undefined) {
          // A leftover grandchild gets no TERM grace after its parent exits on its own: it holds the pipes.
          killing ??= killTree(child.pid, opts.jobId, timedOut || cancelled ? opts.killGraceMs : 200, opts.treeMembers);
          await killing;
        }
        await closedOrTimeout(child, 2000);
        await Promise.all([opts.logs?.stdout.close(), opts.logs?.stderr.close()]);
        const out = stdout.result();
        const err = stderr.result();
        resolve({
          exitCode: code ?? 128 + (SIGNAL_NUMBERS[sig ?? ''] ?? 0),
          signal: sig,
          stdout: out.text,
          stderr: err.text,
          timedOut,
          cancelled,
          durationMs: Date.now() - started,
          truncated: { stdout: out.truncated, stderr: err.truncated },
          omittedBytes: { stdout: out.omittedBytes, stderr: err.omittedBytes },
        });
      })().catch(reject);
    });
  });
}

/**
 * Puts a child that waits on its fd 3 into its cgroup, then lets it go. Before the line arrives it has forked
 * nothing, so everything it starts is counted. A cgroup that cannot be joined ends the child: no limit, no run.
 */
function joinThenGo(child: ChildProcess, procsFile: string): Error | undefined {
  const go = child.stdio[3] as Writable | null;
  go?.on('error', () => {}); // a child that died already: its exit reports it
  if (child.pid === undefined) return undefined;
  try {
    writeFileSync(procsFile, String(child.pid));
    go?.end('go\n');
    return undefined;
  } catch (err) {
    child.kill('SIGKILL');
    return new Error(`could not put the command into its cgroup (${(err as Error).message}); it was not run`);
  }
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

function closedOrTimeout(child: ReturnType<typeof spawn>, ms: number): Promise<void> {
  if (child.stdout?.readableEnded !== false && child.stderr?.readableEnded !== false) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve();
    }, ms);
    child.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
