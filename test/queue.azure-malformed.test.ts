/**
 * Messages that are no envelope of ours, on every queue a running server reads (Azurite, one process in role
 * "all"): text that is not JSON, JSON of the wrong shape, fields of the wrong type or size, names that lead
 * elsewhere (a reply queue that is the shared jobs queue, a claim check naming a job record). Each is logged and
 * deleted, nothing it names is touched, and a job sent after them runs.
 */
import { randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import { type QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { expect } from 'chai';
import { Codec } from '../lib/queue/azure/codec.js';
import { QueueNames } from '../lib/queue/azure/names.js';
import { type Azurite, containerClient, startAzurite, uniqueContainerName } from './helpers/azurite.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { type CapturedLog, captureLog } from './helpers/log-capture.js';

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const msg = (value: unknown): string => b64(JSON.stringify(value));
const DROPPED = 'dropped a queue message that is no envelope of ours';

describe('Azure queue: malformed messages (Azurite, one process)', function () {
  this.timeout(120_000);
  let azurite: Azurite;
  let srv: TestServer;
  let log: CapturedLog;
  let names: QueueNames;
  let state: ContainerClient;
  let queues: QueueServiceClient;

  before(async () => {
    azurite = await startAzurite();
    names = new QueueNames(uniqueContainerName('tm').slice(0, 20).replace(/-$/, ''));
    log = captureLog('info');
    const azure = { connectionString: azurite.connectionString, prefix: names.prefix, visibilityS: 6, leaseS: 15 };
    srv = await startServer(
      {
        nodeId: 'n1',
        store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container: `${names.prefix}-projects` } },
        queue: { backend: 'azure', azure },
        pool: { maxThreads: 2 },
        commands: { threads: 1 },
        cache: { janitorIntervalS: 3600 },
      },
      { log: log.log },
    );
    expect((await srv.putProject('p1', { 'a.txt': 'hello\n' })).status).to.equal(201);
    state = containerClient(azurite, names.container);
    queues = QueueServiceClient.fromConnectionString(azurite.connectionString);
  });
  after(async () => {
    await srv?.close();
    await azurite?.stop();
  });

  it('logs and deletes each of them, touches nothing they name, and still runs the next job', async () => {
    const replyTo = names.replies('n1');
    const good = { id: randomUUID(), type: 'file.read', mutates: false, projectId: 'p1', payload: { project_id: 'p1', path: 'a.txt' }, enqueuedAt: Date.now() };
    // A job record a claim check must not reach: with a body that would otherwise run as a job.
    const victim = `jobs/${randomUUID()}.json`;
    const victimBody = JSON.stringify({ k: 'job', job: { ...good, id: randomUUID() }, replyTo });
    await state.getBlockBlobClient(victim).upload(victimBody, victimBody.length);
    const junkClaim = `claims/${randomUUID()}`;
    await state.getBlockBlobClient(junkClaim).upload('{"k":"job"', 10);
    const manyItems = { k: 'replies', items: Array.from({ length: 10_001 }, (_, i) => ({ id: `j${i}`, outcome: { ok: true, value: null }, node: 'w' })) };
    const tooMany = `claims/${randomUUID()}`;
    await state.getBlockBlobClient(tooMany).upload(JSON.stringify(manyItems), JSON.stringify(manyItems).length);

    const malformed = [
      'not base64, not JSON %%%',
      b64('{"k": "job", '),
      msg(null),
      msg([]),
      msg(42),
      msg({ hello: 'world' }),
      msg({ k: 'job' }),
      msg({ k: 'bogus', replyTo }),
      // Wrong types.
      msg({ k: 'job', job: { ...good, id: 42, enqueuedAt: 'yesterday' }, replyTo }),
      msg({ k: 'job', job: { ...good, payload: 'rm -rf /' }, replyTo }),
      msg({ k: 'job', job: good, replyTo, prior: 'many' }),
      msg({ k: 'call', id: randomUUID(), op: 7, args: {}, replyTo }),
      // Oversized or out-of-range fields.
      msg({ k: 'job', job: { ...good, id: 'x'.repeat(30_000) }, replyTo }),
      msg({ k: 'job', job: { ...good, projectId: 'p'.repeat(200) }, replyTo }),
      msg({ k: 'job', job: { ...good, projectId: '../../etc' }, replyTo }),
      msg({ k: 'call', id: randomUUID(), op: 'a'.repeat(30_000), args: {}, replyTo }),
      msg({ k: 'job', job: good, replyTo: 'r'.repeat(5_000) }),
      // Names that lead elsewhere: replies into the shared jobs queue or the poison queue, a claim on a job record.
      msg({ k: 'job', job: { ...good, id: randomUUID() }, replyTo: names.jobs }),
      msg({ k: 'call', id: randomUUID(), op: 'snapshot', args: {}, replyTo: names.poison }),
      msg({ k: 'claim', blob: victim }),
      msg({ k: 'claim', blob: `claims/${randomUUID()}` }),
      msg({ k: 'claim', blob: junkClaim }),
      msg({ k: 'claim', blob: tooMany }),
    ];
    const replyJunk = [
      'not base64, not JSON %%%',
      msg({ hello: 'world' }),
      msg({ k: 'replies', items: [{ id: good.id, outcome: { ok: 'yes' }, node: 'w' }] }),
      msg({ k: 'replies', items: [{ id: good.id, outcome: { ok: false, error: { code: 'internal' } }, node: 'w' }] }),
      msg({ k: 'replies', items: 'all of them' }),
    ];
    const shared = queues.getQueueClient(names.jobs);
    const own = queues.getQueueClient(names.node('n1'));
    const replies = queues.getQueueClient(replyTo);
    for (const text of malformed) {
      await shared.sendMessage(text);
      await own.sendMessage(text);
    }
    for (const text of replyJunk) await replies.sendMessage(text);

    const read = await srv.api('/file/read', { project_id: 'p1', path: 'a.txt' });
    expect(read.status, JSON.stringify(read.body)).to.equal(200);
    expect(read.body.content).to.equal('hello\n');

    for (const q of [shared, own, replies]) await drained(q);
    const dropped = log.lines.filter((l) => l.msg === DROPPED);
    const count = (q: QueueClient) => dropped.filter((l) => l.queue === q.name).length;
    expect([count(shared), count(own), count(replies)]).to.deep.equal([malformed.length, malformed.length, replyJunk.length]);
    expect(dropped.map((l) => String(l.why)).join('\n'))
      .to.contain('is not a reply queue')
      .and.contain('must name a claims/<uuid> blob')
      .and.contain('is gone');
    // The claim check on a job record neither ran it nor deleted it; the junk claim went with its message.
    expect((await state.getBlockBlobClient(victim).downloadToBuffer()).toString()).to.equal(victimBody);
    expect(await state.getBlockBlobClient(junkClaim).exists()).to.equal(false);
    expect((await queues.getQueueClient(names.poison).getProperties()).approximateMessagesCount).to.equal(0);
    // And the server goes on serving.
    expect((await srv.api('/file/read', { project_id: 'p1', path: 'a.txt' })).status).to.equal(200);
  });

  it('refuses a well-formed job whose payload its tool would not accept, and writes nothing', async () => {
    const replyTo = names.replies('n1');
    // What no HTTP request could carry: a write whose content is not text, and whose path is not a string.
    const jobs = [
      { payload: { project_id: 'p1', path: 'forged.txt', content: { toString: 'x' } } },
      { payload: { project_id: 'p1', path: ['..', 'forged.txt'], content: 'x' } },
    ].map(({ payload }) => ({ id: randomUUID(), type: 'file.write', mutates: true, projectId: 'p1', payload, enqueuedAt: Date.now() }));
    // A command whose "command" is an object: it must not reach the command registry (GET /jobs reads it).
    jobs.push({
      id: randomUUID(),
      type: 'execute',
      mutates: true,
      projectId: 'p1',
      payload: { project_id: 'p1', command: { length: 1000 } } as never,
      enqueuedAt: Date.now(),
    });
    const shared = queues.getQueueClient(names.jobs);
    for (const job of jobs) await shared.sendMessage(msg({ k: 'job', job, replyTo }));
    await drained(shared);
    for (const job of jobs) {
      let line: Record<string, unknown> | undefined;
      for (let i = 0; i < 100 && !line; i++) {
        line = log.lines.find((l) => l.msg === 'job' && l.job_id === job.id);
        if (!line) await new Promise((r) => setTimeout(r, 100));
      }
      expect(line, `job ${job.id} was run to an outcome`).to.include({ outcome: 'bad_request' });
    }
    expect((await srv.api('/file/read', { project_id: 'p1', path: 'forged.txt' })).body.error?.code).to.equal('file_not_found');
    const listed = await srv.api('/jobs');
    expect(listed.status, JSON.stringify(listed.body)).to.equal(200);
    expect((listed.body.jobs as { job_id: string }[]).map((j) => j.job_id)).to.not.include(jobs[2]?.id);
  });

  it('refuses a claim check larger than the limit without reading it whole', async () => {
    const codec = new Codec({ container: state, names, maxBodyBytes: 1024 });
    const blob = `claims/${randomUUID()}`;
    const body = JSON.stringify({ k: 'replies', items: [{ id: 'x', outcome: { ok: true, value: 'y'.repeat(4096) }, node: 'w' }] });
    await state.getBlockBlobClient(blob).upload(body, body.length);
    const decoded = await codec.decode(msg({ k: 'claim', blob }));
    expect(decoded).to.deep.equal({ ok: false, why: 'its claim-check blob holds more than 1024 bytes', claim: blob });
    // The same body within the limit decodes.
    const roomy = await new Codec({ container: state, names }).decode(msg({ k: 'claim', blob }));
    expect(roomy.ok).to.equal(true);
  });
});

/** Waits until a queue holds no message at all, visible or not (the server deleted them). */
async function drained(q: QueueClient): Promise<void> {
  let left: number | undefined;
  for (let i = 0; i < 150; i++) {
    left = (await q.getProperties()).approximateMessagesCount;
    if (left === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(left, `messages left in ${q.name}`).to.equal(0);
}
