/** Latency of toolhost and its baseline measured alternately, so drift on the machine hits both alike. */
import { percentile } from './stats.js';

/** Latency samples (ms) of both sides. */
export interface PairSamples {
  toolhost: number[];
  baseline: number[];
}

/** Warms both sides up, then alternates one toolhost call and one baseline call `n` times. */
export async function timeAlternately(n: number, warmup: number, toolhost: () => Promise<unknown>, baseline: () => Promise<unknown>): Promise<PairSamples> {
  for (let i = 0; i < warmup; i++) {
    await toolhost();
    await baseline();
  }
  const out: PairSamples = { toolhost: [], baseline: [] };
  for (let i = 0; i < n; i++) {
    // Alternate which side goes first, so neither always follows the other's leftovers (GC, log writes).
    const order: [number[], () => Promise<unknown>][] = [
      [out.toolhost, toolhost],
      [out.baseline, baseline],
    ];
    if (i % 2 === 1) order.reverse();
    for (const [samples, fn] of order) {
      const t0 = performance.now();
      await fn();
      samples.push(performance.now() - t0);
    }
  }
  return out;
}

/** pN of both sides as a figure's value and baseline. */
export function pairPercentile(s: PairSamples, p: number): { value: number; baseline: number } {
  return { value: percentile(s.toolhost, p), baseline: percentile(s.baseline, p) };
}
