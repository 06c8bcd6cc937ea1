/**
 * azure-roundtrip: jobs through the Azure Queue Storage backend (queue.backend "azure", store.backend "azure"),
 * against Azurite (in memory, 127.0.0.1) with the default polling settings:
 *   1. latency of a file read on one process (role "all"), alternating with the same read on a supervisor on the
 *      embedded memory queue;
 *   2. storage requests per second of an idle process, counted by a proxy in front of Azurite, and the requests
 *      one read costs;
 *   3. reads per second through one api process and two worker processes, vs the raw queue client moving as many
 *      messages through one queue (send, receive in batches of 32, delete).
 * The idle process is counted while the other parts run: the proxy sees its requests alone, and an idle process
 * mostly sleeps between timers, so the windows cost no time of their own.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { configSchema } from '../../config/schema.js';
import { type Azurite, type CountingProxy, freshContainer, plantArchive, type RequestCounts, startAzurite, startCountingProxy } from '../lib/azurite.js';
import { buildArchive, sourceFile } from '../lib/dataset.js';
import { JsonClient } from '../lib/http.js';
import { pairPercentile, timeAlternately } from '../lib/pair.js';
import { uploadFiles, writeFiles } from '../lib/project.js';
import { percentile } from '../lib/stats.js';
import { launchSupervisor, type SupervisorProcess } from '../lib/supervisor.js';
import { type Figure, NotBuilt, type Scenario, type ScenarioContext } from '../lib/types.js';

/** The file every read returns: 2 KiB of source-like text. */
const FILE = 'src/read.ts';
const CONTENT = sourceFile(11, 2048);
/** Batch size of the raw client's receives: the most one receive returns, as the worker asks for. */
const RAW_BATCH = 32;
/** Receive loops of the raw client: one per worker process of the cluster. */
const RAW_RECEIVERS = 2;

/** Sizes of a run. */
interface Sizes {
  /** Sequential reads timed on each side (after `warmup` untimed ones). */
  reads: number;
  warmup: number;
  /** Seconds an idle process is left alone before counting starts, and seconds counted. */
  idleSettleS: number;
  idleWindowS: number;
  /** Reads counted on the proxied process, at `inFlight` at once. */
  countedReads: number;
  /** Reads through the api + 2 workers, at `inFlight` at once, rotating over `projects` projects. */
  jobs: number;
  inFlight: number;
  projects: number;
}

const FULL: Sizes = { reads: 250, warmup: 20, idleSettleS: 4, idleWindowS: 20, countedReads: 300, jobs: 2000, inFlight: 48, projects: 8 };
const SMOKE: Sizes = { reads: 20, warmup: 3, idleSettleS: 3, idleWindowS: 3, countedReads: 40, jobs: 150, inFlight: 16, projects: 4 };

export const azureRoundtrip: Scenario = {
  name: 'azure-roundtrip',
  description:
    `Jobs through the Azure queue backend on Azurite (in memory, 127.0.0.1, one process serving blob and queue; store and queue both on it; default polling: pollMinMs 5, pollMaxMs 1000). ` +
    `(1) ${FULL.reads} sequential POST /file/read of a 2 KiB file on one project, on a role "all" process, alternating with the same read on a supervisor on the embedded memory queue and local store. ` +
    `(2) A role "all" process whose connection string points at a counting HTTP proxy in front of Azurite is left idle (${FULL.idleSettleS} s to settle after it listened, then ${FULL.idleWindowS} s counted, while (1) runs); then ${FULL.countedReads} reads at ${FULL.inFlight} in flight over ${FULL.projects} projects are counted through the proxy, and it is counted idle again, holding those projects, while (3) runs. ` +
    `(3) One api process and two worker processes (nodeIds w1, w2; projects planted as blobs, each read once first, all at once, timed: the workers share them out by their leases): ${FULL.jobs} reads at ${FULL.inFlight} in flight rotating over ${FULL.projects} projects, sent to the api process, ` +
    `vs the raw @azure/storage-queue client in the bench process moving as many messages of a job's size through one queue: ${FULL.inFlight} concurrent senders, ${RAW_RECEIVERS} receive loops of batches of ${RAW_BATCH} (5 ms pause after an empty one) deleting each message; run before and after the cluster, their mean.`,
  async run(ctx) {
    const backends: readonly string[] = configSchema.shape.queue.shape.backend.options;
    if (!backends.includes('azure')) {
      throw new NotBuilt(`the Azure queue backend is not built (queue.backend accepts: ${backends.join(', ')})`);
    }
    // The supervisors inherit the bench's environment, where these would override the emulator's settings.
    for (const v of ['AZURE_STORAGE_CONNECTION_STRING', 'TOOLHOST_QUEUE', 'TOOLHOST_STORE', 'TOOLHOST_ROLE', 'TOOLHOST_NODE_ID']) {
      if (process.env[v]) throw new Error(`unset ${v}: the bench points its supervisors at its own Azurite`);
    }
    const s = ctx.smoke ? SMOKE : FULL;
    const azurite = await startAzurite();
    let proxy: CountingProxy | undefined;
    let idle: SupervisorProcess | undefined;
    try {
      proxy = await startCountingProxy(azurite);
      const counted = proxy;
      counted.reset();
      idle = await launchSupervisor({ tmp: ctx.tmp, name: 'idle', config: azureConfig(counted.connectionString, freshPrefix('idle'), 'all', 'idle') });
      const startup = counted.counts();
      ctx.log(`idle process: ${s.idleSettleS} s to settle, then ${s.idleWindowS} s counted (while the latency is measured)`);
      const fresh = countWindow(counted, s);
      const latencyFigures = await latency(ctx, azurite, s);
      const freshCounts = await fresh;
      const perRead = await countReads(ctx, idle, counted, s);
      ctx.log(`idle process holding ${s.projects} projects: ${s.idleSettleS} s to settle, then ${s.idleWindowS} s counted (while the throughput is measured)`);
      const held = countWindow(counted, s);
      const throughputFigures = await throughput(ctx, azurite, s);
      const heldCounts = await held;
      return [...latencyFigures, ...idleFigures(s, startup, freshCounts, heldCounts), perRead, ...throughputFigures];
    } finally {
      await idle?.stop();
      await proxy?.stop();
      await azurite.stop();
    }
  },
};

/** A queue prefix (3-20 characters) no other supervisor of the run uses. */
function freshPrefix(tag: string): string {
  return `${tag}-${randomBytes(4).toString('hex')}`;
}

/** The config of a supervisor on the Azure store and queue of `connectionString`. */
function azureConfig(
  connectionString: string,
  prefix: string,
  role: 'all' | 'api' | 'worker',
  nodeId: string,
  container = `${prefix}-projects`,
): Record<string, unknown> {
  return {
    role,
    nodeId,
    store: { backend: 'azure', azure: { connectionString, container } },
    queue: { backend: 'azure', azure: { connectionString, prefix } },
  };
}

/** One POST /file/read; fails unless it returns the file. Resolves with the worker that ran it (its header). */
async function read(th: JsonClient, projectId: string): Promise<string> {
  const r = await th.post('/file/read', { project_id: projectId, path: FILE });
  if (typeof r.body.content !== 'string' || !r.body.content.startsWith(CONTENT.slice(0, 64))) {
    throw new Error(`a read of ${projectId}/${FILE} did not return the file: ${JSON.stringify(r.body).slice(0, 300)}`);
  }
  const worker = r.headers['x-toolhost-worker'];
  return typeof worker === 'string' ? worker : '?';
}

/** What a closed loop of reads measured. */
interface LoopResult {
  ms: number;
  samples: number[];
  /** Reads run per worker (X-Toolhost-Worker). */
  workers: Map<string, number>;
}

/** Runs `n` reads, `inFlight` at once, rotating over `ids`. */
async function closedLoop(th: JsonClient, ids: readonly string[], n: number, inFlight: number): Promise<LoopResult> {
  const samples: number[] = [];
  const workers = new Map<string, number>();
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < n) {
        const i = next++;
        const started = performance.now();
        const w = await read(th, ids[i % ids.length]!);
        samples.push(performance.now() - started);
        workers.set(w, (workers.get(w) ?? 0) + 1);
      }
    }),
  );
  return { ms: performance.now() - t0, samples, workers };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A count of the proxy's requests over a window, and the window's length. */
interface Window {
  counts: RequestCounts;
  seconds: number;
}

/** Waits `idleSettleS`, then counts the proxy's requests for `idleWindowS`. */
async function countWindow(proxy: CountingProxy, s: Sizes): Promise<Window> {
  await sleep(s.idleSettleS * 1000);
  proxy.reset();
  const t0 = performance.now();
  await sleep(s.idleWindowS * 1000);
  return { counts: proxy.counts(), seconds: (performance.now() - t0) / 1000 };
}

function describeCounts(c: RequestCounts): string {
  return Object.entries(c.byOp)
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
}

/** Requests of the queue service alone. */
function queueRequests(c: RequestCounts): number {
  return Object.entries(c.byOp).reduce((a, [op, n]) => a + (op.startsWith('queue ') ? n : 0), 0);
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name (which may hold spaces) start at field 3; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The share of one core that each named process and the bench itself take while `fn` runs. */
async function cpuDuring<T>(pids: Record<string, number>, fn: () => Promise<T>): Promise<{ result: T; share: Record<string, number> }> {
  const all = { ...pids, bench: process.pid };
  const before = Object.fromEntries(Object.entries(all).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const t0 = performance.now();
  const result = await fn();
  const s = (performance.now() - t0) / 1000;
  return { result, share: Object.fromEntries(Object.entries(all).map(([k, pid]) => [k, (cpuSeconds(pid) - before[k]!) / s])) };
}

function describeShare(share: Record<string, number>): string {
  return Object.entries(share)
    .map(([k, x]) => `${k} ${(x * 100).toFixed(0)}%`)
    .join(', ');
}

// ---- 1. latency of one read ----

async function latency(ctx: ScenarioContext, azurite: Azurite, s: Sizes): Promise<Figure[]> {
  const [memory, azure] = await Promise.all([
    launchSupervisor({ tmp: ctx.tmp, name: 'rt-memory' }),
    launchSupervisor({ tmp: ctx.tmp, name: 'rt-azure', config: azureConfig(azurite.connectionString, freshPrefix('rt'), 'all', 'rt') }),
  ]);
  const thMemory = new JsonClient(memory);
  const thAzure = new JsonClient(azure);
  try {
    await uploadFiles(thMemory, 'rt', { [FILE]: CONTENT }, ctx.tmp);
    await uploadFiles(thAzure, 'rt', { [FILE]: CONTENT }, ctx.tmp);
    ctx.log(`latency: ${s.reads} reads on each side, alternating`);
    const samples = await timeAlternately(
      s.reads,
      s.warmup,
      () => read(thAzure, 'rt'),
      () => read(thMemory, 'rt'),
    );
    const spread = [10, 25, 50, 75, 90].map((p) => `p${p} ${percentile(samples.toolhost, p).toFixed(1)}`).join(', ');
    return [
      {
        figure: 'read round trip through Azure queue, p50',
        unit: 'ms',
        ...pairPercentile(samples, 50),
        target: { of: 'value', op: '<', limit: 40 },
        note: `one role "all" process on Azurite, ${s.reads} sequential reads of a 2 KiB file on one project (after ${s.warmup} untimed); baseline: the same read on the embedded memory queue and local store, alternating with it; Azure side ${spread}, max ${Math.max(...samples.toolhost).toFixed(1)} ms`,
      },
      { figure: 'read round trip through Azure queue, p95', unit: 'ms', ...pairPercentile(samples, 95) },
      { figure: 'read round trip through Azure queue, p99', unit: 'ms', ...pairPercentile(samples, 99) },
    ];
  } finally {
    thMemory.close();
    thAzure.close();
    await Promise.all([memory.stop(), azure.stop()]);
  }
}

// ---- 2. idle cost, and requests per read ----

function idleFigures(s: Sizes, startup: RequestCounts, fresh: Window, held: Window): Figure[] {
  return [
    {
      figure: 'idle storage requests per process (role all)',
      unit: 'req/s',
      value: fresh.counts.total / fresh.seconds,
      target: { of: 'value', op: '<=', limit: 1.0 },
      note: `a role "all" process holding no project, ${s.idleSettleS} s after it listened, counted for ${fresh.seconds.toFixed(1)} s by a proxy in front of Azurite's blob and queue endpoints: ${fresh.counts.total} requests (${describeCounts(fresh.counts)}); its start-up took ${startup.total} (${describeCounts(startup)})`,
    },
    {
      figure: 'idle queue polls per process (role all)',
      unit: 'req/s',
      value: queueRequests(fresh.counts) / fresh.seconds,
      note: "the queue service's share of the row above",
    },
    {
      figure: `idle storage requests per process holding ${s.projects} projects`,
      unit: 'req/s',
      value: held.counts.total / held.seconds,
      note: `the same process after the counted reads, ${s.idleSettleS} s to settle, counted for ${held.seconds.toFixed(1)} s: ${held.counts.total} requests (${describeCounts(held.counts)})`,
    },
  ];
}

/** Reads on the proxied process, `inFlight` at once over its projects (uploaded and read once first), counted. */
async function countReads(ctx: ScenarioContext, sup: SupervisorProcess, proxy: CountingProxy, s: Sizes): Promise<Figure> {
  const th = new JsonClient(sup, s.inFlight);
  try {
    const ids = Array.from({ length: s.projects }, (_, i) => `c${i}`);
    for (const id of ids) await uploadFiles(th, id, { [FILE]: CONTENT }, ctx.tmp);
    for (const id of ids) await read(th, id);
    ctx.log(`counting the requests of ${s.countedReads} reads at ${s.inFlight} in flight`);
    proxy.reset();
    const r = await closedLoop(th, ids, s.countedReads, s.inFlight);
    const c = proxy.counts();
    const receives = (c.byOp['queue receive'] ?? 0) + (c.byOp['queue receive (empty)'] ?? 0);
    const per = Object.entries(c.byOp)
      .map(([op, n]) => `${op} ${(n / s.countedReads).toFixed(2)}`)
      .join(', ');
    return {
      figure: `storage requests per read (role all, ${s.inFlight} in flight)`,
      unit: 'requests',
      value: c.total / s.countedReads,
      note: `${s.countedReads} reads over ${s.projects} projects it holds, ${(s.countedReads / (r.ms / 1000)).toFixed(0)} reads/s through the proxy (p50 ${percentile(r.samples, 50).toFixed(0)} ms); per read: ${per}; ${receives} receives (jobs and replies) returned ${c.messagesReceived} messages, ${((100 * (c.byOp['queue receive (empty)'] ?? 0)) / Math.max(1, receives)).toFixed(0)}% of them none`,
    };
  } finally {
    th.close();
  }
}

// ---- 3. throughput: api + 2 workers vs the raw queue client ----

async function throughput(ctx: ScenarioContext, azurite: Azurite, s: Sizes): Promise<Figure[]> {
  ctx.log(`raw queue client: ${s.jobs} messages (before)`);
  await rawQueue(azurite.connectionString, Math.min(s.jobs, 4 * s.inFlight), s.inFlight); // loads and warms the SDK, untimed
  const rawBefore = await cpuDuring({ azurite: azurite.pid }, () => rawQueue(azurite.connectionString, s.jobs, s.inFlight));

  const prefix = freshPrefix('tp');
  const container = await freshContainer(azurite, `${prefix}-projects`);
  const dir = join(ctx.tmp, 'tp-project');
  await writeFiles(dir, { [FILE]: CONTENT, 'README.md': '# bench\n' });
  const archive = join(ctx.tmp, 'tp-project.tar.gz');
  await buildArchive(dir, archive, 'tar.gz');
  const ids = Array.from({ length: s.projects }, (_, i) => `p${i}`);
  for (const id of ids) await plantArchive(container, id, 'tar.gz', archive);

  // freshContainer adds a random suffix to the name: the supervisors are given the container's real name.
  const cfg = (role: 'api' | 'worker', nodeId: string): Record<string, unknown> =>
    azureConfig(azurite.connectionString, prefix, role, nodeId, container.client.containerName);
  const procs = await Promise.all([
    launchSupervisor({ tmp: ctx.tmp, name: 'tp-api', config: cfg('api', 'api') }),
    launchSupervisor({ tmp: ctx.tmp, name: 'tp-w1', config: cfg('worker', 'w1') }),
    launchSupervisor({ tmp: ctx.tmp, name: 'tp-w2', config: cfg('worker', 'w2') }),
  ]);
  const [api, w1, w2] = procs;
  const th = new JsonClient(api, s.inFlight);
  const holders = new Map<string, number>();
  let timed: { result: LoopResult; share: Record<string, number> };
  let firsts: number[];
  try {
    // Each project's first read extracts it on the worker that takes it from the shared queue, which then holds
    // its lease; a worker holding more projects than its peer leaves a new one to it, so they spread.
    firsts = await Promise.all(
      ids.map(async (id) => {
        const t0 = performance.now();
        const w = await read(th, id);
        holders.set(w, (holders.get(w) ?? 0) + 1);
        return performance.now() - t0;
      }),
    );
    // Warms both workers' pools and the api's cache of who holds which project.
    await closedLoop(th, ids, Math.min(s.jobs, 4 * s.inFlight), s.inFlight);
    ctx.log(`cluster: ${s.jobs} reads at ${s.inFlight} in flight`);
    timed = await cpuDuring({ azurite: azurite.pid, api: api.pid, w1: w1.pid, w2: w2.pid }, () => closedLoop(th, ids, s.jobs, s.inFlight));
  } finally {
    th.close();
    await Promise.all(procs.map((p) => p.stop()));
  }

  ctx.log(`raw queue client: ${s.jobs} messages (after)`);
  const rawAfter = await cpuDuring({ azurite: azurite.pid }, () => rawQueue(azurite.connectionString, s.jobs, s.inFlight));
  const run = timed.result;
  const list = (m: Map<string, number>): string => [...m].map(([w, n]) => `${w} ${n}`).join(', ');
  return [
    {
      figure: 'reads/s through api + 2 workers (vs raw queue msgs/s)',
      unit: 'jobs/s',
      value: s.jobs / (run.ms / 1000),
      baseline: (rawBefore.result + rawAfter.result) / 2,
      target: { of: 'ratio', op: '>=', limit: 0.7 },
      note:
        `${s.jobs} reads at ${s.inFlight} in flight over ${s.projects} projects; projects leased: ${list(holders)}; reads run: ${list(run.workers)}; ` +
        `raw client (send + receive in batches of ${RAW_BATCH} + delete): ${rawBefore.result.toFixed(0)} msgs/s before, ${rawAfter.result.toFixed(0)} after; ` +
        `CPU (share of one core) during the reads: ${describeShare(timed.share)}; during the raw client: ${describeShare(rawBefore.share)} before, ${describeShare(rawAfter.share)} after; ` +
        `Azurite, the workers, the api process and the bench share the machine's ${availableParallelism()} cores`,
    },
    {
      figure: `read latency through api + 2 workers at ${s.inFlight} in flight, p50`,
      unit: 'ms',
      value: percentile(run.samples, 50),
      note: `p95 ${percentile(run.samples, 95).toFixed(0)} ms, p99 ${percentile(run.samples, 99).toFixed(0)} ms`,
    },
    {
      figure: `first read of ${s.projects} projects no worker holds, sent at once, slowest`,
      unit: 'ms',
      value: Math.max(...firsts),
      note: `each extracts its project (a 2-file tar.gz) on the worker that takes it; all: ${firsts.map((ms) => ms.toFixed(0)).join(', ')} ms; projects leased: ${list(holders)}`,
    },
  ];
}

/**
 * The raw queue client moving `n` messages through a fresh queue: `senders` concurrent senders and
 * {@link RAW_RECEIVERS} receive loops taking batches of {@link RAW_BATCH} and deleting each message. Messages per
 * second from the first send to the last delete.
 */
async function rawQueue(connectionString: string, n: number, senders: number): Promise<number> {
  const q = QueueServiceClient.fromConnectionString(connectionString).getQueueClient(`bench-raw-${randomBytes(6).toString('hex')}`);
  await q.create();
  // About the size of a read job's message: a job envelope, base64.
  const body = (): string =>
    Buffer.from(
      JSON.stringify({
        k: 'job',
        job: {
          id: randomUUID(),
          type: 'file.read',
          projectId: 'p0',
          payload: { project_id: 'p0', path: FILE },
          enqueuedAt: Date.now(),
          requestId: randomUUID(),
        },
        replyTo: 'tp-00000000-replies-api',
      }),
    ).toString('base64');
  let sent = 0;
  let done = 0;
  const t0 = performance.now();
  try {
    await Promise.all([
      ...Array.from({ length: senders }, async () => {
        while (sent < n) {
          sent++;
          await q.sendMessage(body());
        }
      }),
      ...Array.from({ length: RAW_RECEIVERS }, async () => {
        while (done < n) {
          const items = (await q.receiveMessages({ numberOfMessages: RAW_BATCH, visibilityTimeout: 30 })).receivedMessageItems;
          if (items.length === 0) {
            await sleep(5);
            continue;
          }
          await Promise.all(items.map((m) => q.deleteMessage(m.messageId, m.popReceipt)));
          done += items.length;
        }
      }),
    ]);
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await q.delete();
  }
}
