/**
 * The Azure queue's roles compose (Azurite): an API-only queue builds no worker part (no worker queue, no liveness
 * lease, no receive), a worker-only one no API part (no reply queue, no enqueue), and the two together carry a job
 * and a call end to end. Closing ends a pending receive and removes what each role made for itself alone.
 */
import { randomUUID } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { expect } from 'chai';
import type { Job } from '../lib/jobs.js';
import { AzureQueue } from '../lib/queue/azure/azure-queue.js';
import { QueueNames } from '../lib/queue/azure/names.js';
import { type Azurite, containerClient, startAzurite, uniqueContainerName } from './helpers/azurite.js';

const quiet = { info() {}, warn() {}, error() {} };

describe('Azure queue roles (Azurite, api-only and worker-only queues in one process)', function () {
  this.timeout(60_000);
  let azurite: Azurite;
  let names: QueueNames;
  let api: AzureQueue;
  let worker: AzureQueue;

  function queue(role: 'api' | 'worker', nodeId: string): AzureQueue {
    return new AzureQueue({
      connectionString: azurite.connectionString,
      prefix: names.prefix,
      nodeId,
      api: role === 'api',
      worker: role === 'worker',
      maxOutstanding: 100,
      maxDequeueCount: 3,
      visibilityS: 6,
      leaseS: 15,
      pollMinMs: 5,
      pollMaxMs: 200,
      log: quiet,
    });
  }

  async function queueNames(): Promise<string[]> {
    const found: string[] = [];
    for await (const q of QueueServiceClient.fromConnectionString(azurite.connectionString).listQueues({ prefix: names.prefix })) found.push(q.name);
    return found.sort();
  }

  async function nodeBlobs(): Promise<string[]> {
    const found: string[] = [];
    for await (const b of containerClient(azurite, names.container).listBlobsFlat({ prefix: 'nodes/' })) found.push(b.name);
    return found;
  }

  before(async () => {
    azurite = await startAzurite();
    names = new QueueNames(uniqueContainerName('tr').slice(0, 20).replace(/-$/, ''));
    api = queue('api', 'a1');
    worker = queue('worker', 'w1');
    await api.start();
    await worker.start();
  });
  after(async () => {
    await api?.close();
    await worker?.close();
    await azurite?.stop();
  });

  it('builds for each role only its own queues and parts', async () => {
    expect(await queueNames()).to.deep.equal([names.jobs, names.poison, names.node('w1'), names.replies('a1')].sort());
    expect(await nodeBlobs()).to.deep.equal(['nodes/w1']);
    const job = { id: randomUUID(), type: 'file.read', mutates: false, projectId: 'p1', payload: {}, enqueuedAt: Date.now() } as Job;
    const refusals = await Promise.all([
      api.receive(1, AbortSignal.timeout(1_000)).catch((e: { code?: string }) => e.code),
      worker.enqueue(job).catch((e: { code?: string }) => e.code),
      worker.call('w1', 'snapshot', {}, 1_000).catch((e: { code?: string }) => e.code),
    ]);
    expect(refusals).to.deep.equal(['not_on_this_role', 'not_on_this_role', 'not_on_this_role']);
    expect(worker.depth()).to.equal(0);
  });

  it('carries a job from the api to the worker and its outcome back, and a call and its answer', async () => {
    const job = { id: randomUUID(), type: 'file.read', mutates: false, projectId: 'p1', payload: { path: 'a.txt' }, enqueuedAt: Date.now() } as Job;
    const outcome = api.waitFor(job.id, { timeoutMs: 30_000 });
    await api.enqueue(job);
    expect(api.depth()).to.equal(1);
    const received = await worker.receive(8, AbortSignal.timeout(30_000));
    expect(received.map((j) => j.id)).to.deep.equal([job.id]);
    expect(received[0]?.payload).to.deep.equal({ path: 'a.txt' });
    await worker.complete(job, { ok: true, value: 'read' });
    expect(await outcome).to.deep.equal({ ok: true, value: 'read', worker: 'w1' });
    expect(await worker.leases.claim('p1')).to.deep.equal({ mine: true });

    // Calls are answered by a worker's receive loop, as its pump keeps it running.
    worker.setHooks({ call: async (op, args) => ({ op, args }), leaseLost: () => {} });
    const pumping = new AbortController();
    const loop = worker.receive(8, pumping.signal);
    try {
      expect(await api.call('w1', 'snapshot', { id: 'j1' }, 20_000)).to.deep.equal({ op: 'snapshot', args: { id: 'j1' } });
      // An error the hooks throw reaches the caller as an error of its own.
      worker.setHooks({ call: async () => Promise.reject(new Error('no such op')), leaseLost: () => {} });
      const refused = await api.call('w1', 'nope', {}, 20_000).catch((e: unknown) => e);
      expect(refused).to.be.instanceOf(Error);
      expect([(refused as { code?: string }).code, (refused as Error).message]).to.deep.equal(['internal', 'internal error: no such op']);
    } finally {
      pumping.abort();
    }
    expect(await loop).to.deep.equal([]);
  });

  it('closing ends a pending receive, drops the reply queue and the liveness lease', async () => {
    const pending = worker.receive(8, new AbortController().signal);
    await worker.close();
    expect(await pending).to.deep.equal([]);
    await api.close();
    expect(await queueNames()).to.not.include(names.replies('a1'));
    expect(await nodeBlobs()).to.deep.equal([]);
    // A second close is the first one's.
    await Promise.all([api.close(), worker.close()]);
  });
});
