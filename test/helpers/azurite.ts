/**
 * A real Azurite (the Azure Storage emulator) for tests: its own process on free ports, state in memory, gone
 * after `stop()`. Spawned through node_modules/.bin/azurite because the package has no importable entry point.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { AzureBlobStore } from '../../lib/store/azure-store.js';
import type { ProjectStore } from '../../lib/store/project-store.js';
import { AZURITE_ARGS } from '../../scripts/azurite-args.js';
import { readFromArchive, tempDir } from './harness.js';

/** A running Azurite. */
export interface Azurite {
  /** Blob endpoint of the devstoreaccount1 account, e.g. `http://127.0.0.1:41234/devstoreaccount1`. */
  blobUrl: string;
  /** Queue endpoint of the same account. */
  queueUrl: string;
  /** Connection string of the account with every endpoint. */
  connectionString: string;
  /** Stops the emulator (its whole process group), waits for it to exit and removes its folder. */
  stop(): Promise<void>;
}

const BIN = fileURLToPath(new URL('../../node_modules/.bin/azurite', import.meta.url));
/** The emulator's fixed, public development account (documented by Microsoft; not a secret). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
/** Azurite 3.35 prints one such line per service once it listens (even with --silent, which only mutes access logs). */
const LISTENING = /Azurite (Blob|Queue|Table) service is successfully listening at (http:\/\/\S+)/;
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

/** Emulators still running, killed if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

/** Starts an Azurite with blob, queue and table services on free ports of 127.0.0.1. */
export async function startAzurite(): Promise<Azurite> {
  // Azurite refuses --location together with --inMemoryPersistence, so the temp folder is its working directory
  // instead: anything it might still write lands there and is removed with it.
  const home = await mkdtemp(join(tmpdir(), 'toolhost-azurite-'));
  // Its own process group, so stop() reaches anything it spawns.
  const child = spawn(BIN, [...AZURITE_ARGS], { cwd: home, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );

  let urls: Record<string, string>;
  try {
    urls = await listeningUrls(child);
  } catch (err) {
    killGroup(child, 'SIGKILL');
    await exited;
    await rm(home, { recursive: true, force: true });
    throw err;
  }
  const blobUrl = `${urls.Blob}/${ACCOUNT}`;
  const queueUrl = `${urls.Queue}/${ACCOUNT}`;
  const connectionString =
    `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};` +
    `BlobEndpoint=${blobUrl};QueueEndpoint=${queueUrl};TableEndpoint=${urls.Table}/${ACCOUNT};`;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_GRACE_MS);
        await exited;
        clearTimeout(timer);
      }
      await rm(home, { recursive: true, force: true });
    })());
  return { blobUrl, queueUrl, connectionString, stop };
}

/** A client of container `name` of the emulator, to look at or plant blobs behind a store's back. */
export function containerClient(azurite: Azurite, name: string): ContainerClient {
  return BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name);
}

/**
 * A store client of container `name` of the emulator (toolhost's own AzureBlobStore), to read projects as stored
 * (with `storedFile` of harness.ts) or to write as another toolhost would.
 */
export async function azureStore(azurite: Azurite, name: string): Promise<ProjectStore> {
  const store = new AzureBlobStore({ connectionString: azurite.connectionString, container: name });
  await store.init();
  return store;
}

/** A container name no other test uses (3-63 lowercase letters, digits, hyphens). */
export function uniqueContainerName(prefix = 'test'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** Reads the emulator's stdout until all three services say where they listen. */
function listeningUrls(child: ChildProcess): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const urls: Record<string, string> = {};
    let output = '';
    let pending = '';
    const timer = setTimeout(() => fail(new Error(`azurite did not start within ${START_TIMEOUT_MS} ms; it printed:\n${output}`)), START_TIMEOUT_MS);
    const onExit = (code: number | null, signal: string | null) =>
      fail(new Error(`azurite exited (${signal ?? code}) before listening; it printed:\n${output}`));
    function fail(err: Error): void {
      clearTimeout(timer);
      child.off('exit', onExit);
      reject(err);
    }
    child.once('exit', onExit);
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    // Listeners stay attached after start-up: a pipe nobody drains would eventually block the emulator.
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = LISTENING.exec(line);
        if (m) urls[m[1]!] = m[2]!.replace(/\/$/, '');
      }
      if (urls.Blob && urls.Queue && urls.Table) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(urls);
      }
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

/**
 * Downloads a blob holding one plain archive (a conflict copy, an archive planted by hand) and reads one file out
 * of it (null when the archive lacks it). For a project as stored (layers or archive), use `storedFile`.
 */
export async function blobFile(container: ContainerClient, blob: string, path: string): Promise<string | null> {
  const dir = await tempDir('toolhost-blob-');
  try {
    const file = join(dir, blob.replaceAll('/', '_'));
    await container.getBlobClient(blob).downloadToFile(file);
    return await readFromArchive(file, path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
