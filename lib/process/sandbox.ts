/**
 * How a command is launched: resource limits (setrlimit through bash's `ulimit`), an optional pids cgroup, and
 * an optional bubblewrap sandbox (the project read-write, the rest of the file system read-only, a private /tmp,
 * the data dir hidden, a pid namespace that dies with the command, no network unless allowed).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Which sandbox commands run in. */
export type SandboxMode = 'none' | 'bwrap';

/** Resource limits of one command process (0 = unlimited). */
export interface CommandLimits {
  addressSpaceBytes: number;
  cpuSeconds: number;
  processes: number;
  openFiles: number;
  fileSizeBytes: number;
}

/** The absolute path of an executable on PATH, or null. */
export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/** The sandbox a setting resolves to on this machine: `auto` means bwrap when installed. */
export function resolveSandbox(setting: 'none' | 'bwrap' | 'auto'): { mode: SandboxMode; bwrap: string | null } {
  const bwrap = setting === 'none' ? null : which('bwrap');
  if (setting === 'bwrap' && !bwrap) {
    throw new Error('commands.sandbox is "bwrap" but bwrap is not installed; install bubblewrap (apt-get install bubblewrap) or set commands.sandbox to "auto"');
  }
  return { mode: bwrap ? 'bwrap' : 'none', bwrap };
}

/** Everything needed to build the argv of one command. */
export interface LaunchSpec {
  command: string;
  cwd: string;
  /** The project root: writable inside the sandbox. */
  root: string;
  /** HOME of the command: writable inside the sandbox. */
  home: string;
  /** Hidden inside the sandbox (other projects, logs), except root and home. */
  dataDir: string;
  limits: CommandLimits;
  /** A cgroup.procs file the command joins before anything else runs. */
  cgroupProcs?: string | undefined;
  sandbox: { mode: SandboxMode; bwrap: string | null };
  network: boolean;
}

const KiB = 1024;

/** The file and argv to spawn: bash sets limits and joins the cgroup, then execs bwrap (or bash) with the command. */
export function launchArgv(spec: LaunchSpec): { file: string; args: string[] } {
  const l = spec.limits;
  const steps = [
    ulimit('-v', 'Max address space', l.addressSpaceBytes, KiB),
    ulimit('-t', 'Max cpu time', l.cpuSeconds, 1),
    ulimit('-u', 'Max processes', l.processes, 1),
    ulimit('-n', 'Max open files', l.openFiles, 1),
    ulimit('-f', 'Max file size', l.fileSizeBytes, KiB),
  ].filter((x): x is string => x !== undefined);
  // Joining first means every process the command starts is counted and found, wherever it goes.
  if (spec.cgroupProcs) steps.unshift(`echo $$ > '${spec.cgroupProcs}'`);
  const inner = ['bash', '-c', spec.command];
  const argv = spec.sandbox.mode === 'bwrap' && spec.sandbox.bwrap ? [spec.sandbox.bwrap, ...bwrapArgs(spec), '--', ...inner] : inner;
  return { file: 'bash', args: ['-c', [...steps, 'exec "$@"'].join(' && '), 'toolhost', ...argv] };
}

let hardLimits: Map<string, number> | undefined;

/** This process's hard limits (children inherit them), from /proc/self/limits; Infinity for unlimited. */
function hardLimit(name: string): number {
  if (!hardLimits) {
    hardLimits = new Map();
    try {
      for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
        const m = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
        if (m) hardLimits.set(m[1]!.trim(), m[3] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[3]));
      }
    } catch {
      // not Linux: assume nothing is capped
    }
  }
  return hardLimits.get(name) ?? Number.POSITIVE_INFINITY;
}

/**
 * A `ulimit` that lowers one limit to `value` (in the limit's own unit, bytes or counts), never above the hard
 * limit the supervisor has (raising it needs privileges a container rarely has); 0 leaves it alone. Computed
 * here, not in the shell, so the prelude forks nothing.
 */
function ulimit(flag: string, name: string, value: number, unit: number): string | undefined {
  if (value <= 0) return undefined;
  const v = Math.min(value, hardLimit(name));
  return Number.isFinite(v) ? `ulimit -S -H ${flag} ${Math.ceil(v / unit)}` : undefined;
}

function bwrapArgs(spec: LaunchSpec): string[] {
  const args = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--tmpfs', spec.dataDir];
  args.push('--bind', spec.root, spec.root, '--bind', spec.home, spec.home);
  args.push('--unshare-pid', '--die-with-parent', '--chdir', spec.cwd);
  if (!spec.network) args.push('--unshare-net');
  return args;
}
