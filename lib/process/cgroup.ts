/**
 * A pids cgroup per command, when the machine lets us make one: it caps how many processes a command may have
 * (a fork bomb hurts only itself, even as root, where RLIMIT_NPROC does not apply) and lists every process of
 * the command, escaped or not, for the tree kill. cgroup v1's pids hierarchy and cgroup v2 are both handled;
 * where neither is writable, commands fall back to RLIMIT_NPROC alone.
 *
 * And one cpu cgroup all commands share ({@link joinCommandsCpuGroup}), weighted as a single task at
 * `commands.nice`: a command's own niceness ranks it only within its autogroup, and every command is the leader
 * of a session of its own (its process group is its kill handle), so where the kernel groups tasks by session
 * (CONFIG_SCHED_AUTOGROUP, on by default in most distributions) a niced CPU-bound command still weighed as much as
 * the whole supervisor. Measured on this repository's 2-core machine (the isolation bench): read p99 under two
 * CPU-bound commands went from 1.7-3.5x of idle to 0.9-1.6x with the group, about what autogroup turned off gives.
 */
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';

let base: string | null | undefined;
/** Whether {@link base} is on cgroup v2, where a command's pids cgroup is its cpu cgroup as well. */
let v2 = false;

/** The folder under which job cgroups are made, or null when none can be. Probed once per thread. */
export function cgroupBase(): string | null {
  if (base !== undefined) return base;
  base = probe();
  return base;
}

/** Whether this process may write `path` (a cgroup file: root, and a hierarchy mounted read-write). */
export function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function probe(): string | null {
  try {
    // cgroup v1: a dedicated pids hierarchy.
    if (writable('/sys/fs/cgroup/pids/cgroup.procs')) {
      const dir = '/sys/fs/cgroup/pids/toolhost';
      mkdirSync(dir, { recursive: true });
      return dir;
    }
    // cgroup v2: the pids controller must be enabled for our subtree.
    const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
    if (!controllers.split(/\s+/).includes('pids') || !writable('/sys/fs/cgroup/cgroup.subtree_control')) return null;
    writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', '+pids');
    const dir = '/sys/fs/cgroup/toolhost';
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cgroup.subtree_control'), '+pids');
    v2 = true;
    return dir;
  } catch {
    return null;
  }
}

/** One command's cgroup. */
export interface JobCgroup {
  /** The file a process writes its pid to in order to join. */
  procsFile: string;
  /** Pids in the cgroup now. */
  pids(): Promise<number[]>;
  /** Removes the (empty) cgroup; retries briefly while the kernel reaps the last members. */
  remove(): Promise<void>;
}

/** Makes the cgroup of one job with `pids.max`, or returns null when cgroups are not available here. */
export function createJobCgroup(jobId: string, maxPids: number): JobCgroup | null {
  const root = cgroupBase();
  if (!root) return null;
  const dir = join(root, jobId);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, 'pids.max'), String(maxPids));
  } catch {
    return null;
  }
  const procsFile = join(dir, 'cgroup.procs');
  return {
    procsFile,
    pids: async () => {
      let text = '';
      try {
        text = readFileSync(procsFile, 'utf8');
      } catch {
        // removed already
      }
      return text.split('\n').filter(Boolean).map(Number);
    },
    remove: async () => {
      for (let i = 0; i < 50; i++) {
        try {
          await rmdir(dir);
          return;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    },
  };
}

/** The kernel's weight of one task at nice 0..19 (sched_prio_to_weight): cpu.shares of cgroup v1. */
const NICE_WEIGHT = [1024, 820, 655, 526, 423, 335, 272, 215, 172, 137, 110, 87, 70, 56, 45, 36, 29, 23, 18, 15];

/** Per nice value: the cgroup.procs file commands join (cgroup v1), '' when joining their pids cgroup does it (v2), or null. */
const cpuGroups = new Map<number, string | null>();

/**
 * Puts a just-spawned command into the cpu cgroup all commands share, weighted as one task at `nice` against the
 * rest of the machine (the supervisor among it): commands fill idle cores, and yield them when the supervisor's
 * threads want them. Called before a launch that joins its pids cgroup is let go, so what it forks is in the group
 * too; its children stay in it whatever they do (setsid included: cgroup files are root's, and the sandbox has
 * none). cgroup v1: `toolhost` below the supervisor's own cpu cgroup (`/sys/fs/cgroup/cpu/toolhost` when that is
 * the root), cpu.shares; cgroup v2: the weight is on `toolhost`, the parent of the job cgroups, so joining its pids
 * cgroup is enough. Where neither can be set up, the niceness alone stays.
 */
export function joinCommandsCpuGroup(pid: number, nice: number): void {
  let procs = cpuGroups.get(nice);
  if (procs === undefined) {
    procs = setUpCpuGroup(nice);
    cpuGroups.set(nice, procs);
  }
  if (!procs) return;
  try {
    writeFileSync(procs, String(pid));
  } catch {
    // ESRCH: it exited already; the run reports how.
  }
}

function setUpCpuGroup(nice: number): string | null {
  const weight = NICE_WEIGHT[Math.min(Math.max(nice, 0), 19)]!;
  try {
    const own = ownV1CpuCgroup();
    if (own && writable(join(own, 'cgroup.procs'))) {
      const dir = join(own, 'toolhost');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cpu.shares'), String(weight));
      return join(dir, 'cgroup.procs');
    }
    const root = cgroupBase();
    if (!root || !v2) return null;
    const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
    if (!controllers.split(/\s+/).includes('cpu')) return null;
    writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', '+cpu');
    // cpu.weight is 1-10000 with 100 for a nice-0 task's 1024.
    writeFileSync(join(root, 'cpu.weight'), String(Math.max(1, Math.round((weight * 100) / 1024))));
    return '';
  } catch {
    return null;
  }
}

/**
 * The folder of this process's own cgroup in cgroup v1's cpu hierarchy (`cpu` or `cpu,cpuacct`), or null. The
 * commands' group is made below it, not at the hierarchy's root, so a CPU quota an operator put on the service
 * (a systemd unit, a container) still bounds its commands.
 */
function ownV1CpuCgroup(): string | null {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined || !controllers.split(',').includes('cpu')) continue;
    for (const mount of [`/sys/fs/cgroup/${controllers}`, '/sys/fs/cgroup/cpu']) {
      if (writable(join(mount, 'cgroup.procs'))) return join(mount, path);
    }
  }
  return null;
}
