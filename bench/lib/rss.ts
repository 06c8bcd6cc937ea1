/**
 * Memory of another process, read from /proc/<pid>/status: VmRSS (resident now) and VmHWM (the peak). The peak can
 * be reset (`clear_refs` 5, Linux >= 4.0), so the peak of one phase is measured without the start-up's.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** Resident and peak resident bytes of `pid`. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Resets the peak (VmHWM) of `pid` to its current RSS. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/**
 * Samples VmRSS every `intervalMs` until stopped; a cross-check of VmHWM and a way to see when memory grew.
 * Reschedules with setTimeout so samples never overlap.
 */
export class RssSampler {
  readonly #pid: number;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #max = 0;
  #count = 0;

  constructor(pid: number, intervalMs = 20) {
    this.#pid = pid;
    this.#intervalMs = intervalMs;
  }

  start(): this {
    const tick = (): void => {
      try {
        this.#max = Math.max(this.#max, memoryOf(this.#pid).rss);
        this.#count++;
      } catch {
        return; // the process is gone
      }
      this.#timer = setTimeout(tick, this.#intervalMs);
    };
    tick();
    return this;
  }

  /** Stops sampling; the largest RSS seen and how many samples were taken. */
  stop(): { maxRss: number; samples: number } {
    clearTimeout(this.#timer);
    return { maxRss: this.#max, samples: this.#count };
  }
}
