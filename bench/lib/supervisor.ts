/**
 * Starts the real supervisor as a child process from the compiled build (`node dist/supervisor/main.js`, what
 * `npm start` runs), the way an operator runs it, so its memory can be read from /proc apart from the bench's own. It listens on 127.0.0.1 port 0; the URL is
 * read from its "toolhost listening" log line. Its logs (info level, as in production) go to a file in the
 * scenario's temp folder rather than a pipe, so the bench's event loop does not handle them while measuring.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exited, stopChild, track } from './children.js';
import { memoryOf, resetPeak } from './rss.js';

/** The repository root (the supervisor runs from its sources there). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Settings every bench supervisor gets before the scenario's own: a short drain on stop. */
const BENCH_CONFIG = { shutdown: { graceS: 2 } };

/** A supervisor running as a child process. */
export interface SupervisorProcess {
  url: string;
  /** The bearer token it requires, read from <dataDir>/token where it generated it. */
  token: string;
  pid: number;
  dataDir: string;
  logFile: string;
  /** Resident and peak resident bytes now. */
  memory(): { rss: number; peak: number };
  /** Resets the peak to the current RSS. */
  resetPeak(): void;
  /** SIGTERM (graceful drain), SIGKILL if it does not exit in time. */
  stop(): Promise<void>;
}

/** What to start. */
export interface LaunchOptions {
  /** Folder for the config file and the log. */
  tmp: string;
  /** Data dir; must exist if given (a scenario may pre-seed its store). Default: a fresh folder under tmp. */
  dataDir?: string;
  /** Config merged over config/default.json, e.g. { commands: { maxConcurrent: 4 } }. */
  config?: Record<string, unknown>;
  /** Name used for the config and log files. */
  name?: string;
  /** The checkout whose build runs (default this one): another commit's worktree, to measure against it. */
  root?: string;
}

/** Starts a supervisor and waits until it listens. */
export async function launchSupervisor(o: LaunchOptions): Promise<SupervisorProcess> {
  const name = o.name ?? 'supervisor';
  const dataDir = o.dataDir ?? join(o.tmp, `${name}-data`);
  await mkdir(dataDir, { recursive: true });
  const configFile = join(o.tmp, `${name}.config.json`);
  await writeFile(configFile, JSON.stringify({ ...BENCH_CONFIG, ...o.config }));
  const logFile = join(o.tmp, `${name}.log`);
  const fd = openSync(logFile, 'w');
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', TOOLHOST_DATA_DIR: dataDir, TOOLHOST_CONFIG: configFile };
  // The supervisor generates its token into the data dir, where the bench reads it, as a client on the host would.
  delete env.TOOLHOST_TOKEN;
  let child: ChildProcess;
  try {
    child = track(spawn(process.execPath, ['dist/supervisor/main.js'], { cwd: o.root ?? REPO_ROOT, env, stdio: ['ignore', fd, fd] }));
  } finally {
    closeSync(fd);
  }
  const url = await waitForUrl(child, logFile);
  const pid = child.pid!;
  // A build from before tokens were generated (a baseline commit) runs without auth: it writes no token file.
  const tokenFile = join(dataDir, 'token');
  const token = existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : '';
  return {
    url,
    token,
    pid,
    dataDir,
    logFile,
    memory: () => memoryOf(pid),
    resetPeak: () => resetPeak(pid),
    stop: async () => {
      await stopChild(child);
    },
  };
}

/** Polls the log for the listening line; fails with the log's tail if the process exits or takes too long. */
async function waitForUrl(child: ChildProcess, logFile: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  let gone = false;
  void exited(child).then(() => (gone = true));
  for (;;) {
    const text = readFileSync(logFile, 'utf8');
    for (const line of text.split('\n')) {
      if (!line.includes('toolhost listening')) continue;
      const url = (JSON.parse(line) as { url?: string }).url;
      if (url) return url;
    }
    if (gone || Date.now() > deadline) {
      const why = gone ? `it exited with ${child.exitCode}` : 'no "toolhost listening" line within 30 s';
      if (!gone) await stopChild(child, 1_000);
      throw new Error(`supervisor did not start (${why}); log tail:\n${text.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
