/**
 * The registry of command jobs, for commands that outlive their request: status, spooled output sizes, waiters
 * for new output, stdin, cancel, retention.
 *
 * A command's states (changed only in #finish and started()):
 *   queued -> running -> completed | timed_out | cancelled | failed | interrupted
 *   queued -> cancelled | interrupted  (cancelled before it started; a graceful stop ended it)
 *   queued -> failed      (it could not start: unknown project, bad cwd...)
 *   queued | running -> interrupted   (found so at start: the last server stopped or crashed under it)
 * Output lives in log files on disk (see lib/process/job-logs.ts); this registry holds only their sizes. Each
 * record is also kept on disk beside its logs (command-records.ts, which says when), so finished jobs outlive a
 * restart.
 */
import { rm } from 'node:fs/promises';
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import { type CommandStatus, type CommandView, isFinal, type JobListItem } from '../handlers/command-view.js';
import type { ExecuteRequest, ExecuteResult } from '../handlers/execute.js';
import type { ControlMessage, ProgressMessage } from '../handlers/protocol.js';
import { forClients, ToolhostError } from '../lib/errors.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import { headAndTail, logRegion, type PerStream, pages, type Region, type StreamText } from '../lib/process/command-output.js';
import { jobLogPaths } from '../lib/process/job-logs.js';
import { CommandRecordFiles, FOREGROUND_RECORD_MS, listItem, recordView, type SavedCommand } from './command-records.js';
import type { Logger } from './logger.js';

type Stream = 'stdout' | 'stderr';

/** A command's record: what is saved on disk, and what lives only while the server runs. */
interface CommandRecord extends SavedCommand {
  port?: MessagePort | undefined;
  cancelRequested: boolean;
  /** A graceful stop ended it: it ends `interrupted`, not `cancelled`. */
  interruptRequested: boolean;
  /** Input sent before the command started, delivered when it does. */
  pendingInput: ControlMessage[];
  /** Woken on every change (new output, a new status). */
  waiters: Set<() => void>;
  /** A foreground job not yet on disk: the timer that writes it (see the file's comment). */
  unsaved?: NodeJS.Timeout | undefined;
}

/** What the registry keeps of a command's request: an /execute's, or a session exec's (no stdin, never background). */
export type CommandRequest = Pick<ExecuteRequest, 'command' | 'max_output_chars'> & Partial<Pick<ExecuteRequest, 'stdin' | 'background'>>;

/** The registry; an actor with start() and close(). */
export class CommandJobs {
  readonly #config: Config;
  /** The output budgets in effect (a reload may change them; the rest of #config is read at start). */
  readonly #budgets: () => Config['budgets'];
  readonly #log: Logger;
  readonly #records = new Map<string, CommandRecord>();
  readonly #files: CommandRecordFiles;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(config: Config, log: Logger, budgets: () => Config['budgets'] = () => config.budgets) {
    this.#config = config;
    this.#budgets = budgets;
    this.#log = log;
    this.#files = new CommandRecordFiles(config.dataDir, log);
  }

  /**
   * Loads the jobs the last server left (those it did not see end become `interrupted`), forgets those past
   * jobs.retentionMinutes, and starts the sweeper.
   */
  async start(): Promise<void> {
    const loaded = await this.#files.load(Date.now());
    for (const saved of loaded.records) {
      this.#records.set(saved.id, { ...saved, cancelRequested: false, interruptRequested: false, pendingInput: [], waiters: new Set() });
    }
    if (loaded.records.length > 0 || loaded.removed > 0) {
      this.#log.info(
        { jobs: loaded.records.length, interrupted: loaded.interrupted, removed_files: loaded.removed },
        'command jobs of the last run loaded; those it did not see end are interrupted',
      );
    }
    await this.sweep();
    this.#scheduleSweep();
  }

  /** Stops the sweeper, wakes every waiter and lets the records' last writes land. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    for (const r of this.#records.values()) {
      this.#handOut(r);
      this.#wake(r);
    }
    await this.#files.flush();
  }

  /** Registers a command job (an execute, or a session's exec) before it is queued. */
  create(job: Job, req: CommandRequest): void {
    const r: CommandRecord = {
      id: job.id,
      projectId: job.projectId,
      command: req.command,
      stdin: req.stdin ?? 'null',
      background: req.background ?? false,
      budget: req.max_output_chars ?? this.#budgets().outputChars,
      status: 'queued',
      createdAt: job.enqueuedAt,
      sizes: { stdout: 0, stderr: 0 },
      cancelRequested: false,
      interruptRequested: false,
      sessionId: typeof job.payload.session_id === 'string' ? job.payload.session_id : undefined,
      pendingInput: [],
      waiters: new Set(),
      logsRemoved: false,
    };
    this.#records.set(job.id, r);
    // Its id may be handed out before it starts (background): a crash must not make it job_not_found.
    if (r.background) void this.#files.save(r);
    else {
      r.unsaved = setTimeout(() => this.#save(r), FOREGROUND_RECORD_MS);
      r.unsaved.unref();
    }
  }

  /** Writes the record as it is now; a foreground job's first write comes early when its id is handed out. */
  #save(r: CommandRecord): void {
    clearTimeout(r.unsaved);
    r.unsaved = undefined;
    void this.#files.save(r);
  }

  /** The id of `r` is about to reach a client: a foreground job not written yet is written now. */
  #handOut(r: CommandRecord): CommandRecord {
    if (r.unsaved) this.#save(r);
    return r;
  }

  /** Forgets a job that never made it onto the queue. */
  drop(id: string): void {
    const r = this.#records.get(id);
    if (!r) return;
    this.#records.delete(id);
    clearTimeout(r.unsaved);
    void this.#files.remove(id);
  }

  #get(id: string): CommandRecord {
    const r = this.#records.get(id);
    if (!r) {
      throw new ToolhostError('job_not_found', `no command job ${id}; it never existed, or it finished more than jobs.retentionMinutes ago (see GET /jobs)`, {
        job_id: id,
      });
    }
    return this.#handOut(r);
  }

  /** True when the job is a known command job. */
  has(id: string): boolean {
    return this.#records.has(id);
  }

  /** Pump side: true when the job was cancelled before it started, so it must not start. */
  cancelledBeforeStart(id: string): boolean {
    return this.#records.get(id)?.cancelRequested ?? false;
  }

  /** Pump side: the command started; `port` is its control channel. */
  started(id: string, port: MessagePort): void {
    const r = this.#records.get(id);
    if (!r) return;
    r.status = 'running';
    r.startedAt = Date.now();
    r.port = port;
    port.on('message', (m: ProgressMessage) => {
      if (m.t !== 'progress') return;
      r.sizes = { stdout: m.stdout, stderr: m.stderr };
      this.#wake(r);
    });
    for (const m of r.pendingInput) port.postMessage(m);
    r.pendingInput = [];
    // The evidence a crash leaves: found "running" at the next start, it is reported interrupted (a foreground job's
    // pending first write carries it).
    if (!r.unsaved) this.#save(r);
    this.#wake(r);
  }

  /**
   * Pump side: the job ended with `outcome` (or never started). Returns its final view, the command's answer,
   * with the output its handler kept in memory (the true tail even when the log was capped); undefined for a job
   * this registry does not know or that had already ended.
   */
  finished(id: string, outcome: JobOutcome): CommandView | undefined {
    const r = this.#records.get(id);
    if (!r || isFinal(r.status)) return undefined;
    if (!outcome.ok) {
      if (outcome.error.code === 'internal') this.#log.error({ job_id: id, err: outcome.error.message }, 'command failed with an internal error');
      r.error = forClients(outcome.error, this.#config.dataDir, `job id ${id}`);
      this.#finish(r, outcome.error.code === 'cancelled' || outcome.error.code === 'shutting_down' ? this.#cancelledStatus(r) : 'failed');
      return undefined;
    }
    const { stdout, stderr, invalid_utf8, ...result } = outcome.value as ExecuteResult;
    r.result = result;
    r.sizes = { stdout: result.stdout_offset, stderr: result.stderr_offset };
    this.#finish(r, result.timed_out ? 'timed_out' : result.cancelled ? this.#cancelledStatus(r) : 'completed');
    // The handler cut what it held to the call's budget already.
    const held = (s: Stream, text: string): StreamText => ({
      text,
      next: r.sizes[s],
      omittedBytes: result.omitted_bytes[s],
      omittedLines: result.omitted_lines[s],
      omittedOffset: result.omitted_offset[s],
      invalidUtf8: invalid_utf8[s],
    });
    return recordView(r, held('stdout', stdout), held('stderr', stderr));
  }

  #cancelledStatus(r: CommandRecord): CommandStatus {
    return r.interruptRequested ? 'interrupted' : 'cancelled';
  }

  #finish(r: CommandRecord, status: CommandStatus): void {
    r.status = status;
    r.finishedAt = Date.now();
    r.port = undefined;
    this.#save(r);
    this.#wake(r);
  }

  #wake(r: CommandRecord): void {
    const waiters = [...r.waiters];
    r.waiters.clear();
    for (const w of waiters) w();
  }

  /** Status of a job. */
  status(id: string): CommandStatus {
    return this.#get(id).status;
  }

  /**
   * Resolves as soon as the job has output past `since`, or ends, or `waitMs` passes, or `signal` aborts —
   * whichever comes first. One timer per waiting request; output and status changes wake it by event.
   */
  async changed(id: string, since: Record<Stream, number>, waitMs: number, signal?: AbortSignal): Promise<void> {
    const r = this.#get(id);
    const ready = (): boolean => this.#closed || isFinal(r.status) || r.sizes.stdout > since.stdout || r.sizes.stderr > since.stderr;
    if (ready() || waitMs <= 0 || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        r.waiters.delete(check);
        resolve();
      };
      const check = (): void => {
        if (ready()) done();
        else r.waiters.add(check);
      };
      const timer = setTimeout(done, waitMs);
      signal?.addEventListener('abort', done, { once: true });
      r.waiters.add(check);
    });
  }

  /**
   * The next page of output past `since`, within `budget` characters (default budgets.outputChars): waits (up to
   * `waitMs`) until there is text to return or the job ends. Bytes held back as an incomplete character do not
   * count as news.
   */
  async nextPage(id: string, since: Record<Stream, number>, waitMs: number, signal?: AbortSignal, budget?: number): Promise<CommandView> {
    const end = Date.now() + waitMs;
    let waitFrom = since;
    for (;;) {
      await this.changed(id, waitFrom, end - Date.now(), signal);
      const view = await this.view(id, 'page', since, budget);
      const news = view.stdout.length > 0 || view.stderr.length > 0;
      if (news || isFinal(view.status) || this.#closed || Date.now() >= end || signal?.aborted) return view;
      waitFrom = { stdout: view.stdout_offset + view.more_bytes.stdout, stderr: view.stderr_offset + view.more_bytes.stderr };
    }
  }

  /** Resolves when the job reached a final state, or after `waitMs`. */
  async done(id: string, waitMs: number, signal?: AbortSignal): Promise<boolean> {
    const r = this.#get(id);
    const end = Date.now() + waitMs;
    while (!isFinal(r.status) && !this.#closed && Date.now() < end && !signal?.aborted) {
      await this.changed(id, { stdout: Number.POSITIVE_INFINITY, stderr: Number.POSITIVE_INFINITY }, end - Date.now(), signal);
    }
    return isFinal(r.status);
  }

  /**
   * The job as JSON with output read from its logs, within `budget` characters for both streams (default: the
   * command's own, max_output_chars or budgets.outputChars when it started): `page` returns the output from the offsets on, up to the budget; `snapshot` returns head and
   * tail of everything from the offsets, on line boundaries.
   */
  async view(id: string, mode: 'page' | 'snapshot', offsets: Record<Stream, number> = { stdout: 0, stderr: 0 }, budget?: number): Promise<CommandView> {
    const r = this.#get(id);
    const chars = budget ?? r.budget;
    const paths = jobLogPaths(this.#config.dataDir, id);
    const final = isFinal(r.status);
    const region = (s: Stream): Promise<Region> => {
      // Logs removed: an empty region at the end, so the offsets still say where the output stopped.
      const from = r.logsRemoved ? r.sizes[s] : Math.min(offsets[s], r.sizes[s]);
      return logRegion(paths[s], from, r.sizes[s], chars, final, mode === 'snapshot');
    };
    const [stdout, stderr] = await Promise.all([region('stdout'), region('stderr')]);
    const ends = { stdout: stdout.start + stdout.size, stderr: stderr.start + stderr.size };
    const out: PerStream<StreamText> = mode === 'page' ? pages({ stdout, stderr }, chars) : await headAndTail({ stdout, stderr }, chars, { jobId: id, ends });
    // The job ended while its logs were read: read them again, or a final status would show only part of the output.
    if (!final && isFinal(r.status)) return this.view(id, mode, offsets, budget);
    return recordView(r, out.stdout, out.stderr);
  }

  /** Running and recent command jobs, newest first. */
  list(projectId?: string): JobListItem[] {
    return [...this.#records.values()]
      .filter((r) => !projectId || r.projectId === projectId)
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((r) => listItem(this.#handOut(r)));
  }

  /** Writes to the stdin of a job started with `stdin: "pipe"` (buffered until it starts). */
  input(id: string, data: string, eof: boolean): void {
    const r = this.#get(id);
    if (r.stdin !== 'pipe') {
      throw new ToolhostError(
        'stdin_not_piped',
        `job ${id} was started without stdin: "pipe", so its stdin is /dev/null; start the command again with stdin: "pipe"`,
      );
    }
    if (isFinal(r.status)) throw new ToolhostError('job_finished', `job ${id} has already ended (${r.status}); its stdin is closed`);
    const m: ControlMessage = { t: 'stdin', data, eof };
    if (r.port) r.port.postMessage(m);
    else r.pendingInput.push(m);
  }

  /** Cancels a job: a queued one never starts, a running one has its process tree killed. */
  cancel(id: string): void {
    const r = this.#get(id);
    if (isFinal(r.status)) return;
    r.cancelRequested = true;
    if (r.port) r.port.postMessage({ t: 'cancel' } satisfies ControlMessage);
    else this.#finish(r, this.#cancelledStatus(r));
  }

  /** Cancels every running command (a forced shutdown); their handlers kill the trees and report. */
  cancelRunning(): void {
    for (const r of this.#records.values()) if (r.status === 'running') this.cancel(r.id);
  }

  /**
   * A graceful stop: background commands (servers, watchers) never end on their own, so waiting for them would
   * only wait out shutdown.graceS. They are ended now, queued or running, and end `interrupted`.
   */
  interruptBackground(): void {
    for (const r of this.#records.values()) {
      if (!r.background || isFinal(r.status)) continue;
      r.interruptRequested = true;
      this.cancel(r.id);
    }
  }

  #scheduleSweep(): void {
    if (this.#closed) return;
    const retentionMs = this.#config.jobs.retentionMinutes * 60_000;
    const every = Math.min(60_000, retentionMs / 4);
    this.#sweepTimer = setTimeout(() => void this.sweep().finally(() => this.#scheduleSweep()), every * (0.8 + Math.random() * 0.4));
    this.#sweepTimer.unref();
  }

  /**
   * Removes finished jobs older than jobs.retentionMinutes with their logs, then, while the logs of all jobs
   * exceed jobs.maxLogDiskBytes, removes the logs of the oldest finished jobs.
   */
  async sweep(now = Date.now()): Promise<void> {
    const retentionMs = this.#config.jobs.retentionMinutes * 60_000;
    const removals: Promise<void>[] = [];
    const removeLogs = (r: CommandRecord): void => {
      r.logsRemoved = true;
      const p = jobLogPaths(this.#config.dataDir, r.id);
      removals.push(rm(p.stdout, { force: true }), rm(p.stderr, { force: true }), this.#files.save(r));
    };
    let disk = 0;
    for (const r of this.#records.values()) {
      if (r.finishedAt !== undefined && r.finishedAt + retentionMs <= now) {
        this.#records.delete(r.id);
        clearTimeout(r.unsaved);
        removals.push(this.#files.remove(r.id));
      } else if (!r.logsRemoved) {
        disk += r.sizes.stdout + r.sizes.stderr;
      }
    }
    const finished = [...this.#records.values()].filter((r) => r.finishedAt !== undefined && !r.logsRemoved).sort((a, b) => a.finishedAt! - b.finishedAt!);
    for (const r of finished) {
      if (disk <= this.#config.jobs.maxLogDiskBytes) break;
      disk -= r.sizes.stdout + r.sizes.stderr;
      removeLogs(r);
    }
    await Promise.all(removals).catch((err: unknown) => this.#log.warn({ err: String(err) }, 'could not remove job logs'));
  }
}
