/**
 * What the toolhost HTTP API sends and takes, as the client sees it. Declared here rather than inferred from the
 * server's zod schemas, because lib/ never imports supervisor/ and a client should not load zod and the tool
 * definitions to type a JSON body; test/client.test.ts holds these declarations to the server's schemas at
 * compile time, so they cannot drift apart unnoticed. A leaf: it imports only other leaves' types.
 */
import type { ErrorCode } from '../errors.js';
import type { Containment } from '../process/containment-types.js';

/** Where a command job is in its life (`interrupted`: the server stopped while it ran). */
export type JobStatus = 'queued' | 'running' | 'completed' | 'timed_out' | 'cancelled' | 'failed' | 'interrupted';

/** A count or flag per output stream. */
export interface PerStream<T> {
  stdout: T;
  stderr: T;
}

/** A command job: the answer of POST /execute, GET /jobs/:id and DELETE /jobs/:id. */
export interface CommandView {
  job_id: string;
  project_id: string;
  status: JobStatus;
  /** Once the command ended (128 + n after signal n), else null. */
  exit_code: number | null;
  signal: string | null;
  timed_out: boolean;
  cancelled: boolean;
  duration_ms: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  stdin: 'null' | 'pipe';
  stdout: string;
  stderr: string;
  /** Pass as `stdout_offset` to read only newer output. */
  stdout_offset: number;
  stderr_offset: number;
  /** Bytes already there past the returned ones. */
  more_bytes: PerStream<number>;
  omitted_bytes: PerStream<number>;
  omitted_lines: PerStream<number>;
  omitted_offset: PerStream<number | null>;
  truncated: PerStream<boolean>;
  invalid_utf8: PerStream<boolean>;
  log_dropped_bytes: PerStream<number>;
  logs_removed: boolean;
  /** Why a failed command failed. */
  error?: { code: string; message: string; [detail: string]: unknown } | undefined;
  session?: { session_id: string; restarted: boolean } | undefined;
}

/** A line of GET /jobs. */
export interface JobListItem {
  job_id: string;
  project_id: string;
  command: string;
  status: JobStatus;
  exit_code: number | null;
  created_at: string;
  finished_at: string | null;
}

/** The body of POST /execute. */
export interface ExecuteRequest {
  project_id: string;
  /** Run as `bash -c command`. */
  command: string;
  /** Working directory relative to the project root. */
  cwd?: string;
  env?: Record<string, string>;
  /** The process tree is killed after this many seconds. */
  timeout_s?: number;
  /** How long the call waits (0 to 190 s); a command still running then is answered with status "running". */
  wait_s?: number;
  background?: boolean;
  stdin?: 'null' | 'pipe';
  max_output_chars?: number;
}

/** A project of GET /projects. */
export interface ProjectSummary {
  project_id: string;
  /** How the store holds it: layers, or a plain zip or tar.gz placed there. */
  format: string;
  archive_bytes: number | null;
  modified_at: string | null;
  etag: string | null;
  /** A working copy is on the server. */
  cached: boolean;
  /** The working copy may hold changes the store does not have yet. */
  dirty: boolean;
}

/** An error as the API nests it in a body. */
export interface NestedError {
  code: string;
  message: string;
  details?: Record<string, unknown> | undefined;
}

/** GET /projects/:id: a project with its working copy. */
export interface ProjectInfo extends ProjectSummary {
  cache: {
    size_bytes: number;
    last_access: string;
    materialized_at: string;
    source_etag: string | null;
    last_save: string | null;
    writeback_error: (NestedError & { since: string; attempts: number }) | null;
    last_conflict: { conflict_blob: string; at: string } | null;
  } | null;
  store_error?: NestedError | undefined;
}

/** POST /projects/:id/save. */
export interface SaveResult {
  project_id: string;
  /** A checkpoint was recorded (false: not cached, or nothing changed). */
  saved: boolean;
  etag: string | null;
  archive_bytes: number | null;
  dirty: boolean;
  last_save: string | null;
  skipped: { name: string; reason: string }[];
  checkpoint_id: string | null;
  bytes_uploaded: number;
}

/** DELETE /projects/:id. */
export interface DeleteResult {
  project_id: string;
  [field: string]: unknown;
}

/** A checkpoint. */
export interface CheckpointInfo {
  checkpoint_id: string;
  created_at: string;
  label: string | null;
  /** What took it: manual, auto, save, autosave, before-restore, upload, fork or create. */
  kind: string;
  bytes_uploaded: number;
  files?: number | undefined;
}

/** POST /projects/:id/checkpoints/:cp/restore. */
export interface RestoreResult {
  project_id: string;
  checkpoint_id: string;
  /** Restore this one to undo the restore. */
  undo_checkpoint_id: string;
  files_written: number;
  files_deleted: number;
}

/** POST /projects/:id/fork. */
export interface ForkResult {
  project_id: string;
  source_project_id: string;
  checkpoint_id: string | null;
  created_at: string;
}

/** POST /admin/reload. */
export interface ReloadReport {
  /** The config file that was re-read, or null. */
  file: string | null;
  /** Options whose new value is now in effect. */
  applied: string[];
  /** Options that keep their old value until a restart. */
  restart_required: string[];
}

/** GET /health: only `status` without the token; the rest for the operator. */
export interface Health {
  status: 'ok' | 'degraded' | 'shutting_down' | (string & {});
  /** Why the status is `degraded`, where the server says. */
  reason?: string;
  uptime_s?: number;
  role?: 'all' | 'api' | 'worker';
  node?: string;
  queue?: { backend: string; depth: number };
  pool?: { threads: number; busy: number; lanes: Record<string, { threads: number; busy: number }> };
  jobs?: { running: number; by_type: Record<string, number> };
  cache?: { projects: number; dirty: number; bytes: number; [field: string]: unknown };
  sessions?: { alive: number; running: number };
  writeback?: { failing: { project_id: string; [field: string]: unknown }[] };
  containment?: Containment;
  [field: string]: unknown;
}

/** An event of GET /jobs/:id/stream: output as it comes, then the end. */
export type JobEvent =
  | { type: 'stdout' | 'stderr'; text: string; offset: number; next_offset: number }
  | {
      type: 'end';
      status: JobStatus;
      exit_code: number | null;
      signal: string | null;
      duration_ms: number | null;
      error?: NestedError | { code: string; message: string; [detail: string]: unknown } | undefined;
    };

/** The final event of a job. */
export type JobEnd = Extract<JobEvent, { type: 'end' }>;

/** An error code of the API, or the client's own: `unreachable` (no answer) and `bad_response` (not the API's JSON). */
export type ClientErrorCode = ErrorCode | 'unreachable' | 'bad_response' | (string & {});
