/**
 * Progress of a command called through MCP: while the call waits, every `mcp.progressIntervalS` the client that
 * sent a progressToken gets a `notifications/progress` with the output the command printed since the last one.
 * It keeps a client's user (and a client that resets its timeout on progress) informed; the answer itself still
 * comes within `mcp.defaultWaitS`, so a client that ignores progress loses nothing.
 *
 * It reads the command through the jobs API (read-only, from offsets it keeps), the same way job_status does, so
 * it works wherever the command runs.
 */
import { type CommandView, isFinal } from '../../handlers/command-view.js';
import type { AppDeps } from './deps.js';

/** Characters of output one notification carries at most: the newest ones (job_status has all of it). */
export const PROGRESS_MESSAGE_CHARS = 4000;

/** What one notification says: `progress` is the seconds since the call began (it only grows). */
export interface Progress {
  progress: number;
  message: string;
}

/**
 * Sends progress of command `jobId` through `send` until `stop` fires or the command ends. Never throws: progress
 * is a courtesy, and a failure to read or send it (the client gone) ends it quietly.
 */
export async function followCommand(d: AppDeps, jobId: string, send: (p: Progress) => Promise<void>, stop: AbortSignal): Promise<void> {
  const began = Date.now();
  const everyMs = d.config.mcp.progressIntervalS * 1000;
  let since = { stdout: 0, stderr: 0 };
  try {
    while (await pause(everyMs, stop)) {
      let view = await d.jobs.page(jobId, since, 0, stop, PROGRESS_MESSAGE_CHARS);
      const ends = { stdout: view.stdout_offset + view.more_bytes.stdout, stderr: view.stderr_offset + view.more_bytes.stderr };
      let skipped = 0;
      if (view.more_bytes.stdout + view.more_bytes.stderr > 0) {
        // More was printed than one message holds: the newest output is what a watcher wants, read from near the end.
        const near = {
          stdout: Math.max(since.stdout, ends.stdout - 3 * PROGRESS_MESSAGE_CHARS),
          stderr: Math.max(since.stderr, ends.stderr - 3 * PROGRESS_MESSAGE_CHARS),
        };
        skipped = near.stdout - since.stdout + (near.stderr - since.stderr);
        view = await d.jobs.page(jobId, near, 0, stop, 3 * PROGRESS_MESSAGE_CHARS);
      }
      if (stop.aborted) return;
      since = ends;
      const seconds = Math.round((Date.now() - began) / 100) / 10;
      await send({ progress: seconds, message: progressMessage(view, seconds, skipped) });
      if (isFinal(view.status)) return;
    }
  } catch {
    // The job forgotten, a worker gone, the client gone: the call's own answer says what happened.
  }
}

/**
 * "job <id> running, 12.5 s" and the new output (stderr marked), cut to its newest {@link PROGRESS_MESSAGE_CHARS};
 * `skipped` bytes of new output before it were not read at all.
 */
export function progressMessage(view: CommandView, seconds: number, skipped = 0): string {
  const head = `job ${view.job_id} ${view.status}, ${seconds} s`;
  const output = view.stdout + (view.stderr ? `${view.stdout && !view.stdout.endsWith('\n') ? '\n' : ''}[stderr]\n${view.stderr}` : '');
  if (!output) return `${head}, no new output`;
  if (output.length <= PROGRESS_MESSAGE_CHARS && skipped === 0) return `${head}\n${output}`;
  let tail = output.slice(-PROGRESS_MESSAGE_CHARS);
  const nl = tail.indexOf('\n');
  if (nl !== -1 && nl < tail.length - 1) tail = tail.slice(nl + 1); // whole lines only, when there are any
  const left = skipped + Buffer.byteLength(output) - Buffer.byteLength(tail);
  return `${head}\n[${left} earlier bytes not shown; job_status has all the output]\n${tail}`;
}

/** Waits `ms`; false when `stop` fired first. */
function pause(ms: number, stop: AbortSignal): Promise<boolean> {
  if (stop.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      stop.removeEventListener('abort', onAbort);
      resolve(ok);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(done, ms, true);
    stop.addEventListener('abort', onAbort, { once: true });
  });
}
