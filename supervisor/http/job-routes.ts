/**
 * A command job's output as Server-Sent Events, for clients that show it live. Output is read from the job's log
 * files; waiting is by event (one timer per waiting request).
 */
import express, { type Response } from 'express';
import { isFinal } from '../../handlers/command-view.js';
import { ToolhostError } from '../../lib/errors.js';
import { jobId } from '../../lib/schemas.js';
import type { AppDeps } from './deps.js';
import { outputOffsets } from './job-tools.js';
import { clientGone } from './tools.js';
import { validate } from './validate.js';

/** GET /jobs/:id/stream (the other jobs routes are tools: job-tools.ts). */
export function jobRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  router.get('/jobs/:id/stream', async (req, res) => {
    const parsed = jobId.safeParse(req.params.id);
    if (!parsed.success) throw new ToolhostError('job_not_found', `"${req.params.id}" is not a job id; use the job_id that /execute returned`);
    const q = validate(outputOffsets, { ...req.query }, 'GET /jobs/:id/stream query');
    await d.jobs.page(parsed.data, { stdout: 0, stderr: 0 }, 0); // 404 before the stream starts
    await streamJob(d, parsed.data, { stdout: q.stdout_offset, stderr: q.stderr_offset }, res);
  });
  return router;
}

/** Server-Sent Events: `stdout` and `stderr` events carry output text (JSON strings), `end` the final status. */
async function streamJob(d: AppDeps, id: string, from: { stdout: number; stderr: number }, res: Response): Promise<void> {
  res.status(200).set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.flushHeaders();
  const gone = clientGone(res);
  const offsets = { ...from };
  // A slow reader makes us wait rather than buffer the whole log in memory.
  const send = async (event: string, data: unknown): Promise<void> => {
    if (!res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`) && !gone.aborted) {
      await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        gone.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  };
  while (!gone.aborted) {
    // Waits up to 15 s for news; an empty pass sends a comment line that keeps proxies from closing the stream.
    const view = await d.jobs.page(id, offsets, 15_000, gone);
    let sent = false;
    for (const s of ['stdout', 'stderr'] as const) {
      if (view[s].length > 0) {
        await send(s, { text: view[s], offset: offsets[s], next_offset: view[`${s}_offset`] });
        sent = true;
      }
    }
    offsets.stdout = view.stdout_offset;
    offsets.stderr = view.stderr_offset;
    const final = isFinal(view.status);
    if (final && view.more_bytes.stdout === 0 && view.more_bytes.stderr === 0) {
      await send('end', { status: view.status, exit_code: view.exit_code, signal: view.signal, duration_ms: view.duration_ms, error: view.error });
      break;
    }
    if (!sent && !final) res.write(': keep-alive\n\n');
  }
  res.end();
}
