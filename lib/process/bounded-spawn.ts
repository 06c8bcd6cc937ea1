/**
 * One child process under a bound, the way both commands (run-command.ts) and ripgrep (lib/search/run-rg.ts) run:
 * spawned from a {@link Launch} of the sandbox plan into its own process group (and, when the launch says so, into
 * its pids cgroup before it runs anything), stopped at a deadline, on an abort signal or by its owner, and over
 * once the child has exited, whatever it left running is killed and its pipes are closed.
 *
 * A stop kills the whole tree: TERM to the group and every process of the job, then KILL after a grace
 * (process-tree.ts). `exit` is the end of the child, `close` the end of its pipes; a grandchild that inherited the
 * pipes keeps `close` from coming for as long as it lives, so the run waits for `exit`, kills the rest of the tree,
 * and then gives the pipes a bounded time to drain.
 *
 * States of a run:
 *   running   the child runs; the deadline and the signal are armed
 *   stopping  a stop was asked for (its cause recorded once, the first wins): the tree is being killed
 *   exited    the child exited (on its own or killed): the deadline and the signal are disarmed; what is left of the
 *             tree is killed and the pipes drain
 *   over      `done` settled
 * The owner may still record a cause after `exited` ({@link BoundedProcess.stop}): it then has nothing to kill.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { killTree } from './process-tree.js';
import type { Launch } from './sandbox.js';

/** Why a run was stopped: its deadline passed, its signal fired, or its owner's own reason. */
export type StopCause<Why extends string = never> = 'deadline' | 'abort' | Why;

/** What to spawn and how it is bounded. */
export interface BoundedSpawnOptions {
  /** What to spawn, where and with which environment (a launch of lib/process/sandbox.ts, or one built alike). */
  launch: Launch;
  /** `ignore` (default): stdin is /dev/null. `pipe`: {@link BoundedProcess.stdin} writes to it. */
  stdin?: 'ignore' | 'pipe' | undefined;
  /** Open fds the child gets as fd 3, 4, ...; none with a launch that joins a cgroup (its fd 3 is the go line). */
  passFds?: readonly number[] | undefined;
  /** The tree is stopped this long after the spawn. */
  deadlineMs: number;
  /** Stops the tree when it fires (also when it fired before the spawn). */
  signal?: AbortSignal | undefined;
  /** How long a stopped tree gets between TERM and KILL; 0 for KILL right after TERM. */
  killGraceMs: number;
  /** The job marker (TOOLHOST_JOB_ID, process-tree.ts) of the tree's processes: the kill finds those that left the group. */
  jobId: string;
  /** Every pid of the tree (its cgroup members); replaces the /proc scan of the kill. */
  treeMembers?: (() => Promise<number[]>) | undefined;
  /**
   * Once the tree is gone, how long its pipes get to close before they are destroyed (only a process that escaped
   * the tree could still hold them); a reader slower than this loses the rest. Default {@link DRAIN_MS}.
   */
  drainMs?: number | undefined;
  /** Niceness given to the child right after the spawn (before a cgroup launch is let go); its children inherit it. */
  nice?: number | undefined;
}

/** How the child ended. */
export interface BoundedExit {
  /** Its exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A running child under its bound. */
export interface BoundedProcess<Why extends string = never> {
  /** The child's pid; undefined when it could not be spawned (`done` rejects then). */
  readonly pid: number | undefined;
  /** The child's stdin when `stdin` is `pipe`; write errors (a child that does not read) are ignored. */
  readonly stdin: Writable | null;
  /** The child's stdout: read it to its end (the run waits, up to `drainMs`, for it to close). */
  readonly stdout: Readable;
  /** The child's stderr, read the same way. */
  readonly stderr: Readable;
  /** The first cause a stop was asked for with, or null. */
  readonly stopped: StopCause<Why> | null;
  /** Records `why` unless a cause is recorded already, and kills the tree while the child runs; true if it recorded. */
  stop(why: Why): boolean;
  /**
   * Settles once the child exited, the rest of its tree is killed and its pipes are closed (or given up on). Rejects
   * when the child could not be spawned, or could not be put into its cgroup (it was then killed before it ran).
   */
  readonly done: Promise<BoundedExit>;
}

/** TERM grace of what a child leaves running when it exits on its own: it holds the pipes, so it gets little. */
export const LEFTOVER_GRACE_MS = 200;
/** Default of {@link BoundedSpawnOptions.drainMs}. */
export const DRAIN_MS = 2000;

/** Spawns `launch` under its bound; throws only what `spawn` itself throws synchronously. */
export function boundedSpawn<Why extends string = never>(o: BoundedSpawnOptions): BoundedProcess<Why> {
  const { launch } = o;
  if (launch.joinCgroup && o.passFds?.length) throw new Error('a launch that joins a cgroup reads fd 3; it takes no passed fds');
  const extra = launch.joinCgroup ? ['pipe' as const] : (o.passFds ?? []);
  const stdio: StdioOptions = [o.stdin === 'pipe' ? 'pipe' : 'ignore', 'pipe', 'pipe', ...extra];
  const child = spawn(launch.file, launch.args, { cwd: launch.cwd, env: launch.env, detached: true, stdio, ...launch.user });
  if (o.nice && child.pid !== undefined) lowerPriority(child.pid, o.nice);
  const joinFailed = launch.joinCgroup ? joinThenGo(child, launch.joinCgroup) : undefined;
  // A child that exits without reading its input makes writes fail with EPIPE: not an error of the run.
  child.stdin?.on('error', () => {});
  // Listened to from the start: `close` may come while the exit handler still waits for the kill.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));

  let stopped: StopCause<Why> | null = null;
  let exited = false;
  let killing: Promise<void> | undefined;
  const killAll = (graceMs: number): Promise<void> => {
    if (child.pid === undefined) return Promise.resolve();
    killing ??= killTree(child.pid, o.jobId, graceMs, o.treeMembers);
    return killing;
  };
  const stop = (why: StopCause<Why>): boolean => {
    if (stopped !== null) return false;
    stopped = why;
    if (!exited) void killAll(o.killGraceMs);
    return true;
  };
  const timer = setTimeout(() => stop('deadline'), o.deadlineMs);
  const onAbort = (): void => void stop('abort');
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  const disarm = (): void => {
    exited = true;
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  };

  const done = new Promise<BoundedExit>((resolve, reject) => {
    child.on('error', (err) => {
      if (exited) return; // the run is decided by its exit already
      disarm();
      reject(err);
    });
    child.once('exit', (code, signal) => {
      disarm();
      if (joinFailed) return reject(joinFailed); // killed before it ran: no result of its own to report
      void (async () => {
        await killAll(stopped !== null ? o.killGraceMs : LEFTOVER_GRACE_MS);
        await drained(child, closed, o.drainMs ?? DRAIN_MS);
        resolve({ code, signal });
      })().catch(reject);
    });
  });
  done.catch(() => {}); // the owner awaits it, maybe only after reading the output: never an unhandled rejection

  return {
    pid: child.pid,
    stdin: child.stdin,
    stdout: child.stdout!,
    stderr: child.stderr!,
    get stopped() {
      return stopped;
    },
    stop: (why) => stop(why),
    done,
  };
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

/** Waits up to `ms` for the pipes to close, then destroys what is left of them. */
async function drained(child: ChildProcess, closed: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
  });
  const gaveUp = await Promise.race([closed.then(() => false), late]);
  clearTimeout(timer);
  if (!gaveUp) return;
  child.stdout?.destroy();
  child.stderr?.destroy();
}

/**
 * Lowers a child's CPU priority: its niceness, and its session's. A launch that joins a cgroup waits on its go line
 * until then, so nothing of it runs at the old priority; a direct launch may have run a few instructions. A child
 * already gone is no error.
 *
 * The child leads a session of its own (`detached` above: its process group is its kill handle). Where the kernel
 * groups tasks by session (CONFIG_SCHED_AUTOGROUP, on in most distributions) a niceness ranks a task only within
 * its session's group, and that group weighs as much against the rest of the machine as the whole supervisor does:
 * niced, two CPU-bound commands still took two thirds of the CPU from it. The session group's own niceness
 * (/proc/PID/autogroup) weighs the command's whole session as one task at `nice`. A process that starts a session
 * of its own (setsid) leaves that group for a new one at nice 0, which weighs as much as the supervisor, no more.
 */
function lowerPriority(pid: number, nice: number): void {
  try {
    setPriority(pid, nice);
  } catch {
    return; // ESRCH: it exited already; the run reports how.
  }
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch {
    // No such file: the kernel has no autogroups, and the niceness already counts against the supervisor. EAGAIN:
    // without CAP_SYS_ADMIN the kernel takes one such change per 100 ms, and the niceness alone stays.
  }
}
