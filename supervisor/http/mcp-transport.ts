/**
 * The MCP SDK's Streamable HTTP transport on Node's request and response, without the SDK's Node wrapper.
 *
 * The SDK's StreamableHTTPServerTransport is its web-standard transport behind @hono/node-server, which answers an
 * SSE response by flushing the headers on their own as soon as the first chunk is not there after one timer tick,
 * then writing the event, then the end: two or three socket writes (and as many wake-ups of the client) where a
 * plain HTTP answer makes one. An MCP tool call answered in a few milliseconds is one SSE event and the end, so
 * here the headers wait for the first event a little while (`HEADER_GRACE_MS`), and an answer complete by then
 * goes out in one write, with its Content-Length, as @hono/node-server does when the body is there in time. Headers,
 * status, SSE framing and keep-alive comments are the transport's own, unchanged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';

/**
 * How long the headers of a streamed answer wait for its first event. A call that ends within this goes out in one
 * write; a longer one (a command) gets its headers then, and its events as they come. Short enough that a client
 * or proxy sees the answer begin at once.
 */
export const HEADER_GRACE_MS = 20;

type Chunk = ReadableStreamReadResult<Uint8Array>;

/** Serves one POST to `transport` (new for this request: stateless) and writes its answer to `res`. */
export async function serveMcpRequest(
  transport: WebStandardStreamableHTTPServerTransport,
  req: IncomingMessage,
  res: ServerResponse,
  parsedBody: unknown,
): Promise<void> {
  const response = await transport.handleRequest(webRequest(req), { parsedBody });
  await writeResponse(response, res);
}

/** The request as the transport reads it: method, URL and headers (the body is passed parsed). */
function webRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, { method: req.method ?? 'POST', headers });
}

/** Writes a web Response to `res`: whole in one write when its body is complete within the grace, else streamed. */
async function writeResponse(response: Response, res: ServerResponse): Promise<void> {
  const headers: Record<string, string> = {};
  for (const [k, v] of response.headers) headers[k] = v;
  if (!response.body) {
    res.writeHead(response.status, headers).end();
    return;
  }
  const reader = response.body.getReader();
  // The client leaving ends the read (the transport's cancel stops its keep-alive timer).
  const cancel = (): void => void reader.cancel().catch(() => {});
  res.once('close', cancel);
  try {
    const parts: Uint8Array[] = [];
    let next: Promise<Chunk> | undefined = reader.read();
    let done = false;
    for (let r = await within(next, HEADER_GRACE_MS); r; r = await within(next, 0)) {
      next = undefined;
      if (r.done) {
        done = true;
        break;
      }
      parts.push(r.value);
      next = reader.read();
    }
    // A client gone during the wait has nothing to receive.
    if (res.destroyed) return;
    if (done) {
      const body = Buffer.concat(parts);
      res.writeHead(response.status, { ...headers, 'content-length': String(body.length) }).end(body);
      return;
    }
    res.writeHead(response.status, headers);
    for (const p of parts) res.write(p);
    if (parts.length === 0) res.flushHeaders();
    for (;;) {
      const r: Chunk = await (next ?? reader.read());
      next = undefined;
      if (r.done || res.destroyed) break;
      if (!res.write(r.value)) await drained(res);
    }
    res.end();
  } finally {
    res.off('close', cancel);
  }
}

/** The read's result if it settles within `ms` (0: already settled, a few microtasks), else undefined. */
async function within(read: Promise<Chunk>, ms: number): Promise<Chunk | undefined> {
  if (ms <= 0) return Promise.race([read, Promise.resolve().then(() => undefined)]);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([read, new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `res` can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
