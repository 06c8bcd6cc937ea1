/**
 * The baseline: a bare node:http server in its own process (as toolhost is), doing the same raw work per request
 * that a toolhost request wraps, and nothing else: no framework, no validation, no queue, no pool.
 *   POST /noop   parse the JSON body, answer {"ok":true}          (a keep-alive HTTP round trip)
 *   POST /spawn  spawn('bash', ['-c', command]) and wait for it     (raw spawn + round trip)
 *   POST /read   fs.promises.readFile(path)                        (raw read + round trip)
 * Run as a script it serves on 127.0.0.1 port 0 and prints {"url": ...} on stdout; imported, it gives the launcher.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stopChild, track } from './children.js';
import { memoryOf } from './rss.js';

/** A running baseline server. */
export interface BareServer {
  url: string;
  pid: number;
  rss(): number;
  stop(): Promise<void>;
}

/** Starts the baseline server as a child process. */
export async function launchBareServer(): Promise<BareServer> {
  const child: ChildProcess = track(spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code} before listening`)));
  });
  lines.close();
  child.stdout!.resume();
  const pid = child.pid!;
  return { url, pid, rss: () => memoryOf(pid).rss, stop: async () => void (await stopChild(child)) };
}

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return parts.length === 0 ? {} : (JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>);
}

function runBash(command: string): Promise<{ exit_code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command]);
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => resolve({ exit_code: code, stdout: Buffer.concat(out).toString('utf8') }));
  });
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  let answer: unknown;
  if (req.url === '/noop') answer = { ok: true };
  else if (req.url === '/spawn') answer = await runBash(String(body.command));
  else if (req.url === '/read') answer = { content: await readFile(String(body.path), 'utf8') };
  else {
    res.writeHead(404).end();
    return;
  }
  const text = JSON.stringify(answer);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function serve(): void {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
  });
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) serve();
