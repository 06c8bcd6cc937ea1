/** The one error of the toolhost client: the API's JSON error, or why there was no answer to read. */
import type { ClientErrorCode } from './types.js';

/**
 * A failed call. For an answer of the API, `code` and `message` are its JSON error's and `status` its HTTP
 * status; `unreachable` (status 0) means no answer came, `bad_response` that the answer was not the API's JSON,
 * `bad_request` (status 0) that the client refused the call before sending it.
 */
export class ToolhostClientError extends Error {
  override readonly name = 'ToolhostClientError';

  constructor(
    /** The API's error code (`project_not_found`, `unauthorized`...) or the client's own. */
    readonly code: ClientErrorCode,
    /** The HTTP status; 0 when there was no answer. */
    readonly status: number,
    message: string,
    /** The error's other fields (`job_id`, `entry`...). */
    readonly details: Record<string, unknown> = {},
    /** Seconds the server asked to wait before a retry (Retry-After), if it did. */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

/** The error of a non-2xx answer, read from its JSON body `{"error": {"code", "message", ...}}`. */
export async function errorOf(res: Response): Promise<ToolhostClientError> {
  const text = await res.text().catch(() => '');
  const retry = Number(res.headers.get('retry-after') ?? NaN);
  const retryAfterS = Number.isFinite(retry) ? retry : undefined;
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const e = body.error;
    if (e && typeof e.code === 'string' && typeof e.message === 'string') {
      const { code, message, ...details } = e as { code: string; message: string };
      return new ToolhostClientError(code, res.status, message, details, retryAfterS);
    }
  } catch {
    // not JSON: told below
  }
  const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return new ToolhostClientError(
    'bad_response',
    res.status,
    `HTTP ${res.status} without a toolhost error body${shown ? `: ${shown}` : ''}; is the URL a toolhost server?`,
    {},
    retryAfterS,
  );
}

/** The error of a fetch that got no answer (refused, reset, DNS), naming the cause undici hides in `cause`. */
export function unreachable(url: string, err: unknown): ToolhostClientError {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  const why = typeof cause?.message === 'string' ? cause.message : err instanceof Error ? err.message : String(err);
  return new ToolhostClientError('unreachable', 0, `cannot reach toolhost at ${url} (${why}); is the server running, and is the URL right?`);
}
