/**
 * A persistent shell: one bash process, launched like any command (the same prelude, limits, cgroup and
 * sandbox), that runs one command at a time in its own process, so the working directory, variables, functions,
 * aliases and an activated virtualenv carry over from one exec to the next.
 *
 * The protocol. The shell reads its commands from its stdin, NUL-terminated (a long one length-prefixed), and runs each with `eval` with
 * stdin from /dev/null (a command that reads stdin gets EOF at once; the shell's own stdin is kept on a
 * close-on-exec descriptor while it runs, so no child can read the commands that follow) and with stdout and
 * stderr put back afterwards (an `exec >file` lasts one exec). Only when the command has returned does the shell
 * read the exec's nonce, which the host wrote right after the command, and it writes the marker of
 * exec-marker.ts to both streams. The nonce is nowhere a command's output could take it from, so no output can
 * end an exec early or fake its exit status.
 *
 * States:
 *   starting  spawned; the first exec (`:`) has not ended, so the shell may not work at all
 *   idle      stopped (SIGSTOP) until its next command
 *   busy      one exec runs; its deadline and its signal are armed
 *   over      the shell exited, was killed or failed to start
 * When an exec ends, the shell is stopped first and whatever the command left running (a `server &`) is killed:
 * between execs nothing of a session runs (not even code the command left in the shell, such as a DEBUG trap), and
 * it counts against the project's command slots only while an exec runs. A deadline or a cancel ends the shell
 * with the command (killing one process would only end one step of a list, and the shell would run the rest); the
 * exec's answer says so (`shellEnded`), and the session starts a fresh one.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { type BoundedProcess, boundedSpawn, LEFTOVER_GRACE_MS } from './bounded-spawn.js';
import { MarkerScanner } from './exec-marker.js';
import { carriesMarker, findTreeProcesses, killTree, processSubtree } from './process-tree.js';
import type { Launch } from './sandbox.js';

/**
 * The shell's loop. Its variables start with __th_ (a command may read or break them, and so only its own
 * session); `builtin` keeps functions a command defines from replacing the loop's steps.
 */
export const SHELL_DRIVER = [
  'exec {__th_out}>&1 {__th_err}>&2',
  'shopt -s expand_aliases',
  // TMOUT= : a command's TMOUT would end the loop's reads.
  "while IFS= TMOUT= builtin read -r -d '' __th_cmd; do",
  // A long command comes as its length, then its bytes, which head reads at once (read takes one byte a call).
  `  if [[ $__th_cmd == L* ]]; then __th_cmd=$(command -p head -c "\${__th_cmd#L}"; builtin printf x); __th_cmd=\${__th_cmd%x}`,
  `  else __th_cmd=\${__th_cmd#S}; fi`,
  '  builtin eval "$__th_cmd" </dev/null >&$__th_out 2>&$__th_err',
  '  __th_rc=$?',
  "  IFS= TMOUT= builtin read -r -d '' __th_n || break",
  '  builtin printf \'\\0%s\\0%d\\n\' "$__th_n" "$__th_rc" >&$__th_out',
  '  builtin printf \'\\0%s\\0\' "$__th_n" >&$__th_err',
  '  builtin unset __th_n __th_cmd',
  'done',
].join('\n');

/** How to start the shell. */
export interface ShellSpec {
  /** The launch of `bash -c SHELL_DRIVER` through the sandbox plan (sandbox.ts). */
  launch: Launch;
  /** The marker of every process of the session (process-tree.ts), the session's id. */
  marker: string;
  killGraceMs: number;
  /** Niceness of the shell and what it runs (config commands.nice). */
  nice?: number | undefined;
  /** Every pid of the session (its cgroup's members). */
  treeMembers?: (() => Promise<number[]>) | undefined;
  /**
   * The shell runs in a pid namespace of its own (bubblewrap), so the processes of the launch's subtree are all
   * of the session's: without a cgroup they are found from the tree instead of a scan of every process.
   */
  pidNamespace?: boolean | undefined;
  /** How long the shell may take to start. */
  startMs: number;
}

/** One command to run. */
export interface ShellExec {
  command: string;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Takes the command's output; a promise pauses the stream until it settles (a log catching up). */
  write(stream: 'stdout' | 'stderr', chunk: Buffer): Promise<void> | undefined;
}

/** How an exec ended. */
export interface ShellExecEnd {
  /** The command's exit status; the shell's when the shell itself ended (128 + n after signal n). */
  exitCode: number;
  timedOut: boolean;
  cancelled: boolean;
  /** The shell did not survive the exec (it exited, or it was killed with it): a new one serves the next. */
  shellEnded: boolean;
  durationMs: number;
}

type State = 'starting' | 'idle' | 'busy' | 'over';

/** Bytes above which a command is sent with its length (a read of it byte by byte costs about 3 µs a byte). */
const LONG_COMMAND = 4096;
const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15, SIGXCPU: 24 };

/** One running shell. Start it with {@link SessionShell.start}. */
export class SessionShell {
  readonly #spec: ShellSpec;
  readonly #proc: BoundedProcess<'end'>;
  #state: State = 'starting';
  /** The shell and the sandbox around it: spared by the kills after each exec. */
  #keep: ReadonlySet<number> = new Set();
  /** The shell's own process (the one of {@link #keep} that runs commands), stopped between execs. */
  #shellPids: number[] = [];
  /** Routes the streams to the exec in flight; null between execs (stray bytes are dropped). */
  #route: ((stream: 'stdout' | 'stderr', chunk: Buffer) => void) | null = null;
  /** Settles when the shell is gone, with its exit status. */
  readonly #exit: Promise<number>;

  /** Every process of the session, for the kills after each exec (see ShellSpec.pidNamespace). */
  readonly #members: (() => Promise<number[]>) | undefined;

  private constructor(spec: ShellSpec) {
    this.#spec = spec;
    this.#proc = boundedSpawn<'end'>({
      launch: spec.launch,
      stdin: 'pipe',
      deadlineMs: 2 ** 31 - 1, // a session ends when it is idle or ended, not by a deadline
      killGraceMs: spec.killGraceMs,
      nice: spec.nice,
      jobId: spec.marker,
      treeMembers: spec.treeMembers,
      drainMs: 200,
    });
    const pid = this.#proc.pid;
    this.#members = spec.treeMembers ?? (spec.pidNamespace && pid !== undefined ? async () => processSubtree(pid) : undefined);
    this.#listen(this.#proc.stdout, 'stdout');
    this.#listen(this.#proc.stderr, 'stderr');
    this.#exit = this.#proc.done.then(
      ({ code, signal }) => code ?? 128 + (SIGNALS[signal ?? ''] ?? 0),
      () => 127,
    );
    void this.#exit.then(() => {
      this.#state = 'over';
    });
  }

  /** Starts a shell and waits until it runs commands; rejects with what it printed when it cannot start. */
  static async start(spec: ShellSpec): Promise<SessionShell> {
    const shell = new SessionShell(spec);
    let said = '';
    const first = await shell.#run({
      command: ':',
      timeoutMs: spec.startMs,
      write: (_s, chunk) => {
        if (said.length < 4000) said += chunk.toString('utf8');
        return undefined;
      },
    });
    if (first.shellEnded || first.exitCode !== 0) {
      await shell.end();
      throw new Error(`the shell did not start (status ${first.exitCode})${said ? `: ${said.trim().slice(0, 2000)}` : ''}`);
    }
    const keep = await findTreeProcesses(shell.#proc.pid!, spec.marker, shell.#members);
    shell.#keep = new Set(keep);
    // The shell is the one of them that carries the session's marker (the sandbox's processes have the fixed
    // launch environment); it was stopped when its first exec ended, before it was known.
    shell.#shellPids = keep.filter((pid) => carriesMarker(pid, spec.marker));
    shell.#freeze('SIGSTOP');
    return shell;
  }

  /** True while the shell can take a command. */
  get alive(): boolean {
    return this.#state === 'idle' || this.#state === 'busy';
  }

  /** True while an exec runs. */
  get busy(): boolean {
    return this.#state === 'busy';
  }

  /** Runs one command; the shell must be idle. */
  exec(e: ShellExec): Promise<ShellExecEnd> {
    if (this.#state !== 'idle') throw new Error(`the shell is ${this.#state}`);
    return this.#run(e);
  }

  /** Kills the shell and everything it started; resolves once they are gone. */
  async end(): Promise<void> {
    this.#freeze('SIGCONT'); // a stopped shell would take its TERM only when the grace is over
    this.#proc.stop('end');
    await this.#exit;
  }

  #listen(stream: Readable, name: 'stdout' | 'stderr'): void {
    stream.on('data', (chunk: Buffer) => this.#route?.(name, chunk));
  }

  async #run(e: ShellExec): Promise<ShellExecEnd> {
    const started = Date.now();
    const starting = this.#state === 'starting';
    this.#state = 'busy';
    const nonce = randomBytes(16).toString('hex');
    const scanners = { stdout: new MarkerScanner(nonce, true), stderr: new MarkerScanner(nonce, false) };
    let status = 0;
    let marked: () => void = () => {};
    const markedP = new Promise<void>((resolve) => {
      marked = resolve;
    });
    this.#route = (name, chunk) => {
      const scan = scanners[name].push(chunk);
      if (scan.status !== undefined) status = scan.status;
      if (scan.out.length > 0) {
        const wait = e.write(name, scan.out);
        if (wait) {
          const stream = name === 'stdout' ? this.#proc.stdout : this.#proc.stderr;
          stream.pause();
          void wait.finally(() => stream.resume());
        }
      }
      if (scanners.stdout.done && scanners.stderr.done) marked();
    };
    const bytes = Buffer.byteLength(e.command);
    this.#freeze('SIGCONT');
    this.#proc.stdin!.write(bytes > LONG_COMMAND ? `L${bytes}\0${e.command}${nonce}\0` : `S${e.command}\0${nonce}\0`);

    // The exec ends with its marker or with the shell. A timeout or a cancel ends the shell with the command: a
    // killed process only ends one step of a list (`make; make install`), and the shell would run the rest.
    let stopped: 'deadline' | 'abort' | null = null;
    const stop = (why: 'deadline' | 'abort'): void => {
      if (stopped) return;
      stopped = why;
      void this.end();
    };
    const timer = setTimeout(() => stop('deadline'), e.timeoutMs);
    const onAbort = (): void => stop('abort');
    if (e.signal?.aborted) onAbort();
    else e.signal?.addEventListener('abort', onAbort, { once: true });
    const how = await Promise.race([markedP.then(() => 'marked' as const), this.#exit.then(() => 'exited' as const)]);
    clearTimeout(timer);
    e.signal?.removeEventListener('abort', onAbort);

    if (how === 'marked') {
      // Frozen before anything else: code of the command still in the shell (a DEBUG trap) must not start
      // processes after the sweep below, which would run unaccounted until the next exec.
      this.#freeze('SIGSTOP');
      if (!starting) await this.#killExec(LEFTOVER_GRACE_MS); // what the command left running goes with it
    }
    this.#route = null;
    // A stream paused for this exec's log to catch up flows again: the next exec reads it, whether or not the
    // log's drain ever came (a log closed with the exec does not drain).
    this.#proc.stdout.resume();
    this.#proc.stderr.resume();
    const shellEnded = !this.alive;
    if (shellEnded) status = await this.#exit;
    else this.#state = 'idle';
    return {
      exitCode: status,
      timedOut: stopped === 'deadline',
      cancelled: stopped === 'abort',
      shellEnded,
      durationMs: Date.now() - started,
    };
  }

  /** Stops (SIGSTOP) or continues (SIGCONT) the shell's own process: between execs nothing of a session runs. */
  #freeze(sig: 'SIGSTOP' | 'SIGCONT'): void {
    for (const pid of this.#shellPids) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone: its exit reports it
      }
    }
  }

  /** Kills the processes of the exec (everything of the session but the shell and its sandbox). */
  #killExec(graceMs: number): Promise<void> {
    const pid = this.#proc.pid;
    if (pid === undefined || this.#state === 'over') return Promise.resolve();
    return killTree(pid, this.#spec.marker, graceMs, this.#members, this.#keep).catch(() => {});
  }
}
