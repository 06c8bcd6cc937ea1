/**
 * The Piscina worker entry: every pool thread loads this file. It runs tool jobs and project chores (extraction
 * of uploads, download and extraction from the store, packing and upload to it, tree sizes) and never lets an
 * exception escape as anything but a serialized ToolhostError, so a failed job never costs a thread.
 * Cancellation arrives as a message on the task's own port; the handler then kills its own process tree and
 * returns, so the thread is never terminated while it owns children.
 */
import { rmSync } from 'node:fs';
import { workerData } from 'piscina';
import { extractArchive } from '../lib/archive/extract.js';
import { packTree } from '../lib/archive/pack.js';
import { walkTree } from '../lib/archive/tree-walk.js';
import { ToolhostError, toToolhostError } from '../lib/errors.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import { collectLayers } from '../lib/layers/collect.js';
import {
  compactLayers,
  forkLayers,
  type LayerContext,
  listCheckpoints,
  materializeLayers,
  restoreLayers,
  saveLayers,
  uploadLayers,
} from '../lib/layers/ops.js';
import { chownTree, projectOwner } from '../lib/process/owner.js';
import { openStore } from '../lib/store/create-store.js';
import type { ProjectStore } from '../lib/store/project-store.js';
import { jobToolOf } from './index.js';
import type { ControlMessage, MaterializeResult, PoolTask, PoolWorkerData } from './protocol.js';
import { hostSession } from './session-host.js';

const { config } = workerData as PoolWorkerData;

/**
 * Fault injection for tests of delivery (never set in production): TOOLHOST_TEST_FAULTS is JSON; a job whose
 * `path` is `crashPath` ends its thread as a native crash would, one whose `path` is `slowPath` waits `slowMs`
 * before it runs.
 */
const FAULTS = JSON.parse(process.env.TOOLHOST_TEST_FAULTS || '{}') as { crashPath?: string; slowPath?: string; slowMs?: number };

async function injectFaults(job: Job): Promise<void> {
  const path = job.payload.path;
  if (path === undefined) return;
  // biome-ignore lint/nursery/noProcessExit: test-only fault injection; it ends this pool thread as a native crash would
  if (path === FAULTS.crashPath) process.exit(70);
  if (path === FAULTS.slowPath) await new Promise((r) => setTimeout(r, FAULTS.slowMs ?? 5_000));
}

/** This thread's client of the project store, made on first use. */
let store: Promise<ProjectStore> | undefined;
function theStore(): Promise<ProjectStore> {
  store ??= openStore(config).catch((err: unknown) => {
    store = undefined; // the next task tries again: the store may be back
    throw err;
  });
  return store;
}

/** What the layer operations need of this thread. */
async function layers(): Promise<LayerContext> {
  return { store: await theStore(), limits: config.archive, owner: (id) => projectOwner(config, id) };
}

/**
 * Downloads and extracts a project into `dest`: its layers, or its plain archive. A tar.gz flows from the download
 * straight into extraction; a zip (its directory is at its end) lands in a scratch file first.
 */
async function materialize(task: Extract<PoolTask, { kind: 'materialize' }>): Promise<MaterializeResult> {
  const layered = await materializeLayers(await layers(), task.id, task.dest, task.statePath);
  if (layered) return { format: 'layers', etag: layered.etag, bytes: layered.bytes };
  // A plain archive: its first save writes the whole copy as a base layer, so no state is kept for it.
  rmSync(task.statePath, { force: true });
  const loaded = await (await theStore()).load(task.id, task.scratch);
  if (loaded.kind === 'stream') {
    const done = await extractArchive({ stream: { body: loaded.stream, size: loaded.size }, format: loaded.format, dest: task.dest, limits: config.archive });
    chownTree(task.dest, projectOwner(config, task.id));
    return { format: loaded.format, etag: loaded.etag, bytes: done.bytes };
  }
  try {
    const done = await extractArchive({ file: loaded.file, format: loaded.format, dest: task.dest, limits: config.archive });
    chownTree(task.dest, projectOwner(config, task.id));
    return { format: loaded.format, etag: loaded.etag, bytes: done.bytes };
  } finally {
    await loaded.release();
  }
}

/** Packs the whole working copy into `out` (GET /projects/:id/archive). */
async function pack(task: Extract<PoolTask, { kind: 'pack' }>): Promise<{ bytes: number }> {
  const packed = await packTree({ root: task.root, format: task.format, out: task.out, exclude: task.exclude, limits: config.archive });
  return { bytes: packed.archiveBytes };
}

/** Bytes of the files under `root` (0 when it is gone): the same walk as packing, so the two never disagree. */
function treeSize(root: string): number {
  let total = 0;
  try {
    for (const entry of walkTree(root, [])) if (entry.kind === 'file') total += entry.size;
  } catch {
    return total;
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
    await injectFaults(task.job);
    const tool = jobToolOf(task.job.type);
    if (!tool || !('handler' in tool.job)) throw new ToolhostError('internal', `no pool tool runs jobs of type "${task.job.type}"`);
    return await tool.job.handler(task.job.payload, {
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
      case 'extract': {
        // A working copy belongs to its project's uid from the start (mode 0700): no other project's can read it.
        const done = await extractArchive({ file: task.file, format: task.format, dest: task.dest, limits: config.archive });
        chownTree(task.dest, projectOwner(config, task.id));
        return { ok: true, value: done };
      }
      case 'materialize':
        return { ok: true, value: await materialize(task) };
      case 'save':
        return { ok: true, value: await saveLayers(await layers(), task) };
      case 'upload':
        return { ok: true, value: (await uploadLayers(await layers(), task)).etag };
      case 'restore':
        return { ok: true, value: await restoreLayers(await layers(), task) };
      case 'fork':
        return { ok: true, value: await forkLayers(await layers(), task.id, task.newId, task.checkpointId) };
      case 'compact':
        return { ok: true, value: await compactLayers(await layers(), task) };
      case 'checkpoints':
        return { ok: true, value: await listCheckpoints(await layers(), task.id) };
      case 'collect':
        return { ok: true, value: await collectLayers(await theStore(), task.graceMs) };
      case 'pack':
        return { ok: true, value: await pack(task) };
      case 'size':
        return { ok: true, value: treeSize(task.root) };
      case 'session':
        await hostSession(task, config);
        return { ok: true, value: null };
    }
  } catch (err) {
    return { ok: false, error: toToolhostError(err).toJSON() };
  }
}
