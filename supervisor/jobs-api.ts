/**
 * The jobs API (list, page through output, stdin, cancel) over wherever a command runs. On one machine that is
 * this process's registry ({@link LocalJobs}). With the Azure queue the command runs on some worker: its record
 * (`jobs/<id>.json` in the coordination container) names the worker, the call goes to that worker's queue and
 * its registry answers ({@link RemoteJobs}); once the worker is gone, the record's final view answers.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { Config } from '../config/schema.js';
import type { CommandView, JobListItem } from '../handlers/command-view.js';
import { ToolhostError, toToolhostError } from '../lib/errors.js';
import type { Job } from '../lib/jobs.js';
import type { AzureQueue } from '../lib/queue/azure/azure-queue.js';
import { BLOBS } from '../lib/queue/azure/names.js';
import type { CommandJobs, CommandRequest } from './command-jobs.js';
import type { Logger } from './logger.js';

type Offsets = { stdout: number; stderr: number };

/** The jobs API, wherever the commands run. */
export interface JobsApi {
  /** A command was accepted and is about to be queued. */
  accepted(job: Job, req: CommandRequest): Promise<void>;
  /** The queue refused it after all. */
  refused(job: Job): Promise<void>;
  list(projectId?: string): Promise<JobListItem[]>;
  /**
   * The next page of output past `since`, waiting up to `waitMs` for some, within `budget` characters of both
   * streams together (default budgets.outputChars).
   */
  page(id: string, since: Offsets, waitMs: number, signal?: AbortSignal, budget?: number): Promise<CommandView>;
  /** Head and tail of all output so far, within the command's budget. */
  snapshot(id: string): Promise<CommandView>;
  input(id: string, data: string, eof: boolean): Promise<void>;
  /** Cancels and waits (up to `waitMs`) for the process tree to be gone. */
  cancel(id: string, waitMs: number): Promise<CommandView>;
}

/** The jobs API on this process's registry. */
export class LocalJobs implements JobsApi {
  constructor(readonly commands: CommandJobs) {}

  async accepted(job: Job, req: CommandRequest): Promise<void> {
    this.commands.create(job, req);
  }

  async refused(job: Job): Promise<void> {
    this.commands.drop(job.id);
  }

  async list(projectId?: string): Promise<JobListItem[]> {
    return this.commands.list(projectId);
  }

  page(id: string, since: Offsets, waitMs: number, signal?: AbortSignal, budget?: number): Promise<CommandView> {
    return this.commands.nextPage(id, since, waitMs, signal, budget);
  }

  snapshot(id: string): Promise<CommandView> {
    return this.commands.view(id, 'snapshot');
  }

  async input(id: string, data: string, eof: boolean): Promise<void> {
    this.commands.input(id, data, eof);
  }

  async cancel(id: string, waitMs: number): Promise<CommandView> {
    this.commands.cancel(id);
    await this.commands.done(id, waitMs);
    return this.commands.view(id, 'snapshot');
  }

  /** Answers a call from another process (see {@link RemoteJobs}). */
  answer(op: string, args: unknown): Promise<unknown> {
    const a = args as { id: string; since: Offsets; waitMs: number; data: string; eof: boolean; budget?: number };
    switch (op) {
      case 'page':
        // From another process: a budget that is not a count of characters is the default one.
        return this.page(a.id, a.since, a.waitMs, undefined, Number.isSafeInteger(a.budget) && (a.budget ?? 0) > 0 ? a.budget : undefined);
      case 'snapshot':
        return this.snapshot(a.id);
      case 'input':
        return this.input(a.id, a.data, a.eof);
      case 'cancel':
        return this.cancel(a.id, a.waitMs);
      default:
        throw new ToolhostError('bad_request', `unknown call "${op}"`);
    }
  }
}

/** What a worker writes about a command it took: where it runs, and once it ended, its final view. */
interface JobRecord {
  job_id: string;
  project_id: string;
  command: string;
  stdin: 'null' | 'pipe';
  /** The worker that took it; empty while it waits in a queue. */
  node: string;
  created_at: string;
  final?: CommandView;
}

/** A command's record in the coordination container; its metadata serves GET /jobs without reading each blob. */
export class JobRecords {
  /** Writes of one record land in order (a fast command's "ended" must not be overwritten by its "taken"). */
  readonly #writes = new Map<string, Promise<void>>();

  constructor(
    private readonly container: ContainerClient,
    private readonly nodeId: string,
  ) {}

  /** An API process queued the command (`node` empty) or a worker took it (`node` its own). */
  async write(job: Job, node: string): Promise<void> {
    const req = job.payload as unknown as CommandRequest;
    await this.#write(
      { job_id: job.id, project_id: job.projectId, command: req.command, stdin: req.stdin ?? 'null', node, created_at: new Date(job.enqueuedAt).toISOString() },
      'queued',
    );
  }

  /** The command ended with `view`. */
  async ended(job: Job, view: CommandView): Promise<void> {
    await this.#write(
      {
        job_id: job.id,
        project_id: job.projectId,
        command: String(job.payload.command),
        stdin: view.stdin,
        node: this.nodeId,
        created_at: view.created_at,
        final: view,
      },
      view.status,
      view,
    );
  }

  /** Removes the record of a command that was never queued. */
  async remove(id: string): Promise<void> {
    await this.container.deleteBlob(BLOBS.job(id)).catch(() => {});
  }

  async read(id: string): Promise<JobRecord> {
    try {
      // One GET of the whole blob: downloadToBuffer asks for the size first and then reads that many bytes, so a
      // record rewritten in between (a worker taking the command) came back cut short.
      const res = await this.container.getBlockBlobClient(BLOBS.job(id)).download(0);
      const chunks: Buffer[] = [];
      for await (const chunk of res.readableStreamBody ?? []) chunks.push(chunk as Buffer);
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as JobRecord;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) throw notFound(id);
      throw err;
    }
  }

  /** Records newest first; those past `retentionMs` since they ended are removed on the way. */
  async list(projectId: string | undefined, retentionMs: number): Promise<JobListItem[]> {
    const items: JobListItem[] = [];
    const now = Date.now();
    for await (const b of this.container.listBlobsFlat({ prefix: BLOBS.jobsPrefix, includeMetadata: true })) {
      const m = b.metadata ?? {};
      if (m.finished_at && Date.parse(m.finished_at) + retentionMs <= now) {
        void this.container.deleteBlob(b.name).catch(() => {});
        continue;
      }
      if (projectId && m.project_id !== projectId) continue;
      items.push({
        job_id: b.name.slice(BLOBS.jobsPrefix.length, -'.json'.length),
        project_id: m.project_id ?? '',
        command: decodeURIComponent(m.command ?? ''),
        status: (m.status ?? 'queued') as JobListItem['status'],
        exit_code: m.exit_code ? Number(m.exit_code) : null,
        created_at: m.created_at ?? '',
        finished_at: m.finished_at || null,
      });
    }
    return items.sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  #write(r: JobRecord, status: string, view?: CommandView): Promise<void> {
    const prev = this.#writes.get(r.job_id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(() => this.#upload(r, status, view));
    this.#writes.set(r.job_id, next);
    void next
      .catch(() => {})
      .finally(() => {
        if (this.#writes.get(r.job_id) === next) this.#writes.delete(r.job_id);
      });
    return next;
  }

  async #upload(r: JobRecord, status: string, view?: CommandView): Promise<void> {
    const body = JSON.stringify(r);
    const command = r.command.length > 200 ? `${r.command.slice(0, 200)}…` : r.command;
    await this.container.getBlockBlobClient(BLOBS.job(r.job_id)).upload(body, Buffer.byteLength(body), {
      metadata: {
        project_id: r.project_id,
        status,
        command: encodeURIComponent(command),
        created_at: r.created_at,
        finished_at: view?.finished_at ?? '',
        exit_code: view?.exit_code === null || view?.exit_code === undefined ? '' : String(view.exit_code),
      },
      blobHTTPHeaders: { blobContentType: 'application/json' },
    });
  }
}

function notFound(id: string): ToolhostError {
  return new ToolhostError(
    'job_not_found',
    `no command job ${id}; it never existed, it has not reached a worker yet, or it finished more than jobs.retentionMinutes ago (see GET /jobs)`,
    { job_id: id },
  );
}

/** The jobs API across machines: the record names the worker; the worker's registry answers. */
export class RemoteJobs implements JobsApi {
  constructor(
    private readonly o: {
      queue: AzureQueue;
      records: JobRecords;
      nodeId: string;
      /** This process's registry when it is a worker too (role "all"): its own commands are answered here. */
      local: LocalJobs | undefined;
      config: () => Config;
      log: Logger;
    },
  ) {}

  accepted(job: Job): Promise<void> {
    return this.o.records.write(job, '');
  }

  refused(job: Job): Promise<void> {
    return this.o.records.remove(job.id);
  }

  list(projectId?: string): Promise<JobListItem[]> {
    return this.o.records.list(projectId, this.o.config().jobs.retentionMinutes * 60_000);
  }

  page(id: string, since: Offsets, waitMs: number, signal?: AbortSignal, budget?: number): Promise<CommandView> {
    return this.#ask(id, 'page', { id, since, waitMs, budget }, waitMs, signal) as Promise<CommandView>;
  }

  snapshot(id: string): Promise<CommandView> {
    return this.#ask(id, 'snapshot', { id }, 0) as Promise<CommandView>;
  }

  async input(id: string, data: string, eof: boolean): Promise<void> {
    await this.#ask(id, 'input', { id, data, eof }, 0);
  }

  cancel(id: string, waitMs: number): Promise<CommandView> {
    return this.#ask(id, 'cancel', { id, waitMs }, waitMs) as Promise<CommandView>;
  }

  /** The record of a job, once a worker has taken it (waiting up to `waitMs` for one to): null if none has. */
  async #taken(id: string, waitMs: number, signal?: AbortSignal): Promise<JobRecord & { queued?: CommandView }> {
    const until = Date.now() + waitMs;
    for (;;) {
      const rec = await this.o.records.read(id);
      if (rec.node || Date.now() >= until || signal?.aborted) return rec.node ? rec : { ...rec, queued: queuedView(rec) };
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, until - Date.now()))));
    }
  }

  async #ask(id: string, op: string, args: unknown, waitMs: number, signal?: AbortSignal): Promise<unknown> {
    const rec = await this.#taken(id, op === 'page' ? waitMs : op === 'snapshot' ? 0 : 10_000, signal);
    if (rec.queued) {
      if (op === 'page' || op === 'snapshot') return rec.queued;
      throw new ToolhostError('job_deadline', `job ${id} has not reached a worker yet (the queue is busy); send the ${op} again shortly`, { job_id: id });
    }
    try {
      if (rec.node === this.o.nodeId && this.o.local) return await this.o.local.answer(op, args);
      if (!(await this.o.queue.alive(rec.node))) throw new ToolhostError('worker_lost', `worker ${rec.node} is gone`);
      // The call waits on the worker; the round trip (two queue polls) gets its time on top.
      const call = this.o.queue.call(rec.node, op, args, waitMs + 15_000);
      return await (signal ? Promise.race([call, aborted(signal)]) : call);
    } catch (err) {
      const code = toToolhostError(err).code;
      if (code !== 'worker_lost' && code !== 'job_not_found') throw err;
      if (!rec.final && code === 'worker_lost') {
        throw new ToolhostError(
          'worker_lost',
          `the worker running job ${id} (${rec.node}) stopped before the command ended; its output is gone. Check the project's state, then run the command again if needed`,
          { job_id: id, node: rec.node },
        );
      }
      if (!rec.final) throw err;
    }
    // The worker is gone, or has forgotten the job: the record's final view answers.
    if (op === 'input') throw new ToolhostError('job_finished', `job ${id} has already ended (${rec.final.status}); its stdin is closed`);
    return rec.final;
  }
}

/** The view of a command no worker has taken yet. */
function queuedView(rec: JobRecord): CommandView {
  const zero = { stdout: 0, stderr: 0 };
  const no = { stdout: false, stderr: false };
  return {
    job_id: rec.job_id,
    project_id: rec.project_id,
    status: 'queued',
    exit_code: null,
    signal: null,
    timed_out: false,
    cancelled: false,
    duration_ms: null,
    created_at: rec.created_at,
    started_at: null,
    finished_at: null,
    stdin: rec.stdin,
    stdout: '',
    stderr: '',
    stdout_offset: 0,
    stderr_offset: 0,
    more_bytes: zero,
    omitted_bytes: zero,
    omitted_lines: zero,
    omitted_offset: { stdout: null, stderr: null },
    truncated: no,
    invalid_utf8: no,
    log_dropped_bytes: zero,
    logs_removed: false,
  };
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
