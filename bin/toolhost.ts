#!/usr/bin/env node
/**
 * The `toolhost` command: runs the server (`serve`) or talks to one over the typed client (lib/client). The URL
 * and token come from flags, else the environment, else the token file of the data directory. Exit codes: 0 done,
 * 1 the server or the system refused (its message on stderr), 2 bad usage; `exec` and `tail` exit with the
 * command's own code (124 when it timed out, as timeout(1) does).
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Health, type JobEnd, type ProjectSummary, ToolhostClient, ToolhostClientError } from '../lib/client/index.js';
import { errnoCode } from '../lib/errors.js';

const USAGE = `Usage: toolhost <command> [options]

Server:
  serve [--config FILE]               run the server in this process (Ctrl-C or "toolhost stop" ends it)
  status [--json]                     the server's health: jobs, cache, containment
  reload                              re-read the config file (as SIGHUP does)
  stop [--timeout S]                  SIGTERM to the server of the data dir's toolhost.pid; waits for it to exit
Projects:
  projects [--json]                   list the projects
  push <dir> <project> [--replace] [--exclude PATTERN]...
                                      pack a local folder (tar.gz) and upload it as the project
  pull <project> <dir>                download the project into <dir> (new or empty)
  save <project>                      write the working copy back to the store now
  checkpoint <project> [--label L]    take a checkpoint
  checkpoints <project>               list the checkpoints, newest first
Commands:
  exec <project> [--cwd DIR] [--timeout S] [--env K=V]... -- <command...>
                                      run a command (bash -c, words joined by spaces), stream its output and
                                      exit with its exit code (124 when it timed out); Ctrl-C cancels it
  tail <job>                          follow a job's output to its end and exit with its exit code
  help                                this text

Options (every command):
  --url URL        the server (env TOOLHOST_URL; default http://127.0.0.1:8080)
  --token TOKEN    the bearer token (env TOOLHOST_TOKEN; default: the file <data dir>/token)
  --data-dir DIR   the server's data dir, for its token and pidfile (env TOOLHOST_DATA_DIR; default ./data)
  --json           print the API's JSON answer
`;

/** Every option; {@link COMMANDS} says which a command takes besides the global ones. */
const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  config: { type: 'string', short: 'c' },
  timeout: { type: 'string' },
  replace: { type: 'boolean' },
  exclude: { type: 'string', multiple: true },
  cwd: { type: 'string' },
  env: { type: 'string', multiple: true },
  label: { type: 'string' },
} as const;
const GLOBAL = ['url', 'token', 'data-dir', 'json', 'help'];

type Values = {
  [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K] extends { multiple: true } ? string[] : (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean;
};

/** What a command gets: its arguments, the options, and the client (built on first use: `serve` needs none). */
interface Ctx {
  args: string[];
  /** The words after `--`. */
  rest: string[] | null;
  opts: Values;
  dataDir: string;
  client(): Promise<ToolhostClient>;
}

/** Bad usage: told with the usage text, exit 2. */
class UsageError extends Error {}

/** A command: its positional arguments, its own options, and what it does (resolving with the exit code). */
interface Command {
  args: string[];
  options?: (keyof typeof OPTIONS)[];
  run(c: Ctx): Promise<number | undefined>;
}

const COMMANDS: Record<string, Command> = {
  help: {
    args: [],
    run: async () => {
      process.stdout.write(USAGE);
      return 0;
    },
  },
  serve: { args: [], options: ['config'], run: serve },
  status: { args: [], run: status },
  reload: {
    args: [],
    run: async (c) => {
      const r = await (await c.client()).reload();
      if (c.opts.json) return json(r);
      out(`reloaded ${r.file ?? '(no config file: defaults and environment)'}`);
      out(`  applied: ${r.applied.length > 0 ? r.applied.join(', ') : 'nothing changed'}`);
      if (r.restart_required.length > 0) out(`  need a restart: ${r.restart_required.join(', ')}`);
      return 0;
    },
  },
  stop: { args: [], options: ['timeout'], run: stop },
  projects: { args: [], run: projects },
  push: {
    args: ['dir', 'project'],
    options: ['replace', 'exclude'],
    run: async (c) => {
      const [dir, id] = c.args as [string, string];
      const st = await stat(dir).catch(() => null);
      if (!st?.isDirectory()) throw new ToolhostClientError('bad_request', 0, `${dir} is not a folder; push a folder of files`);
      const r = await (await c.client()).projects.push(id, dir, { replace: c.opts.replace ?? false, exclude: c.opts.exclude ?? [] });
      for (const s of r.packed.skipped) process.stderr.write(`toolhost: left out ${s.name}: ${s.reason}\n`);
      if (c.opts.json) return json(r.info);
      out(
        `${r.created ? 'created' : 'replaced'} ${id} from ${dir}: ${r.packed.entries} entries, ${bytes(r.packed.bytes)} (archive ${bytes(r.packed.archiveBytes)})`,
      );
      return 0;
    },
  },
  pull: {
    args: ['project', 'dir'],
    run: async (c) => {
      const [id, dir] = c.args as [string, string];
      const r = await (await c.client()).projects.pull(id, dir);
      out(`pulled ${id} into ${dir} (archive ${bytes(r.archiveBytes)})`);
      return 0;
    },
  },
  save: {
    args: ['project'],
    run: async (c) => {
      const r = await (await c.client()).projects.save(c.args[0]!);
      if (c.opts.json) return json(r);
      for (const s of r.skipped) process.stderr.write(`toolhost: left out ${s.name}: ${s.reason}\n`);
      out(r.saved ? `saved ${r.project_id} as checkpoint ${r.checkpoint_id} (${bytes(r.bytes_uploaded)} uploaded)` : `${r.project_id}: nothing to save`);
      return 0;
    },
  },
  checkpoint: {
    args: ['project'],
    options: ['label'],
    run: async (c) => {
      const r = await (await c.client()).checkpoints.create(c.args[0]!, c.opts.label === undefined ? {} : { label: c.opts.label });
      if (c.opts.json) return json(r);
      out(r.checkpoint_id);
      return 0;
    },
  },
  checkpoints: {
    args: ['project'],
    run: async (c) => {
      const list = await (await c.client()).checkpoints.list(c.args[0]!);
      if (c.opts.json) return json(list);
      for (const p of list) out(`${p.checkpoint_id}  ${p.created_at}  ${p.kind}${p.label === null ? '' : `  "${p.label}"`}`);
      return 0;
    },
  },
  exec: { args: ['project'], options: ['cwd', 'timeout', 'env'], run: exec },
  tail: {
    args: ['job'],
    run: async (c) => {
      const client = await c.client();
      const end = await client.jobs.follow(c.args[0]!, { onOutput: (s, text) => process[s].write(text) });
      return endCode(c.args[0]!, end, false);
    },
  },
};

/** Runs the command line; resolves with the exit code (undefined: `serve`, which keeps the process). */
async function main(argv: string[]): Promise<number | undefined> {
  const dash = argv.indexOf('--');
  const rest = dash < 0 ? null : argv.slice(dash + 1);
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: dash < 0 ? argv : argv.slice(0, dash), options: OPTIONS, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [name, ...args] = parsed.positionals;
  const opts = parsed.values;
  if (opts.help) return COMMANDS.help!.run({} as Ctx);
  if (name === undefined) throw new UsageError('no command given');
  const cmd = COMMANDS[name];
  if (!cmd) throw new UsageError(`unknown command "${name}"`);
  const allowed = new Set<string>([...GLOBAL, ...(cmd.options ?? [])]);
  for (const o of Object.keys(opts)) if (!allowed.has(o)) throw new UsageError(`${name} takes no --${o}`);
  if (args.length !== cmd.args.length) {
    throw new UsageError(`${name} takes ${cmd.args.length === 0 ? 'no arguments' : cmd.args.map((a) => `<${a}>`).join(' ')}; got ${args.length}`);
  }
  if (rest !== null && name !== 'exec') throw new UsageError(`${name} takes nothing after "--"`);
  const dataDir = resolve(opts['data-dir'] ?? (process.env.TOOLHOST_DATA_DIR || './data'));
  let client: ToolhostClient | undefined;
  const makeClient = async (): Promise<ToolhostClient> => {
    const url = opts.url ?? (process.env.TOOLHOST_URL || 'http://127.0.0.1:8080');
    const token = opts.token ?? (process.env.TOOLHOST_TOKEN || (await tokenFile(dataDir)));
    try {
      client ??= new ToolhostClient({ url, token });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    tokenless = !token;
    return client;
  };
  return cmd.run({ args, rest, opts, dataDir, client: makeClient });
}

/** No token was found: an `unauthorized` answer then says where one comes from. */
let tokenless = false;

/** The token in `<dataDir>/token`, if there is one to read. */
async function tokenFile(dataDir: string): Promise<string | null> {
  try {
    return (await readFile(join(dataDir, 'token'), 'utf8')).trim() || null;
  } catch {
    return null;
  }
}

async function serve(c: Ctx): Promise<undefined> {
  if (c.opts['data-dir'] !== undefined) process.env.TOOLHOST_DATA_DIR = c.dataDir;
  // The server's entry reads its own flags from process.argv: it gets only those meant for it.
  process.argv = [process.argv[0]!, process.argv[1]!, ...(c.opts.config === undefined ? [] : ['--config', c.opts.config])];
  await import('../supervisor/main.js');
  return undefined;
}

async function status(c: Ctx): Promise<number> {
  const client = await c.client();
  const h = await client.health();
  if (c.opts.json) return json(h);
  out(`toolhost at ${client.url}: ${h.status}${h.reason ? ` (${h.reason})` : ''}`);
  if (h.uptime_s === undefined) {
    out('  (details need the token: --token, TOOLHOST_TOKEN or --data-dir)');
    return 0;
  }
  out(`  node ${h.node} (role ${h.role}), up ${duration(h.uptime_s)}`);
  if (h.queue) out(`  queue ${h.queue.backend}: ${h.queue.depth} waiting`);
  if (h.jobs) out(`  jobs running: ${h.jobs.running}${byType(h.jobs.by_type)}`);
  if (h.pool) out(`  pool: ${h.pool.busy}/${h.pool.threads} threads busy${lanes(h.pool.lanes)}`);
  if (h.cache) out(`  cache: ${h.cache.projects} projects (${h.cache.dirty} with unsaved changes), ${bytes(h.cache.bytes)}`);
  if (h.sessions) out(`  shell sessions: ${h.sessions.alive} (${h.sessions.running} running a command)`);
  for (const f of h.writeback?.failing ?? []) out(`  write-back failing: ${f.project_id}${failure(f)}`);
  const ct = h.containment;
  if (ct) {
    out(`  containment: sandbox ${ct.sandbox}, user ${ct.user}, network ${ct.network}, processes by ${ct.process_limit}`);
    for (const w of ct.warnings) out(`  warning: ${w}`);
  }
  return 0;
}

async function projects(c: Ctx): Promise<number> {
  const list = await (await c.client()).projects.list();
  if (c.opts.json) return json(list);
  if (list.length === 0) {
    out('no projects; push a folder with: toolhost push <dir> <project>');
    return 0;
  }
  const rows = [
    ['PROJECT', 'STATE', 'STORED', 'SAVED'],
    ...list.map((p) => [p.project_id, state(p), p.archive_bytes === null ? '-' : bytes(p.archive_bytes), p.modified_at ?? '-']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) out(r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
  return 0;
}

async function exec(c: Ctx): Promise<number> {
  if (!c.rest || c.rest.length === 0) throw new UsageError('exec needs the command after "--": toolhost exec <project> -- <command...>');
  const env: Record<string, string> = {};
  for (const pair of c.opts.env ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env takes NAME=value; got "${pair}"`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const timeout = c.opts.timeout === undefined ? undefined : seconds(c.opts.timeout, '--timeout');
  const client = await c.client();
  let jobId: string | undefined;
  let cancelled = false;
  const stop = new AbortController();
  // Ctrl-C cancels the command and still shows how it ended; a second one leaves without waiting.
  const onInt = (): void => {
    if (cancelled || !jobId) {
      stop.abort();
      return;
    }
    cancelled = true;
    process.stderr.write(`\ntoolhost: cancelling job ${jobId} (Ctrl-C again to stop waiting)\n`);
    client.jobs.cancel(jobId).catch((err: unknown) => process.stderr.write(`toolhost: the cancel failed: ${(err as Error).message}\n`));
  };
  process.on('SIGINT', onInt);
  try {
    const end = await client.run(
      {
        project_id: c.args[0]!,
        command: c.rest.join(' '),
        ...(c.opts.cwd === undefined ? {} : { cwd: c.opts.cwd }),
        ...(Object.keys(env).length > 0 ? { env } : {}),
        ...(timeout === undefined ? {} : { timeout_s: timeout }),
      },
      { signal: stop.signal, onStart: (id) => (jobId = id), onOutput: (s, text) => process[s].write(text) },
    );
    return endCode(end.job_id, end, cancelled);
  } catch (err) {
    if (stop.signal.aborted) return 130;
    throw err;
  } finally {
    process.off('SIGINT', onInt);
  }
}

/** The exit code for how a job ended, saying on stderr why when the command itself did not say it. */
function endCode(jobId: string, end: JobEnd, cancelledHere: boolean): number {
  const tell = (what: string): void => void process.stderr.write(`toolhost: ${what}\n`);
  switch (end.status) {
    case 'completed':
      return end.exit_code ?? 1;
    case 'timed_out':
      tell(`the command timed out after ${duration((end.duration_ms ?? 0) / 1000)} and was killed (job ${jobId})`);
      return 124;
    case 'cancelled':
      tell(`job ${jobId} was cancelled`);
      return cancelledHere ? 130 : (end.exit_code ?? 1);
    case 'interrupted':
      tell(`job ${jobId} was interrupted: the server stopped while it ran`);
      return 1;
    default:
      tell(`job ${jobId} ${end.status}${end.error ? `: ${end.error.message}` : ''}`);
      return 1;
  }
}

async function stop(c: Ctx): Promise<number> {
  const file = join(c.dataDir, 'toolhost.pid');
  const waitS = c.opts.timeout === undefined ? 60 : seconds(c.opts.timeout, '--timeout');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
    throw new ToolhostClientError(
      'not_found',
      0,
      `no pidfile ${file}: no server is running with this data dir (start one with "toolhost serve"), or it uses another one (pass --data-dir or set TOOLHOST_DATA_DIR)`,
    );
  }
  const pid = Number(/\d+/.exec(text)?.[0]);
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new ToolhostClientError('bad_response', 0, `${file} holds no pid; remove it if no server runs`);
  if (!alive(pid)) throw new ToolhostClientError('not_found', 0, `the server of ${file} (pid ${pid}) is not running; remove the stale pidfile`);
  // The server keeps its pidfile open: a pid that does not is not it (the pid was reused), and gets no signal.
  if ((await holdsOpen(pid, file)) === false) {
    throw new ToolhostClientError(
      'not_found',
      0,
      `pid ${pid} of ${file} is not the toolhost server that wrote it (it has not the file open); remove the stale pidfile`,
    );
  }
  process.kill(pid, 'SIGTERM');
  process.stderr.write(`toolhost: sent SIGTERM to ${pid}; waiting for it to drain and exit\n`);
  const until = Date.now() + waitS * 1000;
  while (alive(pid)) {
    if (Date.now() >= until) {
      throw new ToolhostClientError(
        'job_deadline',
        0,
        `pid ${pid} is still stopping after ${waitS} s; run "toolhost stop" again to force it (a second SIGTERM kills running work)`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  out(`stopped ${pid}`);
  return 0;
}

/** True while `pid` runs; a zombie counts as gone. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  return !/^\d+ \(.*\) [ZX]/s.test(readStat(pid));
}

/** Whether process `pid` has `file` open; undefined when its fds cannot be read (another user's process). */
async function holdsOpen(pid: number, file: string): Promise<boolean | undefined> {
  const st = await stat(file);
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return undefined;
  }
  for (const fd of fds) {
    const f = await stat(`/proc/${pid}/fd/${fd}`).catch(() => null);
    if (f && f.ino === st.ino && f.dev === st.dev) return true;
  }
  return false;
}

function readStat(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return '';
  }
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function json(v: unknown): number {
  out(JSON.stringify(v, null, 2));
  return 0;
}

function seconds(text: string, flag: string): number {
  const n = Number(text);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${flag} takes a number of seconds above 0; got "${text}"`);
  return n;
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function duration(s: number): string {
  if (s < 60) return `${Math.round(s * 10) / 10} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

function state(p: ProjectSummary): string {
  return p.cached ? (p.dirty ? 'cached, unsaved' : 'cached') : 'stored';
}

function byType(t: Record<string, number>): string {
  const parts = Object.entries(t).map(([k, n]) => `${k} ${n}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

function lanes(l: NonNullable<Health['pool']>['lanes']): string {
  const parts = Object.entries(l).map(([k, v]) => `${k} ${v.busy}/${v.threads}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

function failure(f: Record<string, unknown>): string {
  const e = f.error as { code?: string; message?: string } | undefined;
  return e?.message ? `: ${e.code ? `${e.code}: ` : ''}${e.message}` : '';
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`toolhost: ${err.message}\n\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    let message = err instanceof Error ? err.message : String(err);
    if (err instanceof ToolhostClientError && err.code === 'unauthorized' && tokenless) {
      message += " (no token was found: pass --token, set TOOLHOST_TOKEN, or point --data-dir at the server's data dir)";
    }
    process.stderr.write(`toolhost: ${message}\n`);
    process.exitCode = 1;
  },
);
