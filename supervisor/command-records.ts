/**
 * A command job's record: its shape, how callers see it (its view, its line in GET /jobs), and how it is kept on
 * disk, beside its logs (`<dataDir>/jobs/<id>.json`), so that a restart keeps what a client needs. A record is
 * written whole (a temp file renamed over the last) and read back at start. A background job's is written when it
 * is accepted (its id is handed out at once), when it starts and when it ends. A foreground job's id reaches a
 * client only through the registry (its answer, a view, a wait, the list, input, a cancel): its first write waits
 * for that, for its end, for the registry's close or for {@link FOREGROUND_RECORD_MS}, so a short command costs one
 * write, at its end, beside the answer. A crash before then loses a job no client knew of. A record still queued
 * or running at start belongs to a command the server stopped or crashed under: it becomes `interrupted`, with the
 * output its logs hold.
 *
 * No fsync: the records outlive the process (a crash, a kill -9), not the machine; a power cut loses at most the
 * jobs of the last moments, and a record cut short is dropped with its logs.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { type CommandView, commandStatus, isFinal, type JobListItem } from '../handlers/command-view.js';
import type { StreamText } from '../lib/process/command-output.js';
import { jobLogPaths, jobLogsDir } from '../lib/process/job-logs.js';
import type { Logger } from './logger.js';

const perStream = <T extends z.ZodType>(t: T) => z.object({ stdout: t, stderr: t });
const count = z.number().int().nonnegative();
const epochMs = z.number().nonnegative();
const JOB_ID = /^[0-9a-f-]{36}$/;

/** What a command's answers keep of how it ended (its handler's result, without the output). */
const commandEnd = z.object({
  exit_code: z.number().int(),
  signal: z.string().nullable(),
  timed_out: z.boolean(),
  duration_ms: z.number().nonnegative(),
  log_dropped_bytes: perStream(count),
  session: z.object({ session_id: z.string(), restarted: z.boolean() }).optional(),
});

/** A command job's record as it is kept on disk: everything its views and list lines need, nothing live. */
const savedCommand = z.object({
  id: z.string().regex(JOB_ID),
  projectId: z.string(),
  command: z.string(),
  stdin: z.enum(['null', 'pipe']),
  background: z.boolean(),
  /** The characters of output its answers show (max_output_chars, else budgets.outputChars). */
  budget: z.number().int().positive(),
  status: commandStatus,
  createdAt: epochMs,
  startedAt: epochMs.optional(),
  finishedAt: epochMs.optional(),
  sizes: perStream(count),
  result: commandEnd.optional(),
  error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }).optional(),
  /** The session of a session exec. */
  sessionId: z.string().optional(),
  logsRemoved: z.boolean(),
});

/** How long a foreground job may go unwritten while its id is not handed out (most commands end well within it). */
export const FOREGROUND_RECORD_MS = 1000;

/** A command job's record, as kept on disk. */
export type SavedCommand = z.infer<typeof savedCommand>;

/** What became of the records found at start. */
export interface LoadedRecords {
  records: SavedCommand[];
  /** Jobs that were queued or running when the last server stopped: now `interrupted`. */
  interrupted: string[];
  /** Files that belonged to no readable record (orphaned logs, a record cut short, temp files): removed. */
  removed: number;
}

/** Reads and writes the records of one data dir. Writes of one record land in order; a burst of them coalesces. */
export class CommandRecordFiles {
  readonly #dataDir: string;
  readonly #dir: string;
  readonly #log: Logger;
  /** The next content of each record with a write under way: its JSON, or null to remove it with its logs. */
  readonly #next = new Map<string, string | null>();
  readonly #busy = new Map<string, Promise<void>>();

  constructor(dataDir: string, log: Logger) {
    this.#dataDir = dataDir;
    this.#dir = jobLogsDir(dataDir);
    this.#log = log;
  }

  /** Writes `r` as it is now (the caller may change it afterwards). */
  save(r: SavedCommand): Promise<void> {
    return this.#put(r.id, JSON.stringify(pick(r)));
  }

  /** Removes a job's record and its logs. */
  remove(id: string): Promise<void> {
    return this.#put(id, null);
  }

  /** Resolves once every write asked for so far has landed. */
  async flush(): Promise<void> {
    while (this.#busy.size > 0) await Promise.all(this.#busy.values());
  }

  #put(id: string, next: string | null): Promise<void> {
    this.#next.set(id, next);
    let busy = this.#busy.get(id);
    if (!busy) {
      busy = this.#drain(id);
      this.#busy.set(id, busy);
    }
    return busy;
  }

  async #drain(id: string): Promise<void> {
    try {
      while (this.#next.has(id)) {
        const body = this.#next.get(id)!;
        this.#next.delete(id);
        try {
          await (body === null ? this.#removeFiles(id) : this.#write(id, body));
        } catch (err) {
          // A record is worth keeping, but no command fails for want of one.
          this.#log.warn({ job_id: id, err: String(err) }, body === null ? 'could not remove a command job record' : 'could not write a command job record');
        }
      }
    } finally {
      this.#busy.delete(id);
    }
  }

  async #write(id: string, body: string): Promise<void> {
    const tmp = join(this.#dir, `.${id}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await writeFile(tmp, body, { mode: 0o600, flag: 'wx' });
      await rename(tmp, recordPath(this.#dataDir, id));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async #removeFiles(id: string): Promise<void> {
    const logs = jobLogPaths(this.#dataDir, id);
    await Promise.all([rm(recordPath(this.#dataDir, id), { force: true }), rm(logs.stdout, { force: true }), rm(logs.stderr, { force: true })]);
  }

  /**
   * Reads the records left by the last server (creating the folder if it is not there). A record still queued or
   * running becomes `interrupted` at `now`, with the sizes its logs reached, and is written back so. Files that
   * belong to no readable record are removed.
   */
  async load(now: number): Promise<LoadedRecords> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 }); // logs are private: commands run as other uids
    const names = await readdir(this.#dir);
    const records: SavedCommand[] = [];
    const interrupted: string[] = [];
    const kept = new Set<string>();
    for (const name of names) {
      const id = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
      if (!JOB_ID.test(id)) continue;
      const r = await this.#read(id);
      if (!r) continue;
      if (!isFinal(r.status)) {
        const logs = jobLogPaths(this.#dataDir, id);
        const size = async (file: string): Promise<number> => (await stat(file).catch(() => undefined))?.size ?? 0;
        r.sizes = { stdout: await size(logs.stdout), stderr: await size(logs.stderr) };
        r.status = 'interrupted';
        r.finishedAt = now;
        interrupted.push(id);
        await this.save(r);
      }
      records.push(r);
      kept.add(id);
    }
    let removed = 0;
    for (const name of names) {
      const id = name.replace(/\.(json|stdout|stderr)$/, '');
      if (kept.has(id) && name !== id) continue;
      await rm(join(this.#dir, name), { recursive: true, force: true });
      removed++;
    }
    return { records, interrupted, removed };
  }

  /** One record, or undefined (and a warning) when it cannot be read as one. */
  async #read(id: string): Promise<SavedCommand | undefined> {
    try {
      const parsed = savedCommand.safeParse(JSON.parse(await readFile(recordPath(this.#dataDir, id), 'utf8')));
      if (parsed.success && parsed.data.id === id) return parsed.data;
      this.#log.warn({ job_id: id, err: parsed.error?.message ?? 'names another job' }, 'dropped a command job record that is not one');
    } catch (err) {
      this.#log.warn({ job_id: id, err: String(err) }, 'dropped a command job record that cannot be read');
    }
    return undefined;
  }
}

/** The record file of one job, beside its logs. */
function recordPath(dataDir: string, id: string): string {
  return join(jobLogsDir(dataDir), `${id}.json`);
}

/** Only the saved fields: the live record carries ports and waiters, and a result carries more than its end. */
function pick(r: SavedCommand): SavedCommand {
  const { id, projectId, command, stdin, background, budget, status, createdAt, startedAt, finishedAt, sizes, result, error, sessionId, logsRemoved } = r;
  const end = result && {
    exit_code: result.exit_code,
    signal: result.signal,
    timed_out: result.timed_out,
    duration_ms: result.duration_ms,
    log_dropped_bytes: result.log_dropped_bytes,
    ...(result.session ? { session: result.session } : {}),
  };
  return { id, projectId, command, stdin, background, budget, status, createdAt, startedAt, finishedAt, sizes, result: end, error, sessionId, logsRemoved };
}

/** The job as callers see it, with this output. */
export function recordView(r: SavedCommand, out: StreamText, err: StreamText): CommandView {
  const res = r.result;
  const view: CommandView = {
    job_id: r.id,
    project_id: r.projectId,
    status: r.status,
    exit_code: res?.exit_code ?? null,
    signal: res?.signal ?? null,
    timed_out: res?.timed_out ?? false,
    cancelled: r.status === 'cancelled',
    // An interrupted job has no result: it ran from its start to when its end was seen.
    duration_ms: res?.duration_ms ?? (r.startedAt ? (r.finishedAt ?? Date.now()) - r.startedAt : null),
    created_at: new Date(r.createdAt).toISOString(),
    started_at: r.startedAt ? new Date(r.startedAt).toISOString() : null,
    finished_at: r.finishedAt ? new Date(r.finishedAt).toISOString() : null,
    stdin: r.stdin,
    stdout: out.text,
    stderr: err.text,
    stdout_offset: out.next,
    stderr_offset: err.next,
    more_bytes: { stdout: r.sizes.stdout - out.next, stderr: r.sizes.stderr - err.next },
    omitted_bytes: { stdout: out.omittedBytes, stderr: err.omittedBytes },
    omitted_lines: { stdout: out.omittedLines, stderr: err.omittedLines },
    omitted_offset: { stdout: out.omittedOffset, stderr: err.omittedOffset },
    truncated: { stdout: out.omittedBytes > 0, stderr: err.omittedBytes > 0 },
    invalid_utf8: { stdout: out.invalidUtf8, stderr: err.invalidUtf8 },
    log_dropped_bytes: res?.log_dropped_bytes ?? { stdout: 0, stderr: 0 },
    logs_removed: r.logsRemoved,
  };
  if (r.error) view.error = { ...r.error };
  if (r.sessionId) view.session = res?.session ?? { session_id: r.sessionId, restarted: false };
  return view;
}

/** The job's line in GET /jobs: the command's first 200 characters tell the jobs apart. */
export function listItem(r: SavedCommand): JobListItem {
  return {
    job_id: r.id,
    project_id: r.projectId,
    command: r.command.length > 200 ? `${r.command.slice(0, 200)}…` : r.command,
    status: r.status,
    exit_code: r.result?.exit_code ?? null,
    created_at: new Date(r.createdAt).toISOString(),
    finished_at: r.finishedAt ? new Date(r.finishedAt).toISOString() : null,
  };
}
