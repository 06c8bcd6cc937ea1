/**
 * What every handler receives besides its validated request: the project root, the configuration and a signal
 * that fires when the job is cancelled (shutdown, or the caller's cancel).
 */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';

/** The context of one job inside a pool thread. */
export interface HandlerContext {
  /** Absolute real path of the project's working copy. */
  root: string;
  /** The supervisor's validated configuration. */
  config: Config;
  /** Fires when the job must stop (its process tree is killed). */
  signal: AbortSignal;
  /** Job id, used to mark the processes a command starts. */
  jobId: string;
  /** The project the job runs in. */
  projectId: string;
  /** The job's channel to the supervisor, for commands: the handler posts {@link ProgressMessage}s on it. */
  port?: MessagePort | undefined;
  /**
   * Delivers input sent to the job's stdin, including what arrived before the handler subscribed (the
   * supervisor may forward input as soon as the job is handed to the thread).
   */
  onStdin?: ((sink: (m: { data: string; eof?: boolean | undefined }) => void) => void) | undefined;
}

/** A tool implementation: a plain async function from a validated request to a JSON-safe result. */
export type Handler<Req, Res> = (req: Req, ctx: HandlerContext) => Promise<Res>;

/** Supervisor -> handler. */
export type ControlMessage = { t: 'cancel' } | { t: 'stdin'; data: string; eof?: boolean };

/** Handler -> supervisor: bytes of each stream now on disk. */
export interface ProgressMessage {
  t: 'progress';
  stdout: number;
  stderr: number;
}
