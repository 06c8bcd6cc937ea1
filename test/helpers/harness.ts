/**
 * Test harness: a real supervisor on 127.0.0.1 port 0 with a fresh temp data dir, a JSON client for its API,
 * and project archives built from a file map with the real `tar` and `zip` commands.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { extractArchive } from '../../lib/archive/extract.js';
import type { ArchiveLimits } from '../../lib/archive/types.js';
import { materializeLayers, uploadLayers } from '../../lib/layers/ops.js';
import { LocalStore } from '../../lib/store/local-store.js';
import type { ProjectStore } from '../../lib/store/project-store.js';
import type { Logger } from '../../supervisor/logger.js';
import { type Supervisor, startSupervisor } from '../../supervisor/supervisor.js';

const run = promisify(execFile);

/** A response from the API. */
export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A running test server and its helpers. */
export interface TestServer {
  url: string;
  dataDir: string;
  /** The bearer token the server requires (read from where the server put it); null with auth "none". */
  token: string | null;
  sup: Supervisor;
  /**
   * POST (or `method`) JSON to the API, with the server's token unless `opts.token` gives another one (null: none).
   * A string body is sent as is; `headers` override the defaults (content-type, authorization).
   */
  api<T = any>(path: string, body?: unknown, opts?: { method?: string; token?: string | null; headers?: Record<string, string> }): Promise<ApiResponse<T>>;
  /** Uploads a project built from `files` (path -> content; a value of { link: target } makes a symlink). */
  putProject(id: string, files: FileMap, format?: 'tar.gz' | 'zip'): Promise<ApiResponse>;
  close(opts?: { force?: boolean }): Promise<void>;
}

/** Files of a project: content strings, or symlinks. */
export type FileMap = Record<string, string | { link: string }>;

/** Makes a temp folder (realpath'd). */
export async function tempDir(prefix = 'toolhost-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Writes `files` under `dir`. */
export async function writeTree(dir: string, files: FileMap): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const p = join(dir, rel);
    await mkdir(dirname(p), { recursive: true });
    if (typeof content === 'string') await writeFile(p, content);
    else await run('ln', ['-s', content.link, p]);
  }
}

/** Builds an archive of `files` with the system's tar or zip and returns its bytes. */
export async function buildArchive(files: FileMap, format: 'tar.gz' | 'zip' = 'tar.gz'): Promise<Buffer> {
  const dir = await tempDir('toolhost-archive-');
  try {
    const src = join(dir, 'src');
    await mkdir(src);
    await writeTree(src, files);
    const out = join(dir, format === 'zip' ? 'p.zip' : 'p.tar.gz');
    if (format === 'zip') await run('zip', ['-qry', out, '.'], { cwd: src });
    else await run('tar', ['czf', out, '-C', src, '.']);
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Starts a supervisor with test-friendly settings merged with `overrides` (over `how.configFile`, if given, which
 * a reload then re-reads); `how.log` replaces the default logger (to capture its lines); `how.now` is the clock of
 * the project cache and the janitor.
 */
export async function startServer(
  overrides: Record<string, unknown> = {},
  how: { log?: Logger; configFile?: string; now?: () => number } = {},
): Promise<TestServer> {
  // A test that restarts a server on the same data passes its dataDir; otherwise each server gets a fresh one.
  const dataDir = typeof overrides.dataDir === 'string' ? overrides.dataDir : await tempDir('toolhost-data-');
  const sources = {
    file: how.configFile,
    overrides: { port: 0, host: '127.0.0.1', dataDir, logLevel: 'silent', shutdown: { graceS: 5 }, ...overrides },
  };
  const config = loadConfig(sources);
  const sup = await startSupervisor(config, how.log, { sources, now: how.now });
  const token = await serverToken(config);
  const api: TestServer['api'] = async (path, body, opts = {}) => {
    const method = opts.method ?? (body === undefined ? 'GET' : 'POST');
    const headers: Record<string, string> = {};
    if (body !== undefined && !(body instanceof Uint8Array)) headers['content-type'] = 'application/json';
    const auth = opts.token === undefined ? token : opts.token;
    if (auth) headers.authorization = `Bearer ${auth}`;
    Object.assign(headers, opts.headers);
    const res = await fetch(sup.url + path, {
      method,
      headers,
      body:
        body === undefined ? undefined : body instanceof Uint8Array ? (body as unknown as BodyInit) : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON; keep the text so the assertion shows it
    }
    return { status: res.status, body: parsed as any, headers: res.headers };
  };
  return {
    url: sup.url,
    dataDir,
    token,
    sup,
    api,
    putProject: async (id, files, format = 'tar.gz') => api(`/projects/${id}`, await buildArchive(files, format), { method: 'PUT' }),
    close: async (opts) => {
      await sup.close(opts);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The token a server started with `config` requires, read from where it put it: the configured token, else the
 * file `token` of its data directory; null with auth "none".
 */
export async function serverToken(config: Pick<Config, 'auth' | 'token' | 'dataDir'>): Promise<string | null> {
  if (config.auth === 'none') return null;
  return config.token ?? (await readFile(join(config.dataDir, 'token'), 'utf8')).trim();
}

/** Headers that authenticate with `token` (none when it is null), for clients other than `api()`. */
export function authHeaders(token: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Extracts an archive file (with toolhost's own extractor) into a temp folder and reads one file of it; null when absent. */
export async function readFromArchive(file: string, path: string): Promise<string | null> {
  const dir = await tempDir('toolhost-check-');
  try {
    const format = file.endsWith('.zip') ? 'zip' : 'tar.gz';
    await extractArchive({ file, format, dest: join(dir, 'x'), limits: { maxEntries: 100_000, maxTotalBytes: 2 ** 32, maxRatio: 1000 } });
    return await readFile(join(dir, 'x', path), 'utf8').catch(() => null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Limits generous enough for any test project, for reading what a store holds. */
const CHECK_LIMITS: ArchiveLimits = { maxEntries: 100_000, maxTotalBytes: 2 ** 32, maxRatio: 1000 };

/** A {@link LocalStore} on `dir` (a server's `<dataDir>/store`), to look at what it holds behind its back. */
export async function localStore(dir: string): Promise<ProjectStore> {
  const store = new LocalStore(dir);
  await store.init();
  return store;
}

/**
 * Loads project `id` as `store` holds it (its layers when the manifest is the project, else its plain archive)
 * into a temp folder with toolhost's own code, runs `fn` on that folder and removes it. Throws when the store
 * does not hold the project.
 */
export async function withStoredProject<T>(store: ProjectStore, id: string, fn: (root: string) => Promise<T>): Promise<T> {
  const dir = await tempDir('toolhost-stored-');
  try {
    const root = join(dir, 'x');
    const stat = await store.stat(id);
    if (!stat) throw new Error(`the store holds no project "${id}"`);
    if (stat.format === 'layers') {
      const got = await materializeLayers({ store, limits: CHECK_LIMITS, owner: () => null }, id, root, join(dir, 'state'));
      if (!got) throw new Error(`project "${id}" lost its manifest while it was read`);
    } else {
      const loaded = await store.load(id, dir);
      if (loaded.kind === 'stream') {
        await extractArchive({ stream: { body: loaded.stream, size: loaded.size }, format: loaded.format, dest: root, limits: CHECK_LIMITS });
      } else {
        try {
          await extractArchive({ file: loaded.file, format: loaded.format, dest: root, limits: CHECK_LIMITS });
        } finally {
          await loaded.release();
        }
      }
    }
    return await fn(root);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One file of project `id` as `store` holds it (see {@link withStoredProject}); null when the project lacks it. */
export function storedFile(store: ProjectStore, id: string, path: string): Promise<string | null> {
  return withStoredProject(store, id, (root) => readFile(join(root, path), 'utf8').catch(() => null));
}

/** The paths of project `id` as `store` holds it, at any depth, "/"-separated and sorted (folders end in "/"). */
export function storedPaths(store: ProjectStore, id: string): Promise<string[]> {
  return withStoredProject(store, id, async (root) => {
    const found: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
        const path = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          found.push(`${path}/`);
          await walk(path);
        } else found.push(path);
      }
    };
    await walk('');
    return found.sort();
  });
}

/**
 * Stores `files` as project `id` the way another toolhost's upload would (a new base layer, then the manifest,
 * conditional on the one it read): another writer, behind a server's back. Resolves with the manifest's new ETag.
 */
export async function uploadAsAnotherWriter(store: ProjectStore, id: string, files: FileMap): Promise<string> {
  const dir = await tempDir('toolhost-writer-');
  try {
    const root = join(dir, 'root');
    await mkdir(root);
    await writeTree(root, files);
    const task = {
      id,
      root,
      exclude: [],
      scratch: dir,
      statePath: join(dir, 'state'),
      recordAs: 'upload' as const,
      create: false,
      keep: { count: 100, maxAgeHours: 168 },
    };
    return (await uploadLayers({ store, limits: CHECK_LIMITS, owner: () => null }, task)).etag;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
