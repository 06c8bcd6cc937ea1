/**
 * A pids cgroup per command, when the machine lets us make one: it caps how many processes a command may have
 * (a fork bomb hurts only itself, even as root, where RLIMIT_NPROC does not apply) and lists every process of
 * the command, escaped or not, for the tree kill. cgroup v1's pids hierarchy and cgroup v2 are both handled;
 * where neither is writable, commands fall back to RLIMIT_NPROC alone.
 */
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';

let base: string | null | undefined;

/** The folder under which job cgroups are made, or null when none can be. Probed once per thread. */
export function cgroupBase(): string | null {
  if (base !== undefined) return base;
  base = probe();
  return base;
}

function writable(path: string): boolean {
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
