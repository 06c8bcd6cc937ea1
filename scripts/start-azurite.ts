/**
 * `npm run start:azurite [-- --no-supervisor]`: toolhost on Azure Queue and Blob Storage without an Azure account.
 *
 * Starts Azurite (the Azure Storage emulator, the `azurite` devDependency) on free ports of 127.0.0.1 with its state
 * in memory, prints its connection string and the commands that run an `api` and two `worker` processes against it
 * from other terminals, then runs one supervisor in role `all` on the azure queue and store (the real entry point,
 * supervisor/main.ts, as a child process whose output shows here).
 *
 * SIGINT/SIGTERM (Ctrl-C) are forwarded to the supervisor: the first drains, a second forces, a third kills. Once it
 * has exited Azurite is stopped and this exits with the supervisor's code. If Azurite dies first, the supervisor is
 * stopped and this exits 1. With --no-supervisor only Azurite runs, until a signal stops it.
 *
 * Both children run in their own process groups, so a Ctrl-C in the terminal reaches only this process: the
 * supervisor gets the signal once (not twice, which would force it) and Azurite stays up while the supervisor
 * drains and saves its projects to it. Only a SIGKILL of this process can leave them behind.
 *
 * package.json runs this as `exec node --import tsx scripts/start-azurite.ts`. `exec` makes this process npm's own
 * child: npm passes a SIGTERM only to its child, and a `sh -c` in between dies of it without passing it on.
 * `node --import tsx` rather than the tsx CLI because the CLI's signal relay can SIGKILL this process when one
 * Ctrl-C reaches it twice (from the terminal and from npm), which would leave Azurite running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AZURITE_ARGS } from './azurite-args.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The package has no importable entry point; its bin is a small node script. */
const AZURITE_BIN = join(ROOT, 'node_modules', '.bin', 'azurite');
const MAIN = join(ROOT, 'supervisor', 'main.ts');
/** Azurite's fixed development account (public, documented by Microsoft; not a secret). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
/** Azurite 3.35 prints one such line per service once it listens (--silent only mutes its access log). */
const LISTENING = /Azurite (Blob|Queue|Table) service is successfully listening at (http:\/\/\S+)/;
const AZURITE_START_TIMEOUT_MS = 30_000;
const AZURITE_STOP_GRACE_MS = 5_000;
/** When Azurite dies under a running supervisor: SIGTERM (drain), then a second SIGTERM (force), then SIGKILL. */
const ORPHAN_FORCE_MS = 10_000;
const ORPHAN_KILL_MS = 20_000;
/** Signals closer than this to the previous one are copies of it (see onSignal). */
const SIGNAL_ECHO_MS = 1_000;

/** Children still running; SIGKILLed (whole group) if this process exits without having stopped them. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) signalGroup(child, 'SIGKILL');
});

const say = (text: string): boolean => process.stderr.write(`start-azurite: ${text}\n`);

interface Azurite {
  connectionString: string;
  /** Resolves when the emulator's process has exited, for whatever reason. */
  exited: Promise<void>;
  /** Stops it (SIGTERM, SIGKILL after a grace period), waits for it and removes its temp folder. */
  stop(): Promise<void>;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { 'no-supervisor': { type: 'boolean', default: false } }, strict: true });
  const withSupervisor = !values['no-supervisor'];

  // Signals count from the start, so a Ctrl-C while Azurite starts still ends everything.
  let signals = 0;
  let lastSignalAt = 0;
  let supervisor: ChildProcess | undefined;
  let onStopRequest!: () => void;
  const stopRequested = new Promise<void>((resolve) => (onStopRequest = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    // One Ctrl-C arrives twice: the terminal signals the whole foreground group, and npm forwards it again.
    // Copies within SIGNAL_ECHO_MS of the last one are the same press, not a second one.
    const now = Date.now();
    const echo = now - lastSignalAt < SIGNAL_ECHO_MS;
    lastSignalAt = now;
    if (echo) return;
    signals++;
    onStopRequest();
    const action = signals === 1 ? 'stopping' : signals === 2 ? 'forcing' : 'killing';
    say(`${signal}: ${action} ${supervisor ? 'the supervisor' : 'Azurite'}`);
    // SIGHUP (the terminal went away) means reload to the supervisor, so it is passed on as SIGTERM.
    if (supervisor) signalGroup(supervisor, signals > 2 ? 'SIGKILL' : signal === 'SIGHUP' ? 'SIGTERM' : signal);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

  const azurite = await startAzurite();
  const dataDir = process.env.TOOLHOST_DATA_DIR || './data-azurite';
  banner(azurite.connectionString, withSupervisor ? dataDir : undefined);

  if (!withSupervisor || signals > 0) {
    const died = await Promise.race([stopRequested.then(() => false), azurite.exited.then(() => true)]);
    await azurite.stop();
    if (died) say('Azurite exited unexpectedly');
    return died ? 1 : 0;
  }

  supervisor = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), MAIN], {
    env: {
      ...process.env,
      TOOLHOST_QUEUE: 'azure',
      TOOLHOST_STORE: 'azure',
      TOOLHOST_ROLE: 'all',
      AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
      TOOLHOST_DATA_DIR: dataDir,
    },
    // stdout passes through untouched: its JSON log lines (the "toolhost listening" one has the url) are the
    // supervisor's own.
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  children.add(supervisor);
  const supervisorExit = new Promise<number>((resolve) => {
    supervisor!.once('error', (err) => {
      children.delete(supervisor!);
      say(`could not start the supervisor: ${err.message}`);
      resolve(1);
    });
    supervisor!.once('exit', (code, signal) => {
      children.delete(supervisor!);
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });

  const first = await Promise.race([supervisorExit.then((code) => ({ code })), azurite.exited.then(() => undefined)]);
  if (first) {
    await azurite.stop();
    return first.code;
  }
  say('Azurite exited unexpectedly; stopping the supervisor (it cannot reach its queue and store any more)');
  signalGroup(supervisor, 'SIGTERM');
  const force = setTimeout(() => signalGroup(supervisor!, 'SIGTERM'), ORPHAN_FORCE_MS);
  const kill = setTimeout(() => signalGroup(supervisor!, 'SIGKILL'), ORPHAN_KILL_MS);
  const code = await supervisorExit;
  clearTimeout(force);
  clearTimeout(kill);
  await azurite.stop();
  say(`the supervisor exited with ${code}; exiting 1 because Azurite died`);
  return 1;
}

/** Starts Azurite on free ports of 127.0.0.1 and waits until all three services listen. */
async function startAzurite(): Promise<Azurite> {
  // Azurite refuses --location with --inMemoryPersistence, so a temp folder is its working directory instead:
  // anything it still writes (debug or extent files) lands there and goes with it.
  const home = await mkdtemp(join(tmpdir(), 'toolhost-azurite-'));
  const child = spawn(AZURITE_BIN, [...AZURITE_ARGS], { cwd: home, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      children.delete(child);
      say(`could not run ${AZURITE_BIN} (did you run npm ci?): ${err.message}`);
      resolve();
    });
  });

  // Its output is read for the "listening" lines. What it prints before then is start-up chatter, kept to be shown
  // only if it fails to start; anything after is shown on stderr. The pipes are drained for as long as it runs, or
  // a full pipe would block it.
  const urls: Record<string, string> = {};
  let startupOutput = '';
  let started = false;
  let allListening!: () => void;
  const listening = new Promise<void>((resolve) => (allListening = resolve));
  for (const stream of [child.stdout!, child.stderr!]) {
    let pending = '';
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = LISTENING.exec(line);
        if (m) urls[m[1]!] = m[2]!.replace(/\/$/, '');
        else if (!started) startupOutput += `${line}\n`;
        else if (line.trim()) process.stderr.write(`[azurite] ${line}\n`);
      }
      if (!started && urls.Blob && urls.Queue && urls.Table) {
        started = true;
        allListening();
      }
    });
  }

  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    listening.then(() => 'ok' as const),
    exited.then(() => 'exited' as const),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), AZURITE_START_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);

  // Also called once it has exited on its own: it still removes the folder.
  const stop = async (): Promise<void> => {
    if (children.has(child)) {
      signalGroup(child, 'SIGTERM');
      const kill = setTimeout(() => signalGroup(child, 'SIGKILL'), AZURITE_STOP_GRACE_MS);
      await exited;
      clearTimeout(kill);
    }
    await rm(home, { recursive: true, force: true });
  };
  if (outcome !== 'ok') {
    await stop();
    const why = outcome === 'exited' ? 'Azurite exited before it listened' : `Azurite did not listen within ${AZURITE_START_TIMEOUT_MS} ms`;
    throw new Error(`${why}; it printed:\n${startupOutput}`);
  }

  const connectionString =
    `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};` +
    `BlobEndpoint=${urls.Blob}/${ACCOUNT};QueueEndpoint=${urls.Queue}/${ACCOUNT};`;
  return { connectionString, exited, stop };
}

/** Tells the connection string and how to run more processes against the same emulator (stderr: stdout is the supervisor's). */
function banner(connectionString: string, dataDir: string | undefined): void {
  const env = `AZURE_STORAGE_CONNECTION_STRING='${connectionString}' TOOLHOST_QUEUE=azure TOOLHOST_STORE=azure`;
  const command = (role: string, nodeId: string, port: number) =>
    `  ${env} TOOLHOST_ROLE=${role} TOOLHOST_NODE_ID=${nodeId} PORT=${port} TOOLHOST_DATA_DIR=./data-${nodeId} npm start`;
  const here = dataDir
    ? `Starting a supervisor (role all) here on port ${process.env.PORT || "8080 (or your config's)"}, data in ${dataDir}.\n` +
      `Its bearer token is in ${join(dataDir, 'token')} (created on its first start): send "Authorization: Bearer <token>".\n` +
      'It takes jobs from the queue too; run with --no-supervisor for an api and workers only.'
    : 'No supervisor started here (--no-supervisor).';
  // Azurite starts empty every time, but a data dir keeps its working copies: the supervisor would still serve a
  // project cached by an earlier run although the store no longer has it.
  const stale =
    dataDir && existsSync(dataDir) && readdirSync(dataDir).length > 0
      ? `Note: ${dataDir} holds working copies from an earlier run, which Azurite no longer has; remove it for a clean start.\n`
      : '';
  process.stderr.write(
    [
      '',
      'Azurite is running (in memory: its queues and blobs are gone once it stops).',
      `AZURE_STORAGE_CONNECTION_STRING='${connectionString}'`,
      '',
      stale + here,
      'More processes on the same queue and store, each from its own terminal in this folder (upload projects',
      "through a worker: the api role refuses PUT /projects; each process's token is the file token in its data dir):",
      command('api', 'api1', 8090),
      command('worker', 'w1', 8091),
      command('worker', 'w2', 8092),
      'Ctrl-C here stops everything started here; a second Ctrl-C (a second or more later) forces the supervisor.',
      '',
      '',
    ].join('\n'),
  );
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone (or never started)
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
