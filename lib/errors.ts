/**
 * Typed errors with a stable string `code`. Every error a caller can see is a ToolhostError; the HTTP front maps
 * it to a status and the JSON body `{"error": {"code", "message", ...details}}` in one place (supervisor/http).
 * Errors cross the worker-thread boundary as plain objects ({@link SerializedError}) and are rebuilt on the
 * supervisor side with {@link fromSerialized}.
 */

/** Every error code toolhost returns, with its HTTP status. */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_json: 400,
  unknown_field: 400,
  invalid_project_id: 400,
  path_outside_project: 400,
  line_out_of_range: 400,
  not_a_directory: 400,
  is_a_directory: 400,
  not_a_regular_file: 400,
  unauthorized: 401,
  permission_denied: 403,
  not_found: 404,
  project_not_found: 404,
  file_not_found: 404,
  job_not_found: 404,
  session_not_found: 404,
  checkpoint_not_found: 404,
  project_exists: 409,
  project_busy: 409,
  save_conflict: 409,
  cancelled: 409,
  stdin_not_piped: 409,
  job_finished: 409,
  session_busy: 409,
  not_on_this_role: 409,
  payload_too_large: 413,
  file_too_large: 413,
  unsupported_media_type: 415,
  session_limit: 429,
  binary_file: 415,
  edit_no_match: 422,
  edit_count_mismatch: 422,
  edit_no_op: 422,
  patch_invalid: 422,
  patch_failed: 422,
  bad_archive: 422,
  unsafe_archive_entry: 422,
  archive_too_large: 422,
  invalid_regex: 422,
  search_failed: 422,
  invalid_config: 422,
  internal: 500,
  job_poisoned: 500,
  queue_full: 503,
  store_unavailable: 503,
  shutting_down: 503,
  worker_lost: 503,
  queue_unavailable: 503,
  job_deadline: 504,
  no_space: 507,
} as const;

/** A stable, documented error code. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** Extra machine-readable fields that travel with an error (line numbers, counts, entry names). */
export type ErrorDetails = Record<string, unknown>;

/** The shape an error takes on the wire between threads and in HTTP bodies. */
export interface SerializedError {
  code: ErrorCode;
  message: string;
  details?: ErrorDetails;
}

/** The one error class of toolhost: a code, a message that says what to do next, and optional details. */
export class ToolhostError extends Error {
  override readonly name = 'ToolhostError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails) {
    super(message);
    this.code = code;
    this.details = details;
  }

  /** The HTTP status this error maps to. */
  get status(): number {
    return ERROR_STATUS[this.code];
  }

  /** A structured-clone-safe copy for postMessage and JSON. */
  toJSON(): SerializedError {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details };
  }
}

/** Rebuilds an error serialized by {@link ToolhostError.toJSON}. */
export function fromSerialized(e: SerializedError): ToolhostError {
  return new ToolhostError(isErrorCode(e.code) ? e.code : 'internal', e.message, e.details);
}

/** Coerces any throwable into an Error; a ToolhostError passes through, anything else becomes `internal`. */
export function toToolhostError(err: unknown): ToolhostError {
  if (err instanceof ToolhostError) return err;
  if (isSerializedError(err)) return fromSerialized(err);
  const errno = errnoCode(err);
  if (errno === 'EACCES' || errno === 'EPERM') {
    return new ToolhostError('permission_denied', 'permission denied by the file system; fix the file mode with a command (chmod) first');
  }
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return new ToolhostError('no_space', 'the server is out of disk space; free space in the project (or ask the operator) and retry');
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ToolhostError('internal', `internal error: ${message}`);
}

function isSerializedError(x: unknown): x is SerializedError {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as SerializedError).code === 'string' &&
    typeof (x as SerializedError).message === 'string' &&
    isErrorCode((x as SerializedError).code)
  );
}

/** True for a code of ours; an inherited name ("constructor", "toString") is not one. */
function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_STATUS, code);
}

/** Node's errno code of a system error (ENOENT, EACCES...), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as NodeJS.ErrnoException).code === 'string' ? (err as NodeJS.ErrnoException).code : undefined;
}

/** The error a handler ends with when its job is cancelled: the abort reason when it is a ToolhostError. */
export function cancelled(signal: AbortSignal, what: string): ToolhostError {
  return signal.reason instanceof ToolhostError
    ? signal.reason
    : new ToolhostError('cancelled', `${what} was cancelled before it finished; retry it if it is still needed`);
}

/**
 * A serialized error fit for a client that reads it later (a job's view): an `internal` one keeps only its code and
 * where to look (its message may name server paths; the caller logs it), others lose the data directory.
 */
export function forClients(e: SerializedError, dataDir: string, where: string): SerializedError {
  if (e.code === 'internal') return { code: 'internal', message: `internal error; see the server log (${where}). Retry once; if it persists, report it` };
  const dir = dataDir.replace(/\/+$/, '');
  return dir.length < 2 ? e : { ...e, message: e.message.split(dir).join('<dataDir>') };
}
