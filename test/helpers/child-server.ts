/** Runs the real entry point (supervisor/main.ts) as a child process, the way an operator runs `npm start`. */
import { type ChildProcess, spawn } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { serverToken, tempDir } from './harness.js';

const MAIN = fileURLToPath(new URL('../../supervisor/main.ts', import.meta.url));

/** A supervisor in its own process. */
export interface ChildServer {
  url: string;
  dataDir: string;
  /** The bearer token it requires, read from where it put it (null with auth "none"). */
  token: string | null;
  child: ChildProcess;
  /** JSON log lines seen so far. */
  logs: Record<string, unknown>[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts `node --import tsx supervisor/main.ts --config <file>` with `config` and waits for it to listen. */
export async function startChild(config: Record<string, unknown>, env: Record<string, string> = {}): Promise<ChildServer> {
  const dataDir = await tempDir('toolhost-child-');
  const file = join(dataDir, 'config.json');
  const effective = { port: 0, dataDir: join(dataDir, 'data'), ...config };
  await writeFile(file, JSON.stringify(effective));
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--config', file], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'toolhost listening') resolve(String(entry.url));
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`supervisor exited with ${code} before listening: ${stderr}`)));
  });
  let url: string;
  let token: string | null;
  try {
    url = await listening;
    const auth = (effective as { auth?: 'token' | 'none' }).auth ?? 'token';
    const configured = (effective as { token?: string | null }).token ?? env.TOOLHOST_TOKEN ?? null;
    token = await serverToken({ auth, token: configured, dataDir: String(effective.dataDir) });
  } catch (err) {
    if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  return { url, dataDir, token, child, logs, exited };
}
