/**
 * CPU time of a process from /proc/<pid>/stat: its own (utime + stime, every thread) and that of its children it
 * has waited for (cutime + cstime, which includes their own waited-for descendants: a sandbox launcher's command,
 * ripgrep). A child still running, or one nobody has reaped yet, is in neither.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's times (USER_HZ): 100 on every Linux the bench runs on. */
const TICKS_PER_S = 100;

/** Seconds of CPU of a process and of its reaped children. */
export interface CpuTimes {
  self: number;
  children: number;
}

/** The CPU times of `pid` (or of this process) now. */
export function cpuOf(pid: number | 'self' = 'self'): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces: count fields from the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field n is fields[n - 3]: utime 14, stime 15, cutime 16, cstime 17.
  const tick = (n: number): number => Number(fields[n - 3]) / TICKS_PER_S;
  return { self: tick(14) + tick(15), children: tick(16) + tick(17) };
}

/** `after - before`, field by field. */
export function cpuSince(before: CpuTimes, after: CpuTimes): CpuTimes {
  return { self: after.self - before.self, children: after.children - before.children };
}

/** CPU seconds some calls used: the process's own and its reaped children's. */
export interface CpuUse extends CpuTimes {
  calls: number;
}

/** CPU use by kind of call (list, read, exec...). */
export type CpuByKind = Record<string, CpuUse>;

/** The sum over every kind. */
export function totalUse(byKind: CpuByKind): CpuUse {
  const t: CpuUse = { calls: 0, self: 0, children: 0 };
  for (const u of Object.values(byKind)) {
    t.calls += u.calls;
    t.self += u.self;
    t.children += u.children;
  }
  return t;
}
