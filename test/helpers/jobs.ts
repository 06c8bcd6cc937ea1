/**
 * Helpers for command-job tests: following a job through the jobs API (long-poll pages, Server-Sent Events),
 * unique process markers, and a leak guard that fails a test whose processes outlived it.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import type { TestServer } from './harness.js';
import { eventually, processesWith } from './procs.js';

/** The final states of a command job. */
export const FINAL_STATES: readonly string[] = ['completed', 'timed_out', 'cancelled', 'failed', 'interrupted'];

/** One answer of GET /jobs/:id, as the tests read it. */
export interface JobPage {
  status: string;
  stdout: string;
  stderr: string;
  stdout_offset: number;
  stderr_offset: number;
  more_bytes: { stdout: number; stderr: number };
  [k: string]: any;
}

/** What following a job to its end yielded. */
export interface Followed {
  stdout: string;
  stderr: string;
  /** Every answer, in order. */
  pages: JobPage[];
  /** The last answer (final state, nothing more to read). */
  last: JobPage;
}

/** GET /jobs/:id with offsets; fails the test on anything but 200. */
export async function poll(s: TestServer, id: string, offsets: { stdout: number; stderr: number }, waitS: number): Promise<JobPage> {
  const r = await s.api<JobPage>(`/jobs/${id}?wait_s=${waitS}&stdout_offset=${offsets.stdout}&stderr_offset=${offsets.stderr}`);
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  return r.body;
}

/**
 * Long-polls a job from `from` until `until` holds for the output gathered so far (default: the job ended and
 * all its output was read). Each answer must continue exactly where the previous one stopped.
 */
export async function follow(
  s: TestServer,
  id: string,
  from: { stdout: number; stderr: number } = { stdout: 0, stderr: 0 },
  until: (f: Followed) => boolean = (f) => FINAL_STATES.includes(f.last.status) && f.last.more_bytes.stdout === 0 && f.last.more_bytes.stderr === 0,
  waitS = 10,
): Promise<Followed> {
  const f: Followed = { stdout: '', stderr: '', pages: [], last: undefined as unknown as JobPage };
  const at = { ...from };
  for (let i = 0; i < 2000; i++) {
    const page = await poll(s, id, at, waitS);
    f.pages.push(page);
    f.last = page;
    f.stdout += page.stdout;
    f.stderr += page.stderr;
    at.stdout = page.stdout_offset;
    at.stderr = page.stderr_offset;
    if (until(f)) return f;
    if (FINAL_STATES.includes(page.status) && page.more_bytes.stdout === 0 && page.more_bytes.stderr === 0) {
      throw new Error(`job ${id} ended (${page.status}) before the expected output: ${JSON.stringify({ stdout: f.stdout, stderr: f.stderr })}`);
    }
  }
  throw new Error(`job ${id}: 2000 polls without reaching the expected state`);
}

/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: any;
}

/** An open SSE stream: events are read one at a time, in order. */
export interface SseStream {
  status: number;
  contentType: string | null;
  /** The next event (comments skipped); null when the server closed the stream. */
  next(): Promise<SseEvent | null>;
  close(): Promise<void>;
}

/** Opens GET `path` as an event stream. */
export async function openSse(s: TestServer, path: string): Promise<SseStream> {
  const ctrl = new AbortController();
  const res = await fetch(s.url + path, {
    signal: ctrl.signal,
    headers: { accept: 'text/event-stream', ...(s.token ? { authorization: `Bearer ${s.token}` } : {}) },
  });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let ended = false;
  const next = async (): Promise<SseEvent | null> => {
    for (;;) {
      const cut = buffered.indexOf('\n\n');
      if (cut >= 0) {
        const block = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length === 0) continue; // a keep-alive comment
        return { event, data: JSON.parse(data.join('\n')) };
      }
      if (ended) return null;
      const { value, done } = await reader.read();
      if (done) ended = true;
      else buffered += decoder.decode(value, { stream: true });
    }
  };
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    next,
    close: async () => {
      ctrl.abort();
      await reader.cancel().catch(() => {});
    },
  };
}

/** Pids of live processes whose argv[0] is exactly `marker` (what `exec -a marker` sets). */
export function processesNamed(marker: string): number[] {
  return processesWith(marker).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0] === marker;
    } catch {
      return false; // gone
    }
  });
}

/**
 * Hands out unique marker strings and checks, after each test, that no process carrying one of them is left.
 * A leaked process is killed (it is one this test started) and the test fails.
 */
export class LeakGuard {
  #markers: string[] = [];
  #n = 0;
  constructor(private readonly tag: string) {}

  /** A fresh marker, safe inside single quotes in bash. */
  marker(what = 'p'): string {
    const m = `th-${this.tag}-${what}-${process.pid}-${++this.#n}-${Math.random().toString(36).slice(2, 8)}`;
    this.#markers.push(m);
    return m;
  }

  /** Fails when a marked process outlives its test (waits a moment for kills in flight). */
  async check(): Promise<void> {
    const markers = this.#markers;
    this.#markers = [];
    const leaked = (): string[] => markers.filter((m) => processesWith(m).length > 0);
    if (await eventually(() => leaked().length === 0, 8000)) return;
    const left = leaked().map((m) => `${m}: ${processesWith(m).join(',')}`);
    for (const m of markers) {
      for (const pid of processesWith(m)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
    throw new Error(`processes outlived their test: ${left.join('; ')}`);
  }
}

/** Asserts the server still answers a file read in `project` (it has a.txt). */
export async function expectResponsive(s: TestServer, project: string): Promise<void> {
  const r = await s.api('/file/read', { project_id: project, path: 'a.txt' });
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  expect(r.body.content).to.equal('a\n');
}

/** Skips the current test or suite and says why in the output (mocha's own skip gives no reason). */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  console.log(`      (skipped: ${reason})`);
  ctx.skip();
}
