/** The one place a throwable becomes an HTTP response: status from the error code, JSON body. */
import type { Response } from 'express';
import { toToolhostError } from '../../lib/errors.js';

/** Sends the JSON error body `{"error": {"code", "message", ...details}}` for any throwable. */
export function sendError(res: Response, err: unknown): void {
  const e = toToolhostError(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (e.code === 'queue_full' || e.code === 'shutting_down') res.setHeader('Retry-After', String(e.details?.retry_after_s ?? 1));
  res.status(e.status).json({ error: { code: e.code, message: e.message, ...e.details } });
}

