/**
 * Store outages, against Azurite behind a TCP proxy the test controls: a supervisor whose store is unreachable at
 * start serves the working copies on its disk, answers a project it does not hold with 503 store_unavailable and
 * Retry-After, and saves once the store is back; a connection blackholed in the middle of a save fails that save
 * within its deadline and leaves the project free for its next jobs.
 */
import { rm } from 'node:fs/promises';
import { expect } from 'chai';
import { type Azurite, azureStore, startAzurite, uniqueContainerName } from './helpers/azurite.js';
import { type ApiResponse, startServer, storedFile, storedPaths, type TestServer, tempDir } from './helpers/harness.js';
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.js';

/** Short deadlines and no janitor run during a test; few threads (each loads the Azure SDK on first use). */
const QUICK = { cache: { janitorIntervalS: 3600 }, pool: { maxThreads: 2 }, commands: { threads: 1 } };

describe('store outages (Azurite behind a TCP proxy)', function () {
  this.timeout(120_000);
  let azurite: Azurite;
  let proxy: TcpProxy;
  const servers: TestServer[] = [];
  const dirs: string[] = [];

  before(async () => {
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.stop();
  });
  beforeEach(async () => {
    proxy = await startTcpProxy(Number(new URL(azurite.blobUrl).port));
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.sup.close({ force: true }).catch(() => {});
    await proxy.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  /** A server on `dataDir` whose Blob endpoint is the proxy, with deadlines of `deadlineBaseS` + size / 4 MiB/s. */
  async function serve(dataDir: string, container: string, deadlineBaseS: number): Promise<TestServer> {
    const connectionString = azurite.connectionString.replace(
      `BlobEndpoint=${azurite.blobUrl}`,
      `BlobEndpoint=http://127.0.0.1:${proxy.port}/devstoreaccount1`,
    );
    const store = { backend: 'azure', azure: { connectionString, container, deadlineBaseS, minBytesPerS: 4 * 1024 * 1024 } };
    const s = await startServer({ dataDir, store, ...QUICK });
    servers.push(s);
    return s;
  }

  async function stop(s: TestServer): Promise<void> {
    servers.splice(servers.indexOf(s), 1);
    await s.sup.close();
  }

  function expectOk(r: ApiResponse, what: string): void {
    expect(r.status, `${what}: ${JSON.stringify(r.body)}`).to.be.oneOf([200, 201]);
  }

  it('starts with the store down, serves the cached copy, answers 503 + Retry-After for the rest, and saves once it is back', async () => {
    const dataDir = await tempDir('toolhost-outage-');
    dirs.push(dataDir);
    const container = uniqueContainerName('outage');

    // An earlier run on the same data dir: "kept" stays cached, "away" is stored but evicted from this disk.
    const first = await serve(dataDir, container, 3);
    expectOk(await first.putProject('kept', { 'a.txt': 'kept v1\n' }), 'PUT kept');
    expectOk(await first.putProject('away', { 'b.txt': 'away\n' }), 'PUT away');
    expectOk(await first.api('/file/read', { project_id: 'kept', path: 'a.txt' }), 'read kept');
    expectOk(await first.api('/projects/away/cache', undefined, { method: 'DELETE' }), 'evict away');
    await stop(first);

    proxy.setMode('refuse');
    const s = await serve(dataDir, container, 3);

    const health = await s.api('/health');
    expect(health.body.status).to.equal('degraded');
    expect(health.body.store.status).to.equal('unreachable');
    expect(health.body.store.outage.last_error.code).to.equal('store_unavailable');
    expect(health.body.reasons.join(' ')).to.include('the project store is unreachable since');
    const anonymous = await s.api('/health', undefined, { token: null });
    expect(anonymous.body).to.deep.equal({ status: 'degraded' });

    // The cached copy works offline, and takes changes.
    const read = await s.api('/file/read', { project_id: 'kept', path: 'a.txt' });
    expectOk(read, 'read kept offline');
    expect(JSON.stringify(read.body)).to.include('kept v1');
    expectOk(await s.api('/file/write', { project_id: 'kept', path: 'a.txt', content: 'kept v2\n' }), 'write kept offline');

    // A project this disk does not hold: 503 from the pool thread's own store client, through the pump.
    for (const [route, body] of [
      ['/file/read', { project_id: 'away', path: 'b.txt' }],
      ['/execute', { project_id: 'away', command: 'cat b.txt' }],
    ] as const) {
      const r = await s.api(route, body);
      expect(r.status, `${route}: ${JSON.stringify(r.body)}`).to.equal(503);
      expect(r.body.error.code).to.equal('store_unavailable');
      expect(r.body.error.message).to.include('Retry after').and.include('cached on this server keep working');
      expect(r.body.error.message).to.not.include('Eby8vdM02xNOcqF');
      expect(Number(r.headers.get('retry-after')))
        .to.be.a('number')
        .and.be.greaterThan(0);
    }

    // A save while the store is away fails, says so, and keeps the copy dirty.
    const failed = await s.api('/projects/kept/save', {});
    expect(failed.status, JSON.stringify(failed.body)).to.equal(503);
    expect(failed.body.error.code).to.equal('store_unavailable');
    expect(failed.headers.get('retry-after')).to.match(/^\d+$/);
    expect((await s.api('/projects/kept')).body.dirty).to.equal(true);

    proxy.setMode('forward');
    const saved = await s.api('/projects/kept/save', {});
    expectOk(saved, 'save kept after the outage');
    expect(saved.body.saved).to.equal(true);
    expect(await storedFile(await azureStore(azurite, container), 'kept', 'a.txt')).to.equal('kept v2\n');

    // /health follows: the supervisor's own client is probed again as soon as a save got through.
    let status = '';
    while (status !== 'ok') {
      status = (await s.api('/health')).body.status;
      if (status !== 'ok') await new Promise((r) => setTimeout(r, 200));
    }
    expect((await s.api('/health')).body.store).to.deep.equal({ backend: 'azure', status: 'ok' });
    const away = await s.api('/file/read', { project_id: 'away', path: 'b.txt' });
    expectOk(away, 'read away after the outage');
    expect(JSON.stringify(away.body)).to.include('away');
  });

  it('a save whose connection is blackholed fails store_unavailable within its deadline and frees the project', async () => {
    const dataDir = await tempDir('toolhost-blackhole-');
    dirs.push(dataDir);
    const container = uniqueContainerName('blackhole');
    const s = await serve(dataDir, container, 2);
    expectOk(await s.putProject('big', { 'small.txt': 'small\n' }), 'PUT big');
    // Incompressible, so the layer the save uploads is as large: the cut falls inside its upload.
    expectOk(await s.api('/execute', { project_id: 'big', command: 'head -c 12582912 /dev/urandom > blob.bin && echo done' }), 'write 12 MiB');

    const cut = proxy.blackholeAfter(1024 * 1024);
    const save = s.api('/projects/big/save', {});
    await cut;
    const failed = await save;
    expect(failed.status, JSON.stringify(failed.body)).to.equal(503);
    expect(failed.body.error.code).to.equal('store_unavailable');
    expect(failed.body.error.message).to.include('client-side deadline').and.include('store.azure.deadlineBaseS');
    expect(failed.body.error.deadline_s).to.be.greaterThan(0);

    // The project's next job runs, and so does the next save (it takes the project's lock) once the store answers.
    const read = await s.api('/file/read', { project_id: 'big', path: 'small.txt' });
    expectOk(read, 'read after the failed save');
    proxy.setMode('forward');
    const again = await s.api('/projects/big/save', {});
    expectOk(again, 'save after the blackhole');
    expect(again.body.dirty).to.equal(false);
    expect(await storedPaths(await azureStore(azurite, container), 'big')).to.include('blob.bin');
  });
});
