/**
 * Killing a command's whole process tree. A command runs as the leader of its own process group, so one
 * `kill(-pgid)` reaches everything that stayed in the group. Processes that left it (setsid, double fork) are
 * found by the marker variable every command carries in its environment, scanned from /proc, the way Jenkins'
 * ProcessTreeKiller does it. Where the command has a pids cgroup, its member list (`members`) replaces the scan:
 * no process can leave the cgroup on its own. Without a cgroup, a process that scrubs its own environment can escape the
 * scan; the bwrap sandbox's pid namespace closes that gap too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { errnoCode } from '../errors.js';

/** Name of the environment variable that marks every process of a job. */
export const JOB_MARKER_VAR = 'TOOLHOST_JOB_ID';

/**
 * Pids of the live (non-zombie) processes of a job: members of process group `pgid`, and any process whose
 * environment carries `TOOLHOST_JOB_ID=<jobId>`.
 */
export async function findTreeProcesses(pgid: number, jobId: string, members?: () => Promise<number[]>): Promise<number[]> {
  // A cgroup is authoritative (no process leaves it on its own), and listing it is far cheaper than scanning
  // every process on the machine. It also lists zombies until they are reaped (a sandbox's pid namespace being
  // torn down): they are past killing, and waiting for them would cost every command milliseconds.
  if (members) return (await members()).filter(alive);
  return scanProc(pgid, Buffer.from(`${JOB_MARKER_VAR}=${jobId}\0`));
}

/** False for a process that is gone, a zombie or dead. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return false;
    // Already in exit (PF_EXITING), or with a SIGKILL pending: it never runs its own code again, so it is past
    // killing like a zombie. A sandbox's pid 1 is found so after every command (its parent bwrap is gone and it is
    // tearing down the namespaces): waiting for it would cost every command a TERM and a sleep.
    if ((Number(fields[6]) & PF_EXITING) !== 0) return false;
    return !killPending(pid);
  } catch {
    return false;
  }
}

/** The kernel's flag of a task in do_exit (include/linux/sched.h). */
const PF_EXITING = 0x4;
/** SIGKILL's bit in the pending masks of /proc/<pid>/status. */
const SIGKILL_BIT = 1n << 8n;

function killPending(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    for (const m of status.matchAll(/^(?:SigPnd|ShdPnd):\s*([0-9a-f]+)$/gm)) if ((BigInt(`0x${m[1]}`) & SIGKILL_BIT) !== 0n) return true;
    return false;
  } catch {
    return false;
  }
}

// Synchronous on purpose: this runs in a pool thread, never on the supervisor's loop, and a few hundred tiny
// procfs reads finish in about a millisecond synchronously versus 10+ ms through the libuv file pool.
function scanProc(pgid: number, needle: Buffer): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return []; // no procfs (not Linux): the process-group kill is all we have
  }
  const found: number[] = [];
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z' || fields[0] === 'X') continue;
      if (Number(fields[2]) === pgid) {
        found.push(pid);
        continue;
      }
      if (hasVariable(readFileSync(`/proc/${pid}/environ`), needle)) found.push(pid);
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return found;
}

/**
 * Pids of `pid` and every live descendant, read from /proc/<p>/task/<t>/children. Only as good as the tree: a
 * process that double-forks leaves it, unless a pid namespace keeps every orphan under the namespace's init (the
 * bubblewrap sandbox), where this is the whole sandbox, for a fraction of a full /proc scan.
 */
export function processSubtree(pid: number): number[] {
  const found: number[] = [];
  const todo = [pid];
  while (todo.length > 0 && found.length < 100_000) {
    const p = todo.pop()!;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // gone
    }
    found.push(p);
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, 'latin1').split(' ')) if (c) todo.push(Number(c));
      } catch {
        // the thread or process is gone
      }
    }
  }
  return found.filter(alive);
}

/** True when an environ block (`NAME=value\0...`) holds `needle` (`NAME=value\0`) as a whole entry. */
function hasVariable(environ: Buffer, needle: Buffer): boolean {
  const at = environ.indexOf(needle);
  return at === 0 || (at > 0 && environ[at - 1] === 0);
}

/** True when process `pid` was started with the marker of job `jobId` in its environment. */
export function carriesMarker(pid: number, jobId: string): boolean {
  try {
    return hasVariable(readFileSync(`/proc/${pid}/environ`), Buffer.from(`${JOB_MARKER_VAR}=${jobId}\0`));
  } catch {
    return false; // gone, or not ours to read
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ESRCH' || code === 'EPERM') return false;
    throw err;
  }
}

/**
 * Sends `sig` to the process group `pgid` and to every live process of the job; returns how many it reached.
 * With `keep` (a persistent shell and the sandbox around it, see session-shell.ts), the group is not signalled
 * as one and the processes in `keep` are spared.
 */
export async function signalTree(
  pgid: number,
  jobId: string,
  sig: NodeJS.Signals,
  members?: () => Promise<number[]>,
  keep?: ReadonlySet<number>,
): Promise<number> {
  if (!keep) signalPid(-pgid, sig);
  let hit = 0;
  for (const pid of await findTreeProcesses(pgid, jobId, members)) if (!keep?.has(pid) && signalPid(pid, sig)) hit++;
  return hit;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Terminates a job's tree (but the processes in `keep`): SIGTERM, up to `graceMs` for it to go, then SIGKILL until nothing is left (a fork bomb
 * keeps spawning for a moment, so the KILL sweep repeats).
 */
export async function killTree(pgid: number, jobId: string, graceMs: number, members?: () => Promise<number[]>, keep?: ReadonlySet<number>): Promise<void> {
  if ((await signalTree(pgid, jobId, 'SIGTERM', members, keep)) === 0) return;
  const deadline = Date.now() + graceMs;
  // Most trees go within milliseconds of TERM: look again soon, then less often.
  for (let delay = 2; Date.now() < deadline; delay = Math.min(delay * 2, 50)) {
    await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
    if ((await findTreeProcesses(pgid, jobId, members)).every((pid) => keep?.has(pid))) return;
  }
  for (let sweep = 0; sweep < 100; sweep++) {
    if ((await signalTree(pgid, jobId, 'SIGKILL', members, keep)) === 0) return;
    await sleep(20);
  }
}
