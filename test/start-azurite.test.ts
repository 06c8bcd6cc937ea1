/**
 * `npm run start:azurite` (scripts/start-azurite.ts) end to end, the way a developer runs it: Azurite and one
 * supervisor (role all, azure queue and store) come up, a project uploads and reads back through the queue, and a
 * SIGTERM to npm takes the whole tree down, Azurite included. If Azurite dies, the supervisor is stopped and the
 * script exits 1.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { authHeaders, buildArchive, tempDir } from './helpers/harness.js';
import { alive, eventually } from './helpers/procs.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A running `npm run start:azurite` and what it has said so far. */
interface Run {
  npm: ChildProcess;
  dataDir: string;
  stderr: () => string;
  /** Resolves with the supervisor's url once it logs "toolhost listening". */
  listening: Promise<string>;
  /** Resolves with npm's exit code. */
  exited: Promise<number | null>;
}

/** Starts the script through npm, in its own process group (so cleanup can reach what is left of it). */
async function startRun(): Promise<Run> {
  const dataDir = await tempDir('toolhost-start-azurite-');
  // Nothing from the environment of whoever runs the tests may steer the supervisor elsewhere.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(TOOLHOST_|AZURE_|PORT$)/.test(k)) env[k] = v;
  const npm = spawn('npm', ['run', 'start:azurite'], {
    cwd: ROOT,
    env: { ...env, PORT: '0', TOOLHOST_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stderr = '';
  npm.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    // stdout is the supervisor's JSON log (and npm's "> toolhost@..." header, which is not JSON).
    createInterface({ input: npm.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === 'toolhost listening') resolve(String(entry.url));
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => reject(new Error(`npm run start:azurite exited with ${code} before listening:\n${stderr}`)));
  });
  return { npm, dataDir, stderr: () => stderr, listening, exited };
}

/** Pids of `root` and all its descendants (by parent pid, so also those in other process groups). */
function processTree(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), pid]);
    } catch {
      // gone
    }
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(parents.get(out[i]!) ?? []));
  return out;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** True if something accepts TCP connections on 127.0.0.1:`port`. */
function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, init);
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

describe('npm run start:azurite (Azurite + one supervisor on the azure queue and store)', function () {
  this.timeout(120_000);
  let run: Run | undefined;
  /** Every pid seen in the run's tree, killed after the test if any is still alive. */
  let seen: number[] = [];

  afterEach(async () => {
    for (const pid of seen) {
      if (!alive(pid)) continue;
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // not a group leader, or gone
        }
      }
    }
    if (run) await rm(run.dataDir, { recursive: true, force: true });
    run = undefined;
    seen = [];
  });

  /** Starts a run, waits for the supervisor, and returns its url and the emulator's blob and queue ports. */
  async function start(): Promise<{ url: string; ports: number[]; azurite: number }> {
    run = await startRun();
    const url = await run.listening;
    seen = processTree(run.npm.pid!);
    // The banner, on stderr, names the connection string and how to run an api and two workers against it.
    const banner = run.stderr();
    const cs = /AZURE_STORAGE_CONNECTION_STRING='([^']+)'/.exec(banner)?.[1];
    expect(cs, banner).to.be.a('string');
    expect(cs).to.match(
      /^DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=[^;]+;BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1;QueueEndpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1;$/,
    );
    for (const role of ['TOOLHOST_ROLE=api', 'TOOLHOST_ROLE=worker TOOLHOST_NODE_ID=w1', 'TOOLHOST_ROLE=worker TOOLHOST_NODE_ID=w2']) {
      expect(banner).to.include(`AZURE_STORAGE_CONNECTION_STRING='${cs}' TOOLHOST_QUEUE=azure TOOLHOST_STORE=azure ${role}`);
    }
    const ports = [...cs!.matchAll(/Endpoint=http:\/\/127\.0\.0\.1:(\d+)\//g)].map((m) => Number(m[1]));
    expect(ports).to.have.length(2);
    for (const port of ports) expect(await accepting(port), `azurite port ${port}`).to.equal(true);
    const azurite = seen.find((pid) => commandLine(pid).includes('node_modules/.bin/azurite'));
    const supervisor = seen.find((pid) => commandLine(pid).includes('supervisor/main.ts'));
    expect(azurite, 'azurite in the process tree').to.be.a('number');
    expect(supervisor, 'supervisor in the process tree').to.be.a('number');
    return { url, ports, azurite: azurite! };
  }

  it('serves a project through the azure queue, and one SIGTERM to npm stops the supervisor and Azurite', async () => {
    const started = Date.now();
    const { url, ports } = await start();
    // The supervisor generated its token into the data dir (the banner says where).
    const token = (await readFile(join(run!.dataDir, 'token'), 'utf8')).trim();
    expect(run!.stderr()).to.include(join(run!.dataDir, 'token'));

    const put = await call(`${url}/projects/demo`, {
      method: 'PUT',
      headers: authHeaders(token),
      body: (await buildArchive({ 'src/hello.txt': 'hello from azurite\n' })) as unknown as BodyInit,
    });
    expect(put.status, JSON.stringify(put.body)).to.equal(201);
    const read = await call(`${url}/file/read`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders(token) },
      body: JSON.stringify({ project_id: 'demo', path: 'src/hello.txt' }),
    });
    expect(read.status, JSON.stringify(read.body)).to.equal(200);
    expect(read.body.content).to.equal('hello from azurite\n');

    // /health tells the role and the queue backend (checked when present: older builds did not report them).
    const health = await call(`${url}/health`, { headers: authHeaders(token) });
    expect(health.status).to.equal(200);
    expect(health.body.status).to.equal('ok');
    if (health.body.role !== undefined) expect(health.body.role).to.equal('all');
    if (health.body.queue?.backend !== undefined) expect(health.body.queue.backend).to.equal('azure');

    // Everything the run started is in `seen` now (the supervisor's own children included).
    seen = [...new Set([...seen, ...processTree(run!.npm.pid!)])];
    const stopAsked = Date.now();
    run!.npm.kill('SIGTERM');
    expect(await run!.exited).to.equal(0);
    const stopMs = Date.now() - stopAsked;
    expect(await eventually(() => seen.every((pid) => !alive(pid)), 10_000), `still alive: ${seen.filter(alive).map(commandLine).join('\n')}`).to.equal(true);
    for (const port of ports) expect(await accepting(port), `azurite port ${port} after stop`).to.equal(false);
    expect(run!.stderr()).to.include('SIGTERM: stopping the supervisor');
    console.log(`      (start to listening to stopped: ${Date.now() - started} ms; stop took ${stopMs} ms)`);
  });

  it('stops the supervisor and exits 1 when Azurite dies', async () => {
    const { ports, azurite } = await start();
    process.kill(azurite, 'SIGKILL');
    expect(await run!.exited).to.equal(1);
    expect(run!.stderr()).to.include('Azurite exited unexpectedly');
    expect(await eventually(() => seen.every((pid) => !alive(pid)), 10_000), `still alive: ${seen.filter(alive).map(commandLine).join('\n')}`).to.equal(true);
    for (const port of ports) expect(await accepting(port)).to.equal(false);
  });
});
