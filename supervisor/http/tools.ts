/**
 * Every tool an agent can call, and the one way to call one, whatever the transport (an HTTP route, MCP): check
 * its config-dependent limits, then queue it as a job and wait for the outcome event (a job tool), or answer from
 * the supervisor (a jobs tool). A command answers after `wait_s` with its view as it is then, and keeps running.
 */
import type { z } from 'zod';
import { JOB_TOOLS } from '../../handlers/index.js';
import type { ExecuteRequest } from '../../handlers/execute.js';
import { ToolhostError } from '../../lib/errors.js';
import { type Job, type JobOutcome, newJob } from '../../lib/jobs.js';
import { type JobTool, checkLimits } from '../../lib/tool.js';
import type { AppDeps } from './deps.js';
import { JOB_API_TOOLS, type SupervisorTool } from './job-tools.js';

/** A tool: queued as a job, or answered by the supervisor. */
export type Tool = JobTool | SupervisorTool;

/** Every tool, in the order models see them. */
export const TOOLS: readonly Tool[] = [...JOB_TOOLS, ...JOB_API_TOOLS];

/** The tool of that name, if any. */
export function findTool(name: string): Tool | undefined {
  return TOOLS.find((t) => t.name === name);
}

/** How a call came in, and what the caller may want to know of how it ran. */
export interface ToolCall {
  /** Fires when the caller went away: the wait ends early; a queued job goes on. */
  signal?: AbortSignal | undefined;
  /** X-Request-Id, carried on the job so its log line can be tied to the request's. */
  requestId?: string | undefined;
  /** Set to the worker process that ran the job (distributed queue). */
  worker?: string | undefined;
}

/** Runs a tool on input its schema already validated; resolves with its answer or throws its error. */
export async function callTool(d: AppDeps, tool: Tool, input: z.output<z.ZodObject>, call: ToolCall = {}): Promise<unknown> {
  checkLimits(tool, input, d.config);
  if ('serve' in tool) return tool.serve(d, input, call.signal);
  const job = newJob(tool, String(input.project_id), input, call.requestId);
  if (tool.job.lane === 'commands') return runCommand(d, job, input as ExecuteRequest, call);
  const { outcome } = await enqueue(d, job, d.config.http.requestTimeoutS * 1000, call.signal);
  return settle(await outcome, call);
}

function settle(outcome: JobOutcome, call: ToolCall): unknown {
  call.worker = outcome.worker;
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/**
 * Registers a waiter for the job's outcome, then queues the job, so the outcome cannot be missed. Resolves once
 * the job is queued (it throws `queue_full` or `shutting_down` otherwise) with the pending outcome.
 */
async function enqueue(d: AppDeps, job: Job, waitMs: number, signal?: AbortSignal): Promise<{ outcome: Promise<JobOutcome> }> {
  const refused = new AbortController();
  const stop = signal ? AbortSignal.any([signal, refused.signal]) : refused.signal;
  const outcome = d.queue.waitFor(job.id, { timeoutMs: waitMs, signal: stop });
  // The wait may end (a client gone) while a remote queue still takes the job: the caller reads the outcome after
  // this returns; until then it must not count as an unhandled rejection.
  outcome.catch(() => {});
  try {
    await d.queue.enqueue(job);
  } catch (err) {
    refused.abort(err);
    throw err;
  }
  return { outcome };
}

/**
 * A command: known to the jobs API before it is queued (its job_id answers from the first moment), then waited
 * for up to `wait_s` (none with `background`). Its answer is always its record's view: the final one when it
 * ended in time, the one of now (status "running") when it did not.
 */
async function runCommand(d: AppDeps, job: Job, req: ExecuteRequest, call: ToolCall): Promise<unknown> {
  await d.jobs.accepted(job, req);
  const waitMs = (req.background ? 0 : (req.wait_s ?? d.config.commands.defaultWaitS)) * 1000;
  const stopWaiting = new AbortController();
  const signal = call.signal ? AbortSignal.any([call.signal, stopWaiting.signal]) : stopWaiting.signal;
  let outcome: Promise<JobOutcome>;
  try {
    // The waiter's own bound is a backstop only: the plain wait below ends first.
    ({ outcome } = await enqueue(d, job, waitMs + 60_000, signal));
  } catch (err) {
    await d.jobs.refused(job);
    throw err;
  }
  try {
    const ended = await within(outcome, waitMs, call.signal);
    return ended ? settle(ended, call) : await d.jobs.snapshot(job.id);
  } finally {
    stopWaiting.abort(new ToolhostError('job_deadline', 'the caller stopped waiting'));
  }
}

/** The promise's value if it settles within `ms` (its error if it fails), else undefined; the caller leaving ends the wait. */
async function within<T>(p: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | undefined> {
  if (ms <= 0) return undefined;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const timeUp = new Promise<undefined>((resolve, reject) => {
    timer = setTimeout(resolve, ms, undefined);
    onAbort = () => reject(signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, timeUp]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
