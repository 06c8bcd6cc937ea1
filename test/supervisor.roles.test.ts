/**
 * Roles by composition (Azurite): an api process builds no pools, no project cache and no command registry, and
 * shows it: /health has no pool, jobs or cache figures, /metrics no worker metrics, its data dir no cache index.
 * GET /projects there answers from the store, in the shape a worker gives. A worker process beside it on the same
 * queue and store has all of them, and runs what the api process accepts.
 */

import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { expect } from 'chai';
import { type Azurite, containerClient, startAzurite, uniqueContainerName } from './helpers/azurite.js';
import { buildArchive, startServer, type TestServer } from './helpers/harness.js';

/** The metrics an exposition text declares (a gauge with no sample yet is declared all the same). */
function metricNames(text: string): Set<string> {
  return new Set(text.split('\n').flatMap((line) => /^# TYPE (\S+) /.exec(line)?.[1] ?? []));
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** The project cache's index (supervisor/cache-index.ts), written when the cache starts. */
const INDEX = 'cache-index.json';

const WORKER_METRICS = [
  'toolhost_pool_threads',
  'toolhost_pool_busy',
  'toolhost_jobs_running',
  'toolhost_commands_running',
  'toolhost_cache_bytes',
  'toolhost_store_writeback_failing',
  'toolhost_jobs_total',
  'toolhost_job_duration_seconds',
  'toolhost_cache_hits_total',
];

describe('roles: an api process is built without the worker parts (Azurite)', function () {
  this.timeout(120_000);
  let azurite: Azurite;
  let store: ContainerClient;
  let api: TestServer;
  let worker: TestServer;

  before(async () => {
    azurite = await startAzurite();
    const prefix = uniqueContainerName('rl').slice(0, 16);
    const container = `${prefix}-projects`;
    store = containerClient(azurite, container);
    await store.create();
    const archive = await buildArchive({ 'a.txt': 'from the store\n' });
    await store.getBlockBlobClient('p1.tar.gz').upload(archive, archive.length);
    const common = {
      store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container } },
      queue: { backend: 'azure', azure: { connectionString: azurite.connectionString, prefix } },
      pool: { maxThreads: 2 },
      commands: { threads: 1, sandbox: 'none' },
    };
    api = await startServer({ ...common, role: 'api', nodeId: 'api1' });
    worker = await startServer({ ...common, role: 'worker', nodeId: 'w1' });
  });

  after(async () => {
    await api?.close({ force: true });
    await worker?.close({ force: true });
    await azurite?.stop();
  });

  it("/health of an api process has no pool, jobs, cache or write-back figures; a worker's has them", async () => {
    const a = await api.api('/health');
    expect(a.status).to.equal(200);
    expect(a.body).to.include({ status: 'ok', role: 'api', node: 'api1' });
    expect(a.body.queue).to.deep.equal({ backend: 'azure', depth: 0 });
    for (const key of ['pool', 'jobs', 'cache', 'writeback']) expect(a.body, key).not.to.have.property(key);

    const w = await worker.api('/health');
    expect(w.body).to.include({ status: 'ok', role: 'worker', node: 'w1' });
    expect(w.body.pool.threads).to.be.greaterThan(0);
    for (const key of ['jobs', 'cache', 'writeback']) expect(w.body, key).to.have.property(key);
  });

  it('/metrics of an api process has its queue and the process defaults but none of the worker metrics', async () => {
    const a = metricNames((await api.api('/metrics')).body as string);
    expect(a.has('toolhost_queue_depth')).to.equal(true);
    expect(a.has('process_cpu_user_seconds_total')).to.equal(true);
    for (const name of WORKER_METRICS) expect(a.has(name), name).to.equal(false);
    expect([...a].filter((n) => /^toolhost_(jobs|cache|store|pool)_/.test(n))).to.deep.equal([]);

    const w = metricNames((await worker.api('/metrics')).body as string);
    for (const name of WORKER_METRICS) expect(w.has(name), name).to.equal(true);
  });

  it('an api process keeps no index of working copies, and nothing lives in its cache folder', async () => {
    // (Running as root, prepareDataDir makes the folders for every role; what the cache writes is its index.)
    expect(await exists(join(api.dataDir, INDEX)), 'api index').to.equal(false);
    expect(await exists(join(worker.dataDir, INDEX)), 'worker index').to.equal(true);
    expect(await readdir(join(api.dataDir, 'projects')).catch(() => [])).to.deep.equal([]);
  });

  it('GET /projects and GET /projects/:id on an api process answer from the store, as a worker without the copy does', async () => {
    const list = await api.api('/projects');
    expect(list.status).to.equal(200);
    expect(list.body.projects).to.have.length(1);
    expect(list.body.projects[0]).to.include({ project_id: 'p1', format: 'tar.gz', cached: false, dirty: false });
    expect(list.body.projects[0].etag).to.be.a('string');
    expect(list.body).to.deep.equal((await worker.api('/projects')).body);

    const info = await api.api('/projects/p1');
    expect(info.status).to.equal(200);
    expect(info.body).to.include({ project_id: 'p1', cached: false, dirty: false, cache: null });
    expect(info.body).to.deep.equal((await worker.api('/projects/p1')).body);

    const missing = await api.api('/projects/nope');
    expect(missing.status).to.equal(404);
    expect(missing.body.error.code).to.equal('project_not_found');
  });

  it('refuses the routes that need working copies, and has no janitor to run', async () => {
    const put = await api.api('/projects/p2', new Uint8Array(await buildArchive({ 'b.txt': 'b\n' })), { method: 'PUT' });
    const save = await api.api('/projects/p1/save', {});
    const evict = await api.api('/projects/p1/cache', undefined, { method: 'DELETE' });
    for (const r of [put, save, evict]) {
      expect(r.status).to.equal(409);
      expect(r.body.error.code).to.equal('not_on_this_role');
    }
    expect(await store.getBlockBlobClient('p2.tar.gz').exists()).to.equal(false);
    const janitor = await api.sup.runJanitor().then(
      () => null,
      (err: unknown) => err,
    );
    expect(janitor).to.have.property('code', 'not_on_this_role');
  });

  it('takes a tool call and gets its answer from the worker, whose cache then holds the copy', async () => {
    const read = await api.api('/file/read', { project_id: 'p1', path: 'a.txt' });
    expect(read.status, JSON.stringify(read.body)).to.equal(200);
    expect(JSON.stringify(read.body)).to.contain('from the store');
    expect((await worker.api('/projects/p1')).body).to.include({ cached: true });
    // The api process tells what the store holds; working copies live on workers.
    expect((await api.api('/projects/p1')).body).to.include({ cached: false, cache: null });
  });

  it('runs a persistent shell session through the api process on the worker that holds the project', async () => {
    const made = await api.api('/sessions', { project_id: 'p1' });
    expect(made.status, JSON.stringify(made.body)).to.equal(200);
    const id = made.body.session_id as string;
    const first = await api.api(`/sessions/${id}/exec`, { command: 'export ROLE=worker; cd /tmp; cat "$OLDPWD/a.txt"' });
    expect(first.body.stdout).to.equal('from the store\n');
    expect(first.headers.get('x-toolhost-worker')).to.equal('w1');
    // The answer after wait_s is the job's view as it is then: "running" once the worker has taken it, "queued"
    // while the job is still on its way through the worker's queue (under the whole suite's load on Azurite that
    // has taken longer than 0.1 s). Either way it is not over, and the job id fetches the rest from the worker.
    const later = await api.api(`/sessions/${id}/exec`, { command: 'echo "$ROLE $PWD"; sleep 6; echo done', wait_s: 0.1 });
    expect(later.body.status).to.be.oneOf(['queued', 'running']);
    expect(later.body.job_id).to.be.a('string');
    let view = later.body;
    while (view.status === 'queued' || view.status === 'running') view = (await api.api(`/jobs/${view.job_id}?wait_s=10&stdout_offset=0`)).body;
    expect(view.status).to.equal('completed');
    expect(view.stdout).to.equal('worker /tmp\ndone\n');
    expect((await api.api(`/sessions?project_id=p1`)).body.sessions.map((x: { session_id: string }) => x.session_id)).to.deep.equal([id]);
    expect((await api.api(`/sessions/${id}`, undefined, { method: 'DELETE' })).body).to.deep.equal({ session_id: id, ended: true });
  });
});
