/**
 * The job queue on Azure Queue Storage (Azurite), one process in role "all": every tool makes the round trip
 * through the queues, large payloads and results travel by claim check, a job that crashes its thread every
 * time ends in the poison queue with an error for its caller, and the jobs API reads commands through records.
 */

import { QueueServiceClient } from '@azure/storage-queue';
import { expect } from 'chai';
import { type Azurite, startAzurite, uniqueContainerName } from './helpers/azurite.js';
import { startServer, type TestServer } from './helpers/harness.js';

const KiB = 1024;

/** A server on the Azure queue and store of `azurite`, under its own prefix and container. */
function azureConfig(azurite: Azurite, prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container: `${prefix}-projects` } },
    queue: { backend: 'azure', azure: { connectionString: azurite.connectionString, prefix, visibilityS: 6, leaseS: 15 } },
    pool: { maxThreads: 2 },
    commands: { threads: 1 },
    cache: { janitorIntervalS: 3600 },
    ...extra,
  };
}

describe('Azure queue (Azurite, one process)', function () {
  this.timeout(120_000);
  let azurite: Azurite;
  let srv: TestServer;
  let prefix: string;

  before(async () => {
    process.env.TOOLHOST_TEST_FAULTS = JSON.stringify({ crashPath: 'crash-thread.txt' });
    azurite = await startAzurite();
    prefix = uniqueContainerName('tq').slice(0, 20).replace(/-$/, '');
    srv = await startServer(
      azureConfig(azurite, prefix, {
        queue: { backend: 'azure', maxDequeueCount: 3, azure: { connectionString: azurite.connectionString, prefix, visibilityS: 6, leaseS: 15 } },
      }),
    );
    expect((await srv.putProject('p1', { 'a.txt': 'hello\nworld\n', 'src/x.ts': 'export const x = 1;\n' })).status).to.equal(201);
  });
  after(async () => {
    delete process.env.TOOLHOST_TEST_FAULTS;
    await srv?.close();
    await azurite?.stop();
  });

  it('runs every tool through the queue and names the worker', async () => {
    const read = await srv.api('/file/read', { project_id: 'p1', path: 'a.txt' });
    expect(read.status, JSON.stringify(read.body)).to.equal(200);
    expect(read.body.content).to.equal('hello\nworld\n');
    expect(read.headers.get('x-toolhost-worker')).to.be.a('string').and.not.equal('');
    expect((await srv.api('/file/write', { project_id: 'p1', path: 'b.txt', content: 'one\n' })).status).to.equal(200);
    const edit = await srv.api('/file/edit', { project_id: 'p1', path: 'b.txt', old_str: 'one', new_str: 'two' });
    expect(edit.status, JSON.stringify(edit.body)).to.equal(200);
    const list = await srv.api('/file/list', { project_id: 'p1', path: '.' });
    expect(list.status).to.equal(200);
    expect(JSON.stringify(list.body)).to.contain('b.txt');
    const search = await srv.api('/search', { project_id: 'p1', pattern: 'two' });
    expect(search.status, JSON.stringify(search.body)).to.equal(200);
    expect(JSON.stringify(search.body)).to.contain('b.txt');
    const exec = await srv.api('/execute', { project_id: 'p1', command: 'cat b.txt' });
    expect(exec.status, JSON.stringify(exec.body)).to.equal(200);
    expect(exec.body.stdout).to.equal('two\n');
    expect(exec.body.status).to.equal('completed');
    const missing = await srv.api('/file/read', { project_id: 'p1', path: 'nope.txt' });
    expect(missing.status).to.equal(404);
    expect(missing.body.error.code).to.equal('file_not_found');
  });

  it('carries a 200 KiB file both ways by claim check', async () => {
    // 2048 lines of 100 bytes: the write carries 200 KiB; the read answers what fits budgets.readChars (100,000
    // characters as a model sees them), still well past a queue message's 64 KiB.
    const content = `${'x'.repeat(99)}\n`.repeat(2 * KiB);
    const write = await srv.api('/file/write', { project_id: 'p1', path: 'big.txt', content });
    expect(write.status, JSON.stringify(write.body)).to.equal(200);
    const read = await srv.api('/file/read', { project_id: 'p1', path: 'big.txt' });
    expect(read.status).to.equal(200);
    expect(read.body.content.length).to.be.greaterThan(64 * KiB);
    expect(content.startsWith(read.body.content)).to.equal(true);
    expect(read.body.next_start_line).to.equal(read.body.end_line + 1);
  });

  it('serves a command through the jobs API from its record', async () => {
    const started = await srv.api('/execute', { project_id: 'p1', command: 'sleep 1; echo late', wait_s: 0 });
    expect(started.status).to.equal(200);
    expect(['queued', 'running']).to.include(started.body.status);
    const id = started.body.job_id as string;
    const done = await srv.api(`/jobs/${id}?wait_s=20`);
    expect(done.status, JSON.stringify(done.body)).to.equal(200);
    let view = done.body;
    for (let i = 0; i < 20 && view.status === 'running'; i++) view = (await srv.api(`/jobs/${id}?wait_s=5&stdout_offset=${view.stdout_offset}`)).body;
    expect(view.status).to.equal('completed');
    const listed = await srv.api('/jobs?project_id=p1');
    expect(listed.body.jobs.map((j: { job_id: string }) => j.job_id)).to.include(id);
  });

  it('moves a job that crashes its thread every time to the poison queue and tells its caller', async () => {
    const res = await srv.api('/file/read', { project_id: 'p1', path: 'crash-thread.txt' });
    expect(res.status, JSON.stringify(res.body)).to.equal(500);
    expect(res.body.error.code).to.equal('job_poisoned');
    expect(res.body.error.message).to.contain(`${prefix}-jobs-poison`);
    const poison = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(`${prefix}-jobs-poison`);
    const peeked = await poison.peekMessages({ numberOfMessages: 32 });
    const jobs = peeked.peekedMessageItems.map(
      (m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString()) as { job: { id: string; payload: { path: string } } },
    );
    expect(jobs.map((j) => j.job.id)).to.include(res.body.error.job_id);
    // The server still serves: the crashed threads were replaced.
    expect((await srv.api('/file/read', { project_id: 'p1', path: 'a.txt' })).status).to.equal(200);
  });
});
