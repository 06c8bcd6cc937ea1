/**
 * The protocol between the supervisor and its pool threads: the tasks it posts (handlers/worker.ts runs them),
 * what the chores among them return, and the messages on a command's own channel.
 */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import type { ArchiveFormat } from '../lib/archive/format.js';
import type { PackResult } from '../lib/archive/pack.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import type { PutCondition, StoredProject } from '../lib/store/project-store.js';

/** Data every pool thread is started with. */
export interface PoolWorkerData {
  config: Config;
}

/** A task the supervisor posts to a pool thread. */
export type PoolTask =
  | { kind: 'job'; job: Job; root: string; cancelPort?: MessagePort }
  | { kind: 'extract'; id: string; file: string; format: ArchiveFormat; dest: string }
  | { kind: 'materialize'; id: string; dest: string; scratch: string }
  | { kind: 'put'; id: string; format: ArchiveFormat; file: string; condition?: PutCondition }
  | { kind: 'save'; id: string; root: string; format: ArchiveFormat; exclude: string[]; scratch: string; condition: PutCondition; stamp: string }
  | { kind: 'size'; root: string }
  | SessionTask;

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
  format: ArchiveFormat;
  etag: string;
  bytes: number;
}

/**
 * What a `save` task produced: the stored archive, or (the condition failed: someone else wrote the project)
 * the name of the conflict copy and the stored version it lost to.
 */
export type SaveResult = ({ stored: StoredProject; bytes: number } | { conflict: string; currentEtag: string | null }) & { skipped: PackResult['skipped'] };

/** Supervisor -> command handler, on the command's channel. */
export type ControlMessage = { t: 'cancel' } | { t: 'stdin'; data: string; eof?: boolean };

/** Command handler -> supervisor: bytes of each stream now on disk. */
export interface ProgressMessage {
  t: 'progress';
  stdout: number;
  stderr: number;
}
