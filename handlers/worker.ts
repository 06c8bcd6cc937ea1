/**
 * The Piscina worker entry: every pool thread loads this file. It runs tool jobs and project chores (archive
 * extraction, size) and never lets an exception escape as anything but a serialized ToolhostError, so a failed
 * job never costs a thread. Cancellation arrives as a message on the task's own port; the handler then kills its
 * own process tree and returns, so the thread is never terminated while it owns children.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'piscina';
import type { Config } from '../config/schema.js';
import type { ArchiveFormat } from '../lib/archive/format.js';
import { extractArchive } from '../lib/archive/extract.js';
import { ToolhostError, toToolhostError } from '../lib/errors.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import type { ControlMessage } from './context.js';
import { HANDLERS } from './index.js';

/** Data every pool thread is started with. */
export interface PoolWorkerData {
  config: Config;
}

/** A task the supervisor posts to a pool thread. */
export type PoolTask =
  | { kind: 'job'; job: Job; root: string; cancelPort?: MessagePort }
  | { kind: 'extract'; file: string; format: ArchiveFormat; dest: string }
  | { kind: 'size'; root: string };

const { config } = workerData as PoolWorkerData;

async function treeSize(dir: string): Promise<number> {
  let total = 0;
  let entries: import('node:fs').Dirent[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await treeSize(p);
    else {
      try {
        total += lstatSync(p).size;
      } catch {
        // gone meanwhile
      }
    }
  }
  return total;
}

async function runJob(task: Extract<PoolTask, { kind: 'job' }>): Promise<unknown> {
  const controller = new AbortController();
  const early: ControlMessage[] = [];
  let stdinSink: ((m: Extract<ControlMessage, { t: 'stdin' }>) => void) | undefined;
  task.cancelPort?.on('message', (m: ControlMessage) => {
    if (m.t === 'cancel') controller.abort(new ToolhostError('cancelled', 'the job was cancelled (shutdown or DELETE); its processes were stopped'));
    else if (stdinSink) stdinSink(m);
    else early.push(m);
  });
  try {
    const handler = HANDLERS[task.job.type] as (req: unknown, ctx: unknown) => Promise<unknown>;
    return await handler(task.job.payload, {
      root: task.root,
      config,
      signal: controller.signal,
      jobId: task.job.id,
      projectId: task.job.projectId,
      port: task.cancelPort,
      onStdin: (sink: NonNullable<typeof stdinSink>) => {
        stdinSink = sink;
        for (const m of early.splice(0)) if (m.t === 'stdin') sink(m);
      },
    });
  } finally {
    task.cancelPort?.close();
  }
}

/** Runs one task; always resolves with a {@link JobOutcome}. */
export default async function run(task: PoolTask): Promise<JobOutcome> {
  try {
    switch (task.kind) {
      case 'job':
        return { ok: true, value: await runJob(task) };
      case 'extract':
        return { ok: true, value: await extractArchive({ file: task.file, format: task.format, dest: task.dest, limits: config.archive }) };
      case 'size':
        return { ok: true, value: await treeSize(task.root) };
    }
  } catch (err) {
    return { ok: false, error: toToolhostError(err).toJSON() };
  }
}
