/**
 * Azure Storage for scenarios: Azurite (the azurite devDependency) as a child process on free ports of 127.0.0.1,
 * state in memory, with its blob and queue services, plus what a scenario needs around it: a container per
 * supervisor, archives planted in it as a project's blob before the supervisor asks for them, the `store` section
 * that points a supervisor at it, and a counting proxy that tells how many requests a supervisor makes.
 *
 * This mirrors test/helpers/azurite.ts rather than importing it: the test helper reaches into the test harness
 * (and through it the whole supervisor). Here the emulator is one of the runner's tracked children, so a scenario
 * that fails or times out cannot leave it running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, createServer, type IncomingMessage, type OutgoingHttpHeaders, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { AZURITE_ARGS } from '../../scripts/azurite-args.js';
import { exited, stopChild, track } from './children.js';
import { REPO_ROOT } from './supervisor.js';

/** A running emulator. */
export interface Azurite {
  /** Blob endpoint of the development account, e.g. `http://127.0.0.1:41234/devstoreaccount1`. */
  blobUrl: string;
  /** Queue endpoint of the same account. */
  queueUrl: string;
  /** Connection string of its development account, with BlobEndpoint and QueueEndpoint. */
  connectionString: string;
  /** Its process id (to read its CPU time from /proc). */
  pid: number;
  /** Stops it and removes its folder. */
  stop(): Promise<void>;
}

const BIN = join(REPO_ROOT, 'node_modules/.bin/azurite');
/** The emulator's fixed, public development account (documented by Microsoft; not a secret). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
/**
 * Azurite 3.35 prints one such line per service once it listens, even with --silent, which only mutes access logs
 * (the single-service `azurite-blob` words it differently: "successfully listens on").
 */
const LISTENING = /Azurite (Blob|Queue|Table) service is successfully listening at (http:\/\/\S+)/g;
const START_TIMEOUT_MS = 30_000;
/** Upload block size and parallelism for planted archives: the same as the Azure store's own uploads. */
const BLOCK_BYTES = 8 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;

/** The development account's connection string for these endpoints (account URLs, ending in /devstoreaccount1). */
export function connectionStringOf(blobUrl: string, queueUrl: string): string {
  return `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${ACCOUNT_KEY};BlobEndpoint=${blobUrl};QueueEndpoint=${queueUrl};`;
}

/** Starts Azurite's blob and queue services on free ports of 127.0.0.1, keeping everything in memory. */
export async function startAzurite(): Promise<Azurite> {
  // Azurite refuses --location together with --inMemoryPersistence, so the temp folder is its working directory
  // instead: anything it might still write lands there and is removed with it.
  const home = await mkdtemp(join(tmpdir(), 'toolhost-bench-azurite-'));
  const child = track(spawn(BIN, [...AZURITE_ARGS], { cwd: home, stdio: ['ignore', 'pipe', 'pipe'] }));
  let urls: Record<string, string>;
  try {
    urls = await listeningUrls(child);
  } catch (err) {
    await stopChild(child, 1_000);
    await rm(home, { recursive: true, force: true });
    throw err;
  }
  const blobUrl = `${urls.Blob}/${ACCOUNT}`;
  const queueUrl = `${urls.Queue}/${ACCOUNT}`;
  return {
    blobUrl,
    queueUrl,
    connectionString: connectionStringOf(blobUrl, queueUrl),
    pid: child.pid!,
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
  await c.client
    .getBlockBlobClient(`${id}.${format}`)
    .uploadFile(file, { blockSize: BLOCK_BYTES, maxSingleShotSize: BLOCK_BYTES, concurrency: UPLOAD_CONCURRENCY });
}

/** Requests a {@link CountingProxy} forwarded. */
export interface RequestCounts {
  total: number;
  /**
   * By service and operation, e.g. "queue receive", "queue receive (empty)", "queue delete", "blob lease renew",
   * "blob getProperties"; most first.
   */
  byOp: Record<string, number>;
  /** Messages that queue receives returned. */
  messagesReceived: number;
}

/** A proxy in front of an emulator's blob and queue endpoints that counts what passes through it. */
export interface CountingProxy {
  /** Connection string pointing at the proxy (give it to a supervisor instead of the emulator's). */
  connectionString: string;
  /** Requests counted since the start or the last reset. */
  counts(): RequestCounts;
  /** Starts counting from zero. */
  reset(): void;
  /** Closes both listeners and every connection. */
  stop(): Promise<void>;
}

/**
 * Starts a plain HTTP proxy on two free ports of 127.0.0.1, one in front of the emulator's blob service, one in
 * front of its queue service, counting every request by operation. Shared Key signatures cover the path and
 * headers, not the host, so requests pass through unchanged. It runs in the bench process: it adds a hop, so use
 * it to count, not to time.
 */
export async function startCountingProxy(azurite: Azurite): Promise<CountingProxy> {
  let byOp = new Map<string, number>();
  let messagesReceived = 0;
  const count = (op: string, messages = 0): void => {
    byOp.set(op, (byOp.get(op) ?? 0) + 1);
    messagesReceived += messages;
  };
  const blob = forwarder(new URL(azurite.blobUrl), 'blob', count);
  const queue = forwarder(new URL(azurite.queueUrl), 'queue', count);
  const [blobPort, queuePort] = await Promise.all([listen(blob.server), listen(queue.server)]);
  const account = `/${ACCOUNT}`;
  return {
    connectionString: connectionStringOf(`http://127.0.0.1:${blobPort}${account}`, `http://127.0.0.1:${queuePort}${account}`),
    counts: () => {
      const ops = Object.fromEntries([...byOp].sort(([, a], [, b]) => b - a));
      return { total: [...byOp.values()].reduce((a, b) => a + b, 0), byOp: ops, messagesReceived };
    },
    reset: () => {
      byOp = new Map();
      messagesReceived = 0;
    },
    stop: async () => {
      for (const f of [blob, queue]) {
        f.server.closeAllConnections();
        f.agent.destroy();
      }
      await Promise.all([blob, queue].map((f) => new Promise<void>((r) => f.server.close(() => r()))));
    },
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Hop-by-hop headers: each side of the proxy has its own connection. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade'];

/** What a queue's answer to a receive holds per message. */
const MESSAGE_TAG = '<QueueMessage>';

function forwarder(target: URL, service: 'blob' | 'queue', count: (op: string, messages?: number) => void): { server: Server; agent: Agent } {
  // Idle upstream connections are dropped well before the emulator's own keep-alive timeout (Node's 5 s), so a
  // request rarely goes out on a socket the emulator is closing.
  const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: 2_000 });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const op = operationOf(service, req);
    // A receive is counted once answered, as empty or not, with the messages it returned.
    const receive = service === 'queue' && op === 'receive';
    if (!receive) count(`${service} ${op}`);
    const headers: OutgoingHttpHeaders = { ...req.headers, host: target.host };
    for (const h of HOP_BY_HOP) delete headers[h];
    // Bodies are small (messages, leases, the bench's archives): buffered, a request can be sent again.
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.once('end', () => send(true));
    function send(retry: boolean): void {
      const out = request({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (up) => {
        const back: OutgoingHttpHeaders = { ...up.headers };
        for (const h of HOP_BY_HOP) delete back[h];
        res.writeHead(up.statusCode ?? 502, back);
        if (receive) {
          let found = 0;
          let tail = '';
          up.on('data', (chunk: Buffer) => {
            const text = tail + chunk.toString('latin1');
            found += text.split(MESSAGE_TAG).length - 1;
            tail = text.slice(-(MESSAGE_TAG.length - 1));
          });
          up.once('end', () => count(found > 0 ? 'queue receive' : 'queue receive (empty)', found));
        }
        up.pipe(res);
      });
      out.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive socket the emulator closed as it was reused: the request never reached it; send it again.
        if (retry && out.reusedSocket && err.code === 'ECONNRESET' && !res.headersSent) return send(false);
        // Otherwise the client sees the network error it would see without the proxy (and its SDK retries).
        res.destroy(err);
      });
      out.end(Buffer.concat(body));
    }
  });
  server.keepAliveTimeout = 60_000;
  return { server, agent };
}

/** What a storage request does, from its method, path and query (path-style emulator URLs). */
function operationOf(service: 'blob' | 'queue', req: IncomingMessage): string {
  const url = new URL(req.url ?? '/', 'http://x');
  const parts = url.pathname.split('/').filter(Boolean).slice(1); // without the account
  const comp = url.searchParams.get('comp');
  const method = req.method ?? 'GET';
  if (service === 'queue') {
    if (parts[1] === 'messages') {
      if (method === 'POST') return 'send';
      if (method === 'GET') return url.searchParams.get('peekonly') === 'true' ? 'peek' : 'receive';
      if (method === 'DELETE') return parts[2] ? 'delete' : 'clear';
      if (method === 'PUT') return 'update';
    }
    if (parts.length === 1 && !comp) return method === 'PUT' ? 'create queue' : method === 'DELETE' ? 'delete queue' : `${method} queue`;
    return comp === 'metadata' && method === 'GET' ? 'getProperties' : `${method} ${comp ?? parts.length}`;
  }
  if (comp === 'lease') return `lease ${String(req.headers['x-ms-lease-action'] ?? '?')}`;
  if (url.searchParams.get('restype') === 'container') return comp === 'list' ? 'list' : `${method} container`;
  if (comp === 'metadata') return method === 'PUT' ? 'setMetadata' : 'getMetadata';
  if (comp) return `${method} ${comp}`;
  if (method === 'HEAD') return 'getProperties';
  if (method === 'GET') return 'download';
  if (method === 'PUT') return 'upload';
  if (method === 'DELETE') return 'delete';
  return method;
}

/** Reads the emulator's output until its blob and queue services say where they listen; fails with that output if it exits or stalls. */
async function listeningUrls(child: ChildProcess): Promise<Record<string, string>> {
  let output = '';
  // Both pipes stay drained after start-up: a pipe nobody reads would eventually block the emulator.
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const deadline = Date.now() + START_TIMEOUT_MS;
  let gone = false;
  void exited(child).then(() => (gone = true));
  for (;;) {
    const urls: Record<string, string> = {};
    for (const m of output.matchAll(LISTENING)) urls[m[1]!] = m[2]!.replace(/\/$/, '');
    if (urls.Blob && urls.Queue && urls.Table) {
      output = ''; // stop keeping what it prints from now on
      child.stdout!.removeAllListeners('data').resume();
      child.stderr!.removeAllListeners('data').resume();
      return urls;
    }
    if (gone || Date.now() > deadline) {
      throw new Error(
        `azurite did not start (${gone ? `it exited with ${child.exitCode}` : `not listening within ${START_TIMEOUT_MS / 1000} s`}); it printed:\n${output.slice(-2000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
