/**
 * The checks every request passes before a route sees it, in this order:
 * 1. Host: a loopback name or one of http.allowedHosts, else 403 (a DNS-rebinding page reaches us under its own name).
 * 2. Origin: absent (curl, SDKs), the server's own (the console page), or one of http.allowedOrigins, else 403 (any
 *    other browser page, `null` included); CORS preflights of allowed origins are answered here.
 * 3. The bearer token (auth "token"); /health answers before it, with only its status unless the token is valid.
 * 4. POST bodies are JSON (`application/json`, `application/*+json`), else 415: a browser's "simple" cross-origin
 *    request (text/plain, form-urlencoded, multipart) never reaches a route, even from a browser that sends no Origin.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../../config/schema.js';
import { ToolhostError } from '../../lib/errors.js';

type Middleware = (req: Request, res: Response, next: NextFunction) => void;

/** True for a loopback host name: localhost, 127.x.y.z or [::1] (lower case, without port). */
export function isLoopbackName(name: string): boolean {
  if (name === 'localhost' || name === '[::1]') return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  if (m === null) return false;
  return m.slice(1).every((o) => Number(o) <= 255);
}

/** The host name of a Host header value, lower case and without the port; null when it is not one. */
export function hostName(header: string): string | null {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::\d{1,5})?$/.exec(header.trim().toLowerCase());
  return m ? m[1]! : null;
}

/** Refuses a request whose Host is neither loopback nor in http.allowedHosts. */
export function hostGuard(config: () => Config): Middleware {
  return (req, _res, next) => {
    const header = req.headers.host;
    const name = header === undefined ? null : hostName(header);
    const allowed = name !== null && (isLoopbackName(name) || config().http.allowedHosts.some((h) => h.toLowerCase() === name));
    if (allowed) return next();
    next(
      new ToolhostError(
        'permission_denied',
        `Host ${header === undefined ? '(none)' : JSON.stringify(header.slice(0, 200))} is not a name of this server; reach it by 127.0.0.1 or localhost, or have the operator add the name to http.allowedHosts`,
        { reason: 'host_not_allowed' },
      ),
    );
  };
}

const PREFLIGHT_HEADERS = {
  'access-control-allow-methods': 'GET, POST, PUT, DELETE',
  'access-control-allow-headers': 'authorization, content-type, accept, x-request-id, mcp-protocol-version',
  'access-control-max-age': '600',
};

/** Refuses browser requests from origins not in http.allowedOrigins; answers CORS preflights of allowed ones. */
export function originGuard(config: () => Config): Middleware {
  return (req, res, next) => {
    const origin = req.headers.origin;
    // The server's own origin (the operator console at /console): the Host guard has vetted that name already.
    if (origin === undefined || sameOrigin(origin, req.headers.host)) return next();
    const lower = origin.toLowerCase();
    if (!config().http.allowedOrigins.some((o) => o.toLowerCase() === lower)) {
      return next(
        new ToolhostError(
          'permission_denied',
          `requests from the browser origin ${JSON.stringify(origin.slice(0, 200))} are refused; call from a server-side client (without an Origin header), or have the operator add the origin to http.allowedOrigins`,
          { reason: 'origin_not_allowed' },
        ),
      );
    }
    res.setHeader('access-control-allow-origin', origin);
    res.setHeader('access-control-expose-headers', 'x-request-id, x-toolhost-worker, retry-after');
    res.setHeader('vary', 'Origin');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.status(204).set(PREFLIGHT_HEADERS).end();
      return;
    }
    next();
  };
}

/** True when `origin` names this server as `host` (the Host header) does: the same host and port, http or https. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined || !/^https?:\/\/[^/]+$/i.test(origin)) return false;
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/** How an Authorization header compares with the token. */
export type AuthVerdict = 'ok' | 'missing' | 'malformed' | 'wrong';

/**
 * A checker of Authorization headers against `token` (null: no auth, every request passes). The scheme is
 * case-insensitive (RFC 7235); the credentials are compared in constant time, as digests of equal length.
 */
export function authChecker(token: string | null): (header: string | undefined) => AuthVerdict {
  if (token === null) return () => 'ok';
  const want = createHash('sha256').update(token).digest();
  return (header) => {
    if (header === undefined || header === '') return 'missing';
    const m = /^([A-Za-z][\w!#$%&'*+.^`|~-]*) +([\x21-\x7e]+) *$/.exec(header);
    if (!m || m[1]!.toLowerCase() !== 'bearer') return 'malformed';
    return timingSafeEqual(createHash('sha256').update(m[2]!).digest(), want) ? 'ok' : 'wrong';
  };
}

const AUTH_MESSAGES: Record<Exclude<AuthVerdict, 'ok'>, string> = {
  missing:
    'this route needs the bearer token; send the header "Authorization: Bearer <token>" (the token is the server\'s token setting or TOOLHOST_TOKEN, or else the file "token" in its data directory)',
  malformed: 'the Authorization header is not "Bearer <token>"; send exactly "Authorization: Bearer <token>" (one space, the token without quotes)',
  wrong:
    'the bearer token is wrong; send the server\'s token (its token setting or TOOLHOST_TOKEN, or else the file "token" in its data directory) as "Authorization: Bearer <token>"',
};

/** Refuses requests without the bearer token, with 401 and WWW-Authenticate. */
export function authGuard(check: (header: string | undefined) => AuthVerdict): Middleware {
  return (req, res, next) => {
    const verdict = check(req.headers.authorization);
    if (verdict === 'ok') return next();
    res.setHeader('www-authenticate', verdict === 'missing' ? 'Bearer realm="toolhost"' : 'Bearer realm="toolhost", error="invalid_token"');
    next(new ToolhostError('unauthorized', AUTH_MESSAGES[verdict]));
  };
}

/** True for a JSON media type (`application/json`, `application/*+json`), parameters (charset) allowed. */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  const essence = header.split(';', 1)[0]!.trim().toLowerCase();
  return essence === 'application/json' || /^application\/[a-z0-9!#$&^_.-]+\+json$/.test(essence);
}

/** True when the request carries a body (any Transfer-Encoding, or a non-zero Content-Length). */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Refuses a POST whose Content-Type is not JSON, or that has a body and no Content-Type, with 415, before any byte
 * of the body is read. (PUT /projects/:id takes an archive of any type; browsers cannot send a PUT without a CORS
 * preflight, which the Origin check refuses.)
 */
export function jsonPostGuard(): Middleware {
  return (req, _res, next) => {
    if (req.method !== 'POST') return next();
    const type = req.headers['content-type'];
    if (type === undefined ? !hasBody(req) : isJsonContentType(type)) return next();
    next(
      new ToolhostError(
        'unsupported_media_type',
        `${type === undefined ? 'a body without Content-Type' : `Content-Type ${JSON.stringify(type.slice(0, 100))}`} is not accepted; send the body as JSON with the header "Content-Type: application/json"`,
      ),
    );
  };
}
