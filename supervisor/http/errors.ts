/**
 * The one place a throwable becomes an HTTP response: status from the error code, JSON body. What a client sees
 * never names a server path: an unexpected error (`internal`) is answered with a generic message and the request
 * id, and logged in full; any other message has the data directory replaced by "<dataDir>".
 */
import type { Response } from 'express';
import { type ErrorCode, ToolhostError, toToolhostError } from '../../lib/errors.js';
import type { Logger } from '../logger.js';

/** What sendError needs to know of the server, put on `res.locals` by the app's first middleware. */
export interface ErrorContext {
  log: Logger;
  /** The data directory, which messages must not reveal. */
  dataDir: string;
}

/** Installs the context {@link sendError} reads (the app does this for every request). */
export function setErrorContext(res: Response, ctx: ErrorContext): void {
  res.locals.errorContext = ctx;
}

/** The JSON error body `{"error": {"code", "message", ...details}}`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; [detail: string]: unknown };
}

/**
 * The error body a client may see for any throwable. An `internal` error is logged (message and stack) under the
 * request id, and its body says only where to look; other messages and string details lose the data directory.
 */
export function errorBody(res: Response, err: unknown): ErrorBody {
  const e = toToolhostError(err);
  const ctx = res.locals.errorContext as ErrorContext | undefined;
  const requestId = typeof res.locals.requestId === 'string' ? res.locals.requestId : undefined;
  if (e.code === 'internal') {
    ctx?.log.error({ request_id: requestId, err: e.message, stack: err instanceof Error ? err.stack : undefined, details: e.details }, 'internal error');
    const where = requestId ? `the server log, request id ${requestId}` : 'the server log';
    return {
      error: { code: 'internal', message: `internal error; see ${where}. Retry once; if it persists, report it with the request id`, request_id: requestId },
    };
  }
  const scrub = ctx ? scrubber(ctx.dataDir) : (s: string) => s;
  const details: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e.details ?? {})) details[k] = scrubDeep(v, scrub);
  return { error: { code: e.code, message: scrub(e.message), ...details } };
}

/** The codes a client should retry after a while, with the delay (s) used when the error names none. */
const RETRY_AFTER_S: Partial<Record<ErrorCode, number>> = { queue_full: 1, shutting_down: 1, store_unavailable: 10, queue_unavailable: 10 };

/** A delay an error's details name, as whole seconds (at least 1), or undefined when it names none usable. */
function retryAfterOf(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.max(1, Math.ceil(v)) : undefined;
}

/** Sends the JSON error body for any throwable; a code worth retrying gets a Retry-After header (seconds). */
export function sendError(res: Response, err: unknown): void {
  const e = toToolhostError(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const retryAfter = RETRY_AFTER_S[e.code];
  if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfterOf(e.details?.retry_after_s) ?? retryAfter));
  res.status(e.status).json(errorBody(res, err));
}

/**
 * The ToolhostError for a failure of Express's body parsers (body-parser's `type`, or its status for errors it
 * wraps, such as zlib's for a body that is not the Content-Encoding it claims); undefined for anything else.
 */
export function bodyParserError(err: unknown, maxBodyBytes: number): ToolhostError | undefined {
  if (typeof err !== 'object' || err === null || err instanceof ToolhostError) return undefined;
  const { type, status, code, expose } = err as { type?: unknown; status?: unknown; code?: unknown; expose?: unknown };
  switch (type) {
    case 'entity.too.large':
      return new ToolhostError(
        'payload_too_large',
        `the request body exceeds http.maxBodyBytes (${maxBodyBytes} bytes, after decompression); send less, or write large files with a command`,
      );
    case 'entity.parse.failed':
      return new ToolhostError('invalid_json', `the request body is not valid JSON: ${(err as Error).message}`);
    case 'encoding.unsupported':
      return new ToolhostError(
        'unsupported_media_type',
        `Content-Encoding "${String((err as { encoding?: unknown }).encoding ?? '?')}" is not supported; send the body uncompressed, or as gzip, deflate or br`,
      );
    case 'charset.unsupported':
      return new ToolhostError('unsupported_media_type', "the body's charset is not supported; send UTF-8 JSON with Content-Type: application/json");
    case 'request.aborted':
      return new ToolhostError('bad_request', 'the client closed the connection before the body was complete');
    case 'request.size.invalid':
      return new ToolhostError('bad_request', 'the request body is shorter or longer than its Content-Length; send the length the body has');
    default:
  }
  // zlib's own errors (Z_DATA_ERROR "incorrect header check", Z_BUF_ERROR "unexpected end of file"...), status 400.
  if (typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR_ZLIB') || code.startsWith('ERR__'))) {
    return new ToolhostError(
      'bad_request',
      `the request body is not valid for its Content-Encoding (${code}); compress it correctly, or send it uncompressed without Content-Encoding`,
    );
  }
  // Any other client error of the parsers (http-errors marks those `expose`).
  if (expose === true && typeof status === 'number' && status >= 400 && status < 500) {
    return new ToolhostError(
      status === 413 ? 'payload_too_large' : status === 415 ? 'unsupported_media_type' : 'bad_request',
      'the request body could not be read; send JSON with Content-Type: application/json',
    );
  }
  return undefined;
}

function scrubber(dataDir: string): (s: string) => string {
  if (dataDir.length < 2) return (s) => s;
  const escaped = dataDir.replace(/\/+$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`${escaped}(?=/|$|[^\\w.-])`, 'g');
  return (s) => s.replace(pattern, '<dataDir>');
}

function scrubDeep(v: unknown, scrub: (s: string) => string): unknown {
  if (typeof v === 'string') return scrub(v);
  if (Array.isArray(v)) return v.map((x) => scrubDeep(x, scrub));
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrubDeep(x, scrub)]));
  return v;
}
