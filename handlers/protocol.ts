/**
 * The protocol between the supervisor and its pool threads: the tasks it posts (handlers/worker.ts runs them),
 * what the chores among them return, and the messages on a command's own channel.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import type { ArchiveFormat } from '../lib/archive/format.js';
import type { PackResult } from '../lib/archive/pack.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import type { CheckpointKind } from '../lib/layers/format.js';
import type { KeepRule } from '../lib/layers/manifest.js';
import type { StoredFormat, StoredProject } from '../lib/store/project-store.js';

/** Data every pool thread is started with. */
export interface PoolWorkerData {
  config: Config;
}

/** A task the supervisor posts to a pool thread. */
export type PoolTask =
  | { kind: 'job'; job: Job; root: string; cancelPort?: MessagePort }
  | { kind: 'extract'; id: string; file: string; format: ArchiveFormat; dest: string }
  | { kind: 'materialize'; id: string; dest: string; scratch: string; statePath: string }
  | ({ kind: 'save' } & SaveTask)
  | ({ kind: 'upload' } & UploadTask)
  | ({ kind: 'restore' } & RestoreTask)
  | { kind: 'fork'; id: string; newId: string; checkpointId: string | null }
  | ({ kind: 'compact' } & CompactTask)
  | { kind: 'checkpoints'; id: string }
  | { kind: 'collect'; graceMs: number }
  | { kind: 'pack'; root: string; format: ArchiveFormat; out: string; exclude: string[] }
  | { kind: 'size'; root: string }
  | SessionTask;

/** Where a working copy came from: the version of the store a save's write is conditional on. */
export type CopySource = { kind: 'layers'; etag: string } | { kind: 'archive'; format: ArchiveFormat; etag: string } | { kind: 'none' };

/** What every task on a working copy's layers needs: the project, its copy, the copy's saved state. */
interface CopyTask {
  id: string;
  root: string;
  exclude: string[];
  scratch: string;
  /** The copy's state at its last save (lib/layers/scan.ts), outside the copy. */
  statePath: string;
}

/** Writes a working copy's changes as a layer; records a checkpoint when something changed, always with `record`. */
export interface SaveTask extends CopyTask {
  source: CopySource;
  stamp: string;
  /** The checkpoint to record even when nothing changed; otherwise a change is recorded as `kind`. */
  record: { kind: CheckpointKind; label: string | null } | null;
  recordAs: CheckpointKind;
  keep: KeepRule;
  /** A checkpoint pruning must keep whatever `keep` says (the target of the restore this save precedes). */
  pin?: string | undefined;
  /** The copy is clean (no change started since its last save): record the checkpoint without reading the copy. */
  clean?: boolean | undefined;
}

/** Stores an extracted upload (in `root`) as the project's new base layer, keeping its checkpoints. */
export interface UploadTask extends CopyTask {
  recordAs: 'upload' | 'create';
  /** Only if the project does not exist yet. */
  create: boolean;
  keep: KeepRule;
}

/** Builds checkpoint `checkpointId` into `dest` (reusing the copy's unchanged files) and makes it the head. */
export interface RestoreTask extends CopyTask {
  checkpointId: string;
  /** The manifest's ETag after the pre-restore save. */
  etag: string;
  dest: string;
  /** Where the built tree's state goes, for the swap to put in place. */
  pendingState: string;
}

/** Merges a long head chain (`maxLayers`) from the clean copy in `root`. */
export interface CompactTask extends CopyTask {
  etag: string;
  maxLayers: number;
}

/**
 * Hosts one persistent shell session (handlers/session-host.ts) for as long as it lives: the task ends when the
 * session does. Its `port` carries {@link SessionRequest}s in and {@link SessionReport}s out.
 */
export interface SessionTask {
  kind: 'session';
  /** The session id, also the marker of its processes and the name of its cgroup. */
  id: string;
  projectId: string;
  root: string;
  /** Where the shell starts, relative to the root. */
  cwd?: string | undefined;
  /** Variables the shell starts with (besides the fixed ones every command gets). */
  env?: Record<string, string> | undefined;
  port: MessagePort;
}

/** Supervisor -> session host: run an exec job (its own channel is `port`, as for a command), restart, end. */
export type SessionRequest = { t: 'exec'; seq: number; job: Job; port: MessagePort } | { t: 'restart'; seq: number } | { t: 'end'; seq: number };

/** Session host -> supervisor: the shell runs (`cwd` is where, absolute), or the answer to request `seq`. */
export type SessionReport = { t: 'ready'; cwd: string } | { t: 'reply'; seq: number; outcome: JobOutcome };

/** What a `materialize` task produced: the working copy's format, the ETag it came from, bytes of content. */
export interface MaterializeResult {
  format: StoredFormat;
  etag: string;
  bytes: number;
}

/**
 * What a `save` task produced: the stored archive, or (the condition failed: someone else wrote the project)
 * the name of the conflict copy and the stored version it lost to.
 */
export type SaveResult = (
  | { stored: StoredProject; checkpoint: CheckpointInfo | null; bytesUploaded: number; treeBytes: number | null }
  | { conflict: string; currentEtag: string | null }
) & { skipped: PackResult['skipped'] };

/** A checkpoint as answers show it. */
export interface CheckpointInfo {
  checkpoint_id: string;
  created_at: string;
  label: string | null;
  kind: CheckpointKind;
  bytes_uploaded: number;
}

/** What a `restore` task produced. */
export interface RestoreResult {
  etag: string;
  bytes: number;
  files_written: number;
  files_deleted: number;
}

/** Supervisor -> command handler, on the command's channel. */
export type ControlMessage = { t: 'cancel' } | { t: 'stdin'; data: string; eof?: boolean };

/** Command handler -> supervisor: bytes of each stream now on disk. */
export interface ProgressMessage {
  t: 'progress';
  stdout: number;
  stderr: number;
}
