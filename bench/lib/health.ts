/** Reading a supervisor's GET /health: how many jobs wait and run. */
import type { JsonClient } from './http.js';

/** The parts of /health the bench uses. */
interface Health {
  queue: { depth: number };
  jobs: { running: number; by_type: Partial<Record<string, number>> };
}

async function pollHealth(th: JsonClient, done: (h: Health) => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = (await th.get('/health')).body as Health;
    if (done(h)) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached after ${timeoutMs / 1000} s: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until no job is queued or running (e.g. jobs left by a load run whose clients went away). */
export function waitForIdle(th: JsonClient, timeoutMs = 60_000): Promise<void> {
  return pollHealth(th, (h) => h.queue.depth === 0 && h.jobs.running === 0, timeoutMs, 'an idle supervisor');
}

/** Waits until at least `n` commands run. */
export function waitForRunningCommands(th: JsonClient, n: number, timeoutMs = 20_000): Promise<void> {
  return pollHealth(th, (h) => (h.jobs.by_type.execute ?? 0) >= n, timeoutMs, `${n} running commands`);
}
