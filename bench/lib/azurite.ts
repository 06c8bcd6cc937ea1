/**
 * Azure Blob Storage for scenarios: Azurite's blob service (the azurite devDependency) as a child process on a
 * free port of 127.0.0.1, state in memory, plus what a scenario needs around it: a container per supervisor,
 * archives planted in it as a project's blob before the supervisor asks for them, and the `store` section that
 * points a supervisor at it.
 *
 * This mirrors test/helpers/azurite.ts rather than importing it: the test helper reaches into the test harness
 * (and through it the whole supervisor), and starts queue and table services the bench does not use. Here the
 * emulator is one of the runner's tracked children, so a scenario that fails or times out cannot leave it running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { exited, stopChild, track } from './children.js';
import { REPO_ROOT } from './supervisor.js';

/** A running emulator. */
export interface Azurite {
  /** Connection string of its development account. */
  connectionString: string;
  /** Stops it and removes its folder. */
  stop(): Promise<void>;
}

const BIN = join(REPO_ROOT, 'node_modules/.bin/azurite-blob');
/** The emulator's fixed, public development account (documented by Microsoft; not a secret). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
/**
 * azurite-blob 3.35 prints this once it listens, even with --silent, which only mutes access logs (the all-in-one
 * `azurite` words it differently: "is successfully listening at").
 */
const LISTENING = /Azurite Blob service successfully listens on (http:\/\/\S+)/;
const START_TIMEOUT_MS = 30_000;
/** Upload block size and parallelism for planted archives: the same as the Azure store's own uploads. */
const BLOCK_BYTES = 8 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;

/** Starts Azurite's blob service on a free port of 127.0.0.1, keeping blobs in memory. */
export async function startAzurite(): Promise<Azurite> {
  // Azurite refuses --location together with --inMemoryPersistence, so the temp folder is its working directory
  // instead: anything it might still write lands there and is removed with it.
  const home = await mkdtemp(join(tmpdir(), 'toolhost-bench-azurite-'));
  const args = ['--skipApiVersionCheck', '--inMemoryPersistence', '--disableTelemetry', '--silent', '--blobHost', '127.0.0.1', '--blobPort', '0'];
  const child = track(spawn(BIN, args, { cwd: home, stdio: ['ignore', 'pipe', 'pipe'] }));
  let url: string;
  try {
    url = await listeningUrl(child);
  } catch (err) {
    await stopChild(child, 1_000);
    await rm(home, { recursive: true, force: true });
    throw err;
  }
  const blobUrl = `${url.replace(/\/$/, '')}/${ACCOUNT}`;
  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};BlobEndpoint=${blobUrl};`,
    stop: async () => {
      await stopChild(child, 5_000);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** A fresh container on the emulator and the configuration of a supervisor that keeps its projects there. */
export interface BenchContainer {
  client: ContainerClient;
  /** Merge into a supervisor's config: `{ store: { backend: 'azure', azure: { connectionString, container } } }`. */
  config: { store: { backend: 'azure'; azure: { connectionString: string; container: string } } };
}

/** Creates a container no other supervisor of the run uses. */
export async function freshContainer(azurite: Azurite, prefix: string): Promise<BenchContainer> {
  const container = `${prefix}-${randomBytes(6).toString('hex')}`;
  const client = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container);
  await client.create();
  return { client, config: { store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container } } } };
}

/** Uploads `file` as project `id`'s archive blob (`<id>.zip` or `<id>.tar.gz`, the store's naming). */
export async function plantArchive(c: BenchContainer, id: string, format: 'zip' | 'tar.gz', file: string): Promise<void> {
  await c.client.getBlockBlobClient(`${id}.${format}`).uploadFile(file, { blockSize: BLOCK_BYTES, maxSingleShotSize: BLOCK_BYTES, concurrency: UPLOAD_CONCURRENCY });
}

/** Reads the emulator's output until it says where it listens; fails with that output if it exits or stalls. */
async function listeningUrl(child: ChildProcess): Promise<string> {
  let output = '';
  // Both pipes stay drained after start-up: a pipe nobody reads would eventually block the emulator.
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const deadline = Date.now() + START_TIMEOUT_MS;
  let gone = false;
  void exited(child).then(() => (gone = true));
  for (;;) {
    const m = LISTENING.exec(output);
    if (m) {
      output = ''; // stop keeping what it prints from now on
      child.stdout!.removeAllListeners('data').resume();
      child.stderr!.removeAllListeners('data').resume();
      return m[1]!;
    }
    if (gone || Date.now() > deadline) {
      throw new Error(`azurite did not start (${gone ? `it exited with ${child.exitCode}` : `not listening within ${START_TIMEOUT_MS / 1000} s`}); it printed:\n${output.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
