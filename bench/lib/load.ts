/** Closed-loop load with autocannon: `connections` clients, each sending its next request once answered. */
import autocannon from 'autocannon';
import { authHeaders, type Endpoint } from './http.js';

/** One request of the rotation each connection cycles through. */
export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
}

/** What a load run measured. */
export interface LoadResult {
  /** Answered requests per second, over the whole run. */
  rps: number;
  total: number;
  /** Connection errors, timeouts and non-2xx answers. */
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs `requests` in rotation on `connections` keep-alive connections for `durationS` seconds, with the target's token. */
export async function load(target: string | Endpoint, requests: readonly LoadRequest[], o: { connections: number; durationS: number }): Promise<LoadResult> {
  const url = typeof target === 'string' ? target : target.url;
  if (new URL(url).hostname !== '127.0.0.1') throw new Error('load only targets 127.0.0.1');
  const auth = authHeaders(target);
  const r = await autocannon({
    url,
    headers: auth,
    connections: o.connections,
    duration: o.durationS,
    timeout: 60,
    requests: requests.map((q) => ({
      method: q.method,
      path: q.path,
      // A request's own headers replace the run's, so each carries the token too.
      ...(q.body === undefined ? {} : { body: JSON.stringify(q.body), headers: { ...auth, 'content-type': 'application/json' } }),
    })),
  });
  const total = r.requests.total;
  return { rps: total / r.duration, total, errors: r.errors + r.non2xx, p50Ms: r.latency.p50, p99Ms: r.latency.p99 };
}
