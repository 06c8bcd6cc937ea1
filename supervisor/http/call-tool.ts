/**
 * The one way to call a tool, whatever the transport (a route, MCP, the provider routes, the shell tool): check its
 * config-dependent limits, then queue it as a job and wait for the outcome event (a job tool), or answer from the
 * supervisor (a supervisor tool). A command answers after `wait_s` with its view as it is then, and keeps running.
 * It knows no catalog of tools (tools.ts has that), so a tool may call others through it.
 */
import { randomUUID } from 'node:crypto';
import type { Response } from 'express';
import type { z } from 'zod';
import { ToolhostError } from '../../lib/errors.js';
import type { Job, JobOutcome } from '../../lib/jobs.js';
import { type JobTool, type ModelContent, modelContent } from '../../lib/tool.js';
import type { CommandRequest } from '../command-jobs.js';
import type { AppDeps, ToolCall } from './deps.js';
import { errorBody } from './errors.js';
import type { SupervisorTool } from './job-tools.js';
import { toolInput } from './validate.js';

/** A tool: queued as a job, or answered by the supervisor. */
export type Tool = JobTool | SupervisorTool;

/** Makes a new job of `tool` with a fresh id; `requestId` ties it to the request that made it (logs). */
export function newJob(tool: Pick<JobTool, 'job'>, projectId: string, payload: Record<string, unknown>, requestId?: string): Job {
  return { id: randomUUID(), type: tool.job.type, mutates: tool.job.mutates, projectId, payload, enqueuedAt: Date.now(), requestId };
}

/** Runs a tool on input its schema already validated; resolves with its answer or throws its error. */
export async function callTool(d: AppDeps, tool: Tool, input: z.output<z.ZodObject>, call: ToolCall = {}): Promise<unknown> {
  const over = tool.limits?.(input, d.config);
  if (over !== undefined) throw new ToolhostError('bad_request', over);
  if ('serve' in tool) return tool.serve(d, input, call);
  const job = newJob(tool, tool.job.project?.(input) ?? String(input.project_id), input, call.requestId);
  if (tool.job.lane === 'commands') return runCommand(d, job, input as CommandRequest & { wait_s?: number }, call);
  const { outcome } = await enqueue(d, job, d.config.http.requestTimeoutS * 1000, call.signal);
  return settle(await outcome, call);
}

/**
 * A call whose answer a model reads (MCP, POST /tools/{name}/call): the arguments parsed (then `adjust`ed), the
 * tool run, and its answer as model content; a failure is the JSON error body as text, for the model to act on.
 * Never throws. `res` is the HTTP response the error body is logged against.
 */
export async function callForModel(
  d: AppDeps,
  tool: Tool,
  args: unknown,
  call: ToolCall,
  res: Response,
  adjust: (input: z.output<z.ZodObject>) => z.output<z.ZodObject> = (input) => input,
): Promise<{ items: ModelContent[]; isError: boolean }> {
  try {
    const input = adjust(toolInput(tool.input, args, `the arguments of ${tool.name}`));
    const value = await callTool(d, tool, input, call);
    return { items: modelContent(tool, value, input, d.config), isError: false };
  } catch (err) {
    return { items: [{ type: 'text', text: JSON.stringify(errorBody(res, err)) }], isError: true };
  }
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
async function runCommand(d: AppDeps, job: Job, req: CommandRequest & { wait_s?: number | undefined }, call: ToolCall): Promise<unknown> {
  await d.jobs.accepted(job, req);
  call.onAccepted?.(job.id);
  const waitMs = (req.background ? 0 : (req.wait_s ?? call.defaultWaitS ?? d.config.commands.defaultWaitS)) * 1000;
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
