/**
 * A minimal keep-alive JSON client on node:http, the same for toolhost and for the bare baseline server, so any
 * client-side cost is identical on both sides of a ratio.
 */
import { createReadStream } from 'node:fs';
import { Agent, type IncomingHttpHeaders, request } from 'node:http';
import { pipeline } from 'node:stream/promises';

/** A response with its body parsed as JSON when it is JSON. */
export interface JsonResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: any;
}

/** Thrown for a response outside 2xx, with the server's error body in the message. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}: ${typeof body === 'string' ? body.slice(0, 500) : JSON.stringify(body).slice(0, 500)}`);
  }
}

/** A server to talk to: its base URL and the bearer token it requires (none for the bare baseline server). */
export interface Endpoint {
  url: string;
  token?: string | null;
}

/** The Authorization header for `target`'s token, if it has one. */
export function authHeaders(target: string | Endpoint): Record<string, string> {
  return typeof target !== 'string' && target.token ? { authorization: `Bearer ${target.token}` } : {};
}

/** Keep-alive client of one base URL (127.0.0.1 only), sending the endpoint's token with every request. */
export class JsonClient {
  readonly #base: URL;
  readonly #agent: Agent;
  readonly #auth: Record<string, string>;

  /** @param target a base URL, or a server with its token. @param sockets most connections kept open at once. */
  constructor(target: string | Endpoint, sockets = 1) {
    this.#base = new URL(typeof target === 'string' ? target : target.url);
    if (this.#base.hostname !== '127.0.0.1') throw new Error(`the bench only talks to 127.0.0.1, not ${this.#base.hostname}`);
    this.#agent = new Agent({ keepAlive: true, maxSockets: sockets });
    this.#auth = authHeaders(target);
  }

  /** POSTs JSON; rejects with HttpError outside 2xx. */
  post(path: string, body: unknown): Promise<JsonResponse> {
    return this.send('POST', path, JSON.stringify(body), 'application/json');
  }

  /** GETs a path; rejects with HttpError outside 2xx. */
  get(path: string): Promise<JsonResponse> {
    return this.send('GET', path);
  }

  /** PUTs a file's bytes (streamed, not buffered). */
  async putFile(path: string, file: string): Promise<JsonResponse> {
    return this.send('PUT', path, file, 'application/octet-stream', true);
  }

  /** Sends a request and reads the whole answer. `body` is a string, or a file path when `isFile`. */
  send(method: string, path: string, body?: string, type?: string, isFile = false): Promise<JsonResponse> {
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.#base),
        { method, agent: this.#agent, headers: { ...this.#auth, ...(type ? { 'content-type': type } : {}) } },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(parts).toString('utf8');
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json')) {
              try {
                parsed = JSON.parse(text);
              } catch {
                // keep the text
              }
            }
            const status = res.statusCode ?? 0;
            if (status < 200 || status > 299) reject(new HttpError(status, parsed));
            else resolve({ status, headers: res.headers, body: parsed });
          });
        },
      );
      req.on('error', reject);
      if (isFile && body !== undefined) pipeline(createReadStream(body), req).catch(reject);
      else req.end(body);
    });
  }

  /** Closes the kept-alive sockets. */
  close(): void {
    this.#agent.destroy();
  }
}
