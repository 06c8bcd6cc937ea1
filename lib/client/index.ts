/**
 * A typed client of the toolhost HTTP API (`toolhost/client`), on the global fetch. Every failed call rejects
 * with a {@link ToolhostClientError} carrying the API's error code and message. Long waits are chunked: fetch
 * (undici) gives up on an answer after 300 s, so no call asks the server to wait longer than 190 s, and output
 * is followed on the event stream, which the server keeps alive every 15 s.
 *
 * @example
 * const th = new ToolhostClient({ url: 'http://127.0.0.1:8080', token: process.env.TOOLHOST_TOKEN });
 * await th.projects.push('demo', './my-project', { replace: true });
 * const end = await th.run({ project_id: 'demo', command: 'npm test' }, { onOutput: (s, text) => process[s].write(text) });
 * console.log(end.status, end.exit_code);
 */
import { createWriteStream, openAsBlob } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArchiveFormat } from '../archive/format.js';
import type { PackResult } from '../archive/pack.js';
import type { ArchiveLimits } from '../archive/types.js';
import { errorOf, ToolhostClientError, unreachable } from './errors.js';
import { extractInto, PULL_LIMITS, packFolder, pullTargetProblem, withTempDir } from './folders.js';
import { readSse } from './sse.js';
import type {
  CheckpointInfo,
  CommandView,
  DeleteResult,
  ExecuteRequest,
  ForkResult,
  Health,
  JobEnd,
  JobEvent,
  JobListItem,
  ProjectInfo,
  ProjectSummary,
  ReloadReport,
  RestoreResult,
  SaveResult,
} from './types.js';

export { ToolhostClientError } from './errors.js';
export type * from './types.js';

/** Where the server is and how to authenticate. */
export interface ClientOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  /** The bearer token; omit it for a server with auth "none" (or to ask /health only whether it is up). */
  token?: string | null | undefined;
}

/** Options every call takes. */
export interface CallOptions {
  /** Aborts the call (the fetch rejects with the signal's reason). */
  signal?: AbortSignal | undefined;
}

/** Byte offsets of output already seen. */
export interface Offsets {
  stdout: number;
  stderr: number;
}

/** How {@link ToolhostClient.jobs}.follow and {@link ToolhostClient.run} hand over output. */
export interface FollowOptions extends CallOptions {
  /** Called with each piece of output as it arrives, in order per stream. */
  onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
  /** Where to start (default: the beginning). */
  from?: Offsets | undefined;
  /** Reconnections in a row without news before giving up (default 5). */
  retries?: number | undefined;
}

/** What a request sends. */
interface RequestSpec extends CallOptions {
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON body (POST always sends one, `{}` by default). */
  json?: unknown;
  /** A raw body (an archive). */
  body?: Blob | Uint8Array;
}

const seg = encodeURIComponent;

/** The toolhost HTTP API. */
export class ToolhostClient {
  /** The base URL, without a trailing slash. */
  readonly url: string;
  readonly #token: string | null;

  /** @throws TypeError when `url` is not an http(s) URL. */
  constructor(opts: ClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(opts.url);
    } catch {
      throw new TypeError(`"${opts.url}" is not a URL; give the server's base URL, e.g. http://127.0.0.1:8080`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`"${opts.url}" is not an http(s) URL`);
    this.url = parsed.href.replace(/\/+$/, '');
    this.#token = opts.token || null;
  }

  /** GET /health: `status` always; the rest (jobs, cache, containment...) only with the token. */
  health(o?: CallOptions): Promise<Health> {
    return this.request<Health>('GET', '/health', o);
  }

  /** POST /admin/reload: re-reads the config file; says what changed now and what needs a restart. */
  reload(o?: CallOptions): Promise<ReloadReport> {
    return this.request<ReloadReport>('POST', '/admin/reload', o);
  }

  /** POST /execute: runs a command; answers when it ends or after `wait_s` (then with status "running"). */
  execute(req: ExecuteRequest, o?: CallOptions): Promise<CommandView> {
    if ((req.wait_s ?? 0) > 190) throw new ToolhostClientError('bad_request', 0, 'wait_s is at most 190; follow a longer command with jobs.follow');
    return this.request<CommandView>('POST', '/execute', { ...o, json: req });
  }

  /** Runs a command and follows its output to its end: {@link execute} that answers at once, then jobs.follow. */
  async run(req: Omit<ExecuteRequest, 'wait_s'>, o: FollowOptions & { onStart?: (jobId: string) => void } = {}): Promise<JobEnd & { job_id: string }> {
    const started = await this.execute({ ...req, wait_s: 0 }, o);
    o.onStart?.(started.job_id);
    return { ...(await this.jobs.follow(started.job_id, o)), job_id: started.job_id };
  }

  /** Projects: listing, archives in and out, saving, deleting. */
  readonly projects = {
    /** GET /projects. */
    list: async (o?: CallOptions): Promise<ProjectSummary[]> => (await this.request<{ projects: ProjectSummary[] }>('GET', '/projects', o)).projects,
    /** GET /projects/:id. */
    info: (id: string, o?: CallOptions): Promise<ProjectInfo> => this.request('GET', `/projects/${seg(id)}`, o),
    /** POST /projects/:id: a new, empty project (a git repository with `git_init`). */
    create: (id: string, opts: CallOptions & { git_init?: boolean } = {}): Promise<ProjectInfo> =>
      this.request('POST', `/projects/${seg(id)}`, { ...opts, json: { git_init: opts.git_init ?? false } }),
    /**
     * PUT /projects/:id: uploads an archive (a zip or tar.gz file's path, or its bytes). `created` is false when it
     * replaced a project (`replace: true`).
     */
    upload: async (
      id: string,
      archive: string | Uint8Array,
      opts: CallOptions & { replace?: boolean } = {},
    ): Promise<{ created: boolean; info: ProjectInfo }> => {
      const body = typeof archive === 'string' ? await openAsBlob(archive) : archive;
      const res = await this.#fetch('PUT', `/projects/${seg(id)}`, { ...opts, body, query: { replace: opts.replace ?? false } });
      return { created: res.status === 201, info: (await res.json()) as ProjectInfo };
    },
    /** Packs the local folder `dir` (tar.gz, leaving out `exclude` gitignore patterns) and uploads it as project `id`. */
    push: (
      id: string,
      dir: string,
      opts: CallOptions & { replace?: boolean; exclude?: readonly string[] } = {},
    ): Promise<{ created: boolean; info: ProjectInfo; packed: PackResult }> =>
      withTempDir(async (tmp) => {
        const file = `${tmp}/push.tar.gz`;
        const packed = await packFolder(dir, file, 'tar.gz', opts.exclude);
        return { ...(await this.projects.upload(id, file, opts)), packed };
      }),
    /** GET /projects/:id/archive: the whole project as one archive, written to the new file `file`. Resolves with its size. */
    download: async (id: string, file: string, opts: CallOptions & { format?: ArchiveFormat } = {}): Promise<number> => {
      const res = await this.#fetch('GET', `/projects/${seg(id)}/archive`, { ...opts, query: { format: opts.format ?? 'tar.gz' } });
      if (!res.body) throw new ToolhostClientError('bad_response', res.status, 'the archive answer has no body');
      const out = createWriteStream(file, { flags: 'wx' });
      await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), out);
      return out.bytesWritten;
    },
    /** Downloads project `id` and extracts it into `dir`, which must not exist or be empty. */
    pull: async (id: string, dir: string, opts: CallOptions & { limits?: ArchiveLimits } = {}): Promise<{ archiveBytes: number }> => {
      // Refused before the download, which may be large; checked again before the folder is filled.
      const problem = await pullTargetProblem(dir);
      if (problem) throw new ToolhostClientError('bad_request', 0, problem);
      return withTempDir(async (tmp) => {
        const file = `${tmp}/pull.tar.gz`;
        const archiveBytes = await this.projects.download(id, file, opts);
        await extractInto(file, 'tar.gz', dir, opts.limits ?? PULL_LIMITS);
        return { archiveBytes };
      });
    },
    /** POST /projects/:id/save: writes the working copy back to the store now (a checkpoint when something changed). */
    save: (id: string, o?: CallOptions): Promise<SaveResult> => this.request('POST', `/projects/${seg(id)}/save`, o),
    /** DELETE /projects/:id: from the store and the cache; `force` also with jobs running or unsaved changes. */
    delete: (id: string, opts: CallOptions & { force?: boolean } = {}): Promise<DeleteResult> =>
      this.request('DELETE', `/projects/${seg(id)}`, { ...opts, query: { force: opts.force ?? false } }),
    /** DELETE /projects/:id/cache: drops the working copy (saved first). */
    evict: (id: string, o?: CallOptions): Promise<{ project_id: string; evicted: boolean }> => this.request('DELETE', `/projects/${seg(id)}/cache`, o),
  };

  /** Checkpoints of a project, restore and fork. */
  readonly checkpoints = {
    /** POST /projects/:id/checkpoints. */
    create: (id: string, opts: CallOptions & { label?: string } = {}): Promise<CheckpointInfo> =>
      this.request('POST', `/projects/${seg(id)}/checkpoints`, { ...opts, json: opts.label === undefined ? {} : { label: opts.label } }),
    /** GET /projects/:id/checkpoints, newest first. */
    list: async (id: string, o?: CallOptions): Promise<CheckpointInfo[]> =>
      (await this.request<{ checkpoints: CheckpointInfo[] }>('GET', `/projects/${seg(id)}/checkpoints`, o)).checkpoints,
    /** POST /projects/:id/checkpoints/:cp/restore. */
    restore: (id: string, checkpointId: string, o?: CallOptions): Promise<RestoreResult> =>
      this.request('POST', `/projects/${seg(id)}/checkpoints/${seg(checkpointId)}/restore`, o),
    /** POST /projects/:id/fork: a new project from the current state or a checkpoint. */
    fork: (id: string, newId: string, opts: CallOptions & { checkpoint_id?: string } = {}): Promise<ForkResult> =>
      this.request('POST', `/projects/${seg(id)}/fork`, {
        ...opts,
        json: { new_project_id: newId, ...(opts.checkpoint_id === undefined ? {} : { checkpoint_id: opts.checkpoint_id }) },
      }),
  };

  /** Command jobs: status by offsets, stdin, listing, cancelling, following the output. */
  readonly jobs = {
    /** GET /jobs/:id: status and output past the offsets, waiting up to `wait_s` (at most 190) for news. */
    status: (
      id: string,
      opts: CallOptions & { stdout_offset?: number; stderr_offset?: number; wait_s?: number; max_output_chars?: number } = {},
    ): Promise<CommandView> => {
      const { signal, ...query } = opts;
      return this.request('GET', `/jobs/${seg(id)}`, { signal, query });
    },
    /** GET /jobs: running and recent jobs, newest first. */
    list: async (opts: CallOptions & { project_id?: string } = {}): Promise<JobListItem[]> =>
      (await this.request<{ jobs: JobListItem[] }>('GET', '/jobs', { signal: opts.signal, query: { project_id: opts.project_id } })).jobs,
    /** POST /jobs/:id/input: writes to the stdin of a command started with stdin "pipe". */
    input: (id: string, data: string, opts: CallOptions & { eof?: boolean } = {}): Promise<{ job_id: string; bytes: number; eof: boolean }> =>
      this.request('POST', `/jobs/${seg(id)}/input`, { signal: opts.signal, json: { data, eof: opts.eof ?? false } }),
    /** DELETE /jobs/:id: stops the job and answers its final view. */
    cancel: (id: string, o?: CallOptions): Promise<CommandView> => this.request('DELETE', `/jobs/${seg(id)}`, o),
    /**
     * GET /jobs/:id/stream: the job's output from `from` as it comes, then its `end`, over one connection. Ends
     * without an `end` event when the connection drops: {@link follow} reconnects.
     */
    events: (id: string, from: Offsets = { stdout: 0, stderr: 0 }, o?: CallOptions): AsyncGenerator<JobEvent> => this.#events(id, from, o),
    /** Follows the job's output to its end, reconnecting from the last offsets when the connection drops. */
    follow: (id: string, o: FollowOptions = {}): Promise<JobEnd> => this.#follow(id, o),
  };

  /** Sends a request and parses its JSON answer; rejects with {@link ToolhostClientError}. */
  async request<T>(method: string, path: string, spec: RequestSpec = {}): Promise<T> {
    const res = await this.#fetch(method, path, spec);
    try {
      return (await res.json()) as T;
    } catch (err) {
      if (spec.signal?.aborted) throw err;
      throw new ToolhostClientError('bad_response', res.status, `${method} ${path} answered with a body that is not JSON; is the URL a toolhost server?`);
    }
  }

  async #fetch(method: string, path: string, spec: RequestSpec): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#token) headers.authorization = `Bearer ${this.#token}`;
    let body: BodyInit | undefined;
    if (spec.body !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      body = spec.body as BodyInit;
    } else if (method === 'POST') {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(spec.json ?? {});
    }
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) query.set(k, String(v));
    const qs = query.size > 0 ? `?${query}` : '';
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}${qs}`, { method, headers, body, signal: spec.signal ?? null });
    } catch (err) {
      if (spec.signal?.aborted) throw err;
      throw unreachable(this.url, err);
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  async *#events(id: string, from: Offsets, o?: CallOptions): AsyncGenerator<JobEvent> {
    const res = await this.#fetch('GET', `/jobs/${seg(id)}/stream`, { signal: o?.signal, query: { stdout_offset: from.stdout, stderr_offset: from.stderr } });
    if (!res.body) return;
    for await (const e of readSse(res.body as ReadableStream<Uint8Array>)) {
      if (e.event !== 'stdout' && e.event !== 'stderr' && e.event !== 'end') continue;
      yield { type: e.event, ...JSON.parse(e.data) } as JobEvent;
      if (e.event === 'end') return;
    }
  }

  async #follow(id: string, o: FollowOptions): Promise<JobEnd> {
    const at: Offsets = { ...(o.from ?? { stdout: 0, stderr: 0 }) };
    const retries = o.retries ?? 5;
    let failures = 0;
    for (;;) {
      try {
        for await (const e of this.#events(id, at, o)) {
          if (e.type === 'end') return e;
          failures = 0;
          at[e.type] = e.next_offset;
          o.onOutput?.(e.type, e.text);
        }
        throw new ToolhostClientError('unreachable', 0, `the event stream of job ${id} ended before the job did`);
      } catch (err) {
        // The server's answer (the job is gone, the token is wrong) is final; a dropped connection is retried.
        if (o.signal?.aborted || (err instanceof ToolhostClientError && err.status !== 0)) throw err;
        if (++failures > retries) throw err instanceof ToolhostClientError ? err : unreachable(this.url, err);
        await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** failures, 5000)));
      }
    }
  }
}
