/**
 * Write-back: working copies go back to the store on save, eviction and shutdown, conditionally on the ETag they
 * came from, and nothing an agent wrote is lost. Against Azurite (the real Blob API) and the local store.
 */

import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { expect } from 'chai';
import type { ProjectStore } from '../lib/store/project-store.js';
import { type Azurite, azureStore, blobFile, startAzurite } from './helpers/azurite.js';
import { buildArchive, localStore, startServer, storedFile, type TestServer, tempDir, uploadAsAnotherWriter } from './helpers/harness.js';

describe('projects: write-back to Azure Blob Storage (Azurite)', function () {
  this.timeout(60_000);
  let azurite: Azurite;
  let service: BlobServiceClient;
  let seq = 0;
  const servers: TestServer[] = [];

  before(async () => {
    azurite = await startAzurite();
    service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  });
  after(async () => {
    await azurite?.stop();
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close({ force: true });
  });

  /** A server on a fresh container; returns it, the container and a store client of it (to read projects as stored). */
  async function azureServer(extra: Record<string, unknown> = {}): Promise<{ s: TestServer; container: ContainerClient; store: ProjectStore }> {
    const name = `wb-${process.pid}-${++seq}`;
    const s = await startServer({
      store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container: name }, ...((extra.store as object) ?? {}) },
      cache: { janitorIntervalS: 3600 },
      ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'store')),
    });
    servers.push(s);
    return { s, container: service.getContainerClient(name), store: await azureStore(azurite, name) };
  }

  async function blobNames(container: ContainerClient): Promise<string[]> {
    const names: string[] = [];
    for await (const b of container.listBlobsFlat()) names.push(b.name);
    return names.sort();
  }

  /** The blob names that are not layer data (layers stay until collection, which these tests do not run). */
  async function projectBlobs(container: ContainerClient): Promise<string[]> {
    return (await blobNames(container)).filter((n) => !n.startsWith('layers/'));
  }

  for (const format of ['tar.gz', 'zip'] as const) {
    it(`an edit survives eviction: the next request re-materializes from Blob and shows it (${format})`, async () => {
      const { s, container, store } = await azureServer();
      expect((await s.putProject('p', { 'src/a.txt': 'one\n', 'b.txt': 'keep\n' }, format)).status).to.equal(201);
      const uploaded = (await s.api('/projects/p')).body;
      // Whatever archive format it came in, an upload is stored as layers.
      expect(uploaded).to.include({ cached: true, dirty: false, format: 'layers' });

      const edit = await s.api('/file/edit', { project_id: 'p', path: 'src/a.txt', old_str: 'one', new_str: 'two' });
      expect(edit.status, JSON.stringify(edit.body)).to.equal(200);
      expect((await s.api('/projects/p')).body.dirty).to.equal(true);

      const evicted = await s.api('/projects/p/cache', undefined, { method: 'DELETE' });
      expect(evicted.status, JSON.stringify(evicted.body)).to.equal(200);
      expect(evicted.body).to.deep.equal({ project_id: 'p', evicted: true });
      const after = (await s.api('/projects/p')).body;
      expect(after).to.include({ cached: false, dirty: false, format: 'layers' });
      expect(after.etag).to.not.equal(uploaded.etag);
      // The manifest and no archive; the upload's base layer and the save's delta, each data and index.
      expect(await projectBlobs(container)).to.deep.equal(['p.layers.json']);
      const layers = (await blobNames(container)).filter((n) => n.startsWith('layers/'));
      expect(layers).to.have.length(4);
      for (const n of layers) expect(n).to.match(/^layers\/[0-9a-f]{64}\.(tar|json)\.gz$/);
      expect(await storedFile(store, 'p', 'src/a.txt')).to.equal('two\n');
      expect(await storedFile(store, 'p', 'b.txt')).to.equal('keep\n');

      const read = await s.api('/file/read', { project_id: 'p', path: 'src/a.txt' });
      expect(read.status).to.equal(200);
      expect(read.body.content).to.equal('two\n');
      const again = (await s.api('/projects/p')).body;
      expect(again).to.include({ cached: true, dirty: false });
      expect(again.cache.source_etag).to.equal(after.etag);
    });
  }

  /** Other writers that change the project behind the server's back; each resolves with the ETag the store then reports. */
  const rivals: { name: string; write(store: ProjectStore, container: ContainerClient): Promise<{ etag: string; archive: string | null }> }[] = [
    {
      name: 'another toolhost stores the project (its manifest changes)',
      write: async (store) => ({ etag: await uploadAsAnotherWriter(store, 'p', { 'a.txt': 'theirs\n' }), archive: null }),
    },
    {
      name: 'an operator drops a newer plain archive over it (the newer one is the project)',
      write: async (store, container) => {
        // Blob times have whole seconds and a tie goes to the manifest: drop the archive in a later second.
        const manifestAt = Date.parse((await store.stat('p'))!.modifiedAt);
        while (Date.now() < manifestAt + 1100) await new Promise((r) => setTimeout(r, 100));
        const put = await container.getBlockBlobClient('p.tar.gz').uploadData(await buildArchive({ 'a.txt': 'theirs\n' }));
        expect((await store.stat('p'))!.format, 'the dropped archive is the project now').to.equal('tar.gz');
        return { etag: put.etag!, archive: 'p.tar.gz' };
      },
    },
  ];
  for (const rival of rivals) {
    it(`a save that lost a race overwrites nothing: 409 names the stored project and the conflict copy, both exist (${rival.name})`, async () => {
      const { s, container, store } = await azureServer();
      await s.putProject('p', { 'a.txt': 'base\n' });
      await s.api('/file/write', { project_id: 'p', path: 'a.txt', content: 'mine\n' });
      const theirs = await rival.write(store, container);

      const saved = await s.api('/projects/p/save', {});
      expect(saved.status, JSON.stringify(saved.body)).to.equal(409);
      const { error } = saved.body;
      expect(error.code).to.equal('save_conflict');
      // The copy came from the layered project, so that is the one named.
      expect(error.blob).to.equal('p.layers.json');
      expect(error.conflict_blob).to.match(/^p\.conflict-\d{8}T\d{9}Z\.tar\.gz$/);
      expect(error.current_etag).to.equal(theirs.etag);
      expect(error.message).to.include(error.conflict_blob);

      expect(await projectBlobs(container)).to.deep.equal([error.conflict_blob, 'p.layers.json', ...(theirs.archive ? [theirs.archive] : [])]);
      expect(await storedFile(store, 'p', 'a.txt')).to.equal('theirs\n');
      expect((await store.stat('p'))!.etag, "the other writer's version is still the project").to.equal(theirs.etag);
      expect(await blobFile(container, error.conflict_blob, 'a.txt')).to.equal('mine\n');
      // The conflict copy is not a project of its own.
      expect((await s.api('/projects')).body.projects.map((p: { project_id: string }) => p.project_id)).to.deep.equal(['p']);
      // The work is in the store (as the conflict copy), so the copy counts as saved: it says so, and the merged
      // result can be uploaded over it as the message advises.
      const info = (await s.api('/projects/p')).body;
      expect(info.dirty).to.equal(false);
      expect(info.cache.last_conflict.conflict_blob).to.equal(error.conflict_blob);
      const merged = await s.api('/projects/p?replace=true', await buildArchive({ 'a.txt': 'merged\n' }), { method: 'PUT' });
      expect(merged.status, JSON.stringify(merged.body)).to.equal(200);
      expect((await s.api('/file/read', { project_id: 'p', path: 'a.txt' })).body.content).to.equal('merged\n');
      expect(await storedFile(store, 'p', 'a.txt')).to.equal('merged\n');
      expect(await projectBlobs(container)).to.deep.equal([error.conflict_blob, 'p.layers.json']);
    });
  }

  it('GET /projects/:id reports cached, dirty, size, last access, source ETag and last save; a clean save uploads nothing', async () => {
    const { s } = await azureServer();
    await s.putProject('p', { 'a.txt': 'hello\n' });
    const clean = await s.api('/projects/p/save', {});
    expect(clean.status).to.equal(200);
    expect(clean.body).to.include({ project_id: 'p', saved: false, dirty: false, last_save: null });

    await s.api('/execute', { project_id: 'p', command: 'echo more >> a.txt' });
    const dirty = (await s.api('/projects/p')).body;
    expect(dirty).to.include({ cached: true, dirty: true });
    expect(dirty.cache).to.include({ size_bytes: 11, last_save: null, writeback_error: null });
    expect(Date.parse(dirty.cache.last_access)).to.be.a('number').and.not.NaN;
    expect(dirty.cache.source_etag).to.equal(dirty.etag);

    const saved = await s.api('/projects/p/save', {});
    expect(saved.status, JSON.stringify(saved.body)).to.equal(200);
    expect(saved.body).to.include({ saved: true, dirty: false });
    const now = (await s.api('/projects/p')).body;
    expect(now.etag).to.equal(saved.body.etag).and.not.equal(dirty.etag);
    expect(now.cache.source_etag).to.equal(saved.body.etag);
    expect(now.cache.last_save).to.equal(saved.body.last_save);
    expect(now.dirty).to.equal(false);
  });

  it('packing leaves out store.exclude patterns and keeps .git', async () => {
    const { s, store } = await azureServer({ store: { exclude: ['node_modules/', '*.log'] } });
    await s.putProject('p', { 'a.txt': 'x\n', '.git/HEAD': 'ref: refs/heads/main\n' });
    await s.api('/execute', { project_id: 'p', command: 'mkdir -p node_modules/m && echo m > node_modules/m/i.js && echo l > build.log && echo y > b.txt' });
    expect((await s.api('/projects/p/save', {})).status).to.equal(200);
    expect(await storedFile(store, 'p', 'b.txt')).to.equal('y\n');
    expect(await storedFile(store, 'p', '.git/HEAD')).to.equal('ref: refs/heads/main\n');
    expect(await storedFile(store, 'p', 'node_modules/m/i.js')).to.equal(null);
    expect(await storedFile(store, 'p', 'build.log')).to.equal(null);
  });

  it('a symlink leading outside the project is left out of the save (named in the answer), so the project still loads', async () => {
    const { s, store } = await azureServer();
    await s.putProject('p', { 'a.txt': 'x\n' });
    await s.api('/execute', { project_id: 'p', command: 'mkdir venv && ln -s /usr/bin/env venv/python && ln -s ../../x venv/up && ln -s ../a.txt venv/ok' });
    const saved = await s.api('/projects/p/save', {});
    expect(saved.status, JSON.stringify(saved.body)).to.equal(200);
    expect(saved.body.skipped.map((e: { name: string }) => e.name)).to.deep.equal(['venv/python', 'venv/up']);
    expect((await s.api('/projects/p/cache', undefined, { method: 'DELETE' })).body.evicted).to.equal(true);
    const listed = await s.api('/file/list', { project_id: 'p', path: 'venv' });
    expect(listed.status, JSON.stringify(listed.body)).to.equal(200);
    expect(listed.body.entries.map((e: { path: string }) => e.path)).to.deep.equal(['venv/ok']);
    expect(await storedFile(store, 'p', 'venv/ok')).to.equal('x\n');
  });

  it('refuses a save that could not be loaded again (a bomb-like file, a name with a backslash): 422, the copy stays dirty', async () => {
    const { s, store } = await azureServer({ archive: { maxRatio: 10 } });
    await s.putProject('p', { 'a.txt': 'x\n' });
    await s.api('/execute', { project_id: 'p', command: 'head -c 4194304 /dev/zero > zeros.bin' });
    const bomb = await s.api('/projects/p/save', {});
    expect(bomb.status, JSON.stringify(bomb.body)).to.equal(422);
    expect(bomb.body.error.code).to.equal('archive_too_large');
    expect(bomb.body.error.message).to.include('store.exclude');
    const info = (await s.api('/projects/p')).body;
    expect(info.dirty).to.equal(true);
    expect(info.cache.writeback_error.code).to.equal('archive_too_large');

    await s.api('/execute', { project_id: 'p', command: "rm zeros.bin && echo y > 'back\\slash.txt'" });
    const named = await s.api('/projects/p/save', {});
    expect(named.status, JSON.stringify(named.body)).to.equal(422);
    expect(named.body.error.code).to.equal('unsafe_archive_entry');
    expect(named.body.error.message).to.include('back\\slash.txt');
    expect((await s.api('/projects/p/cache', undefined, { method: 'DELETE' })).status).to.equal(422);
    expect((await s.api('/projects/p')).body).to.include({ cached: true, dirty: true });
    expect(await storedFile(store, 'p', 'a.txt')).to.equal('x\n');
  });

  it('graceful shutdown writes dirty projects back', async () => {
    const { s, store } = await azureServer();
    await s.putProject('p', { 'a.txt': 'before\n' });
    await s.api('/file/write', { project_id: 'p', path: 'a.txt', content: 'after\n' });
    servers.splice(servers.indexOf(s), 1);
    await s.close();
    expect(await storedFile(store, 'p', 'a.txt')).to.equal('after\n');
  });

  it('save and evict answer 404 for an unknown project and 400 for a bad id', async () => {
    const { s } = await azureServer();
    expect((await s.api('/projects/nope/save', {})).body.error.code).to.equal('project_not_found');
    expect((await s.api('/projects/nope/cache', undefined, { method: 'DELETE' })).status).to.equal(404);
    expect((await s.api('/projects/..%2Fx/save', {})).status).to.equal(400);
  });
});

describe('projects: the janitor (local store, controlled clock)', function () {
  this.timeout(60_000);
  const HOUR = 3_600_000;
  let clock = Date.now();
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close({ force: true });
  });

  async function server(cache: Record<string, unknown> = {}): Promise<TestServer> {
    clock = Date.now();
    const s = await startServer({ cache: { janitorIntervalS: 3600, ...cache } }, { now: () => clock });
    servers.push(s);
    return s;
  }

  it('evicts projects idle past ttlHours, keeps recently used and busy ones, and writes dirty ones back first', async () => {
    const s = await server({ ttlHours: 24 });
    for (const id of ['idle', 'recent', 'busy']) await s.putProject(id, { 'a.txt': `${id}\n` });
    await s.api('/file/write', { project_id: 'idle', path: 'a.txt', content: 'changed\n' });
    const job = await s.api('/execute', { project_id: 'busy', command: 'sleep 30', background: true });
    expect(job.body.status).to.be.oneOf(['queued', 'running']);

    clock += 25 * HOUR;
    await s.api('/file/read', { project_id: 'recent', path: 'a.txt' });
    const report = await s.sup.runJanitor();
    expect(report.evicted).to.deep.equal(['idle']);
    expect(report.kept).to.deep.equal(['busy']);
    expect(report.failed).to.deep.equal([]);

    const cached = Object.fromEntries(
      ((await s.api('/projects')).body.projects as { project_id: string; cached: boolean }[]).map((p) => [p.project_id, p.cached]),
    );
    expect(cached).to.deep.equal({ busy: true, idle: false, recent: true });
    expect(await storedFile(await localStore(join(s.dataDir, 'store')), 'idle', 'a.txt')).to.equal('changed\n');
    await s.api(`/jobs/${job.body.job_id}`, undefined, { method: 'DELETE' });
  });

  it('evicts the least recently used copies beyond cache.maxBytes', async () => {
    const s = await server({ maxBytes: 2500 });
    for (const id of ['a', 'b', 'c']) {
      await s.putProject(id, { 'f.txt': 'x'.repeat(1000) });
      clock += 1000;
    }
    await s.api('/file/read', { project_id: 'a', path: 'f.txt' });
    const report = await s.sup.runJanitor();
    expect(report.evicted).to.deep.equal(['b']);
    expect((await s.api('/health')).body.cache).to.include({ projects: 2, bytes: 2000 });
  });

  it('a failing write-back keeps the project, shows on /health, and is retried after cache.retryS', async () => {
    const s = await server({ ttlHours: 1, retryS: 5 * 3600 });
    await s.putProject('p', { 'a.txt': 'v1\n' });
    await s.api('/file/write', { project_id: 'p', path: 'a.txt', content: 'v2\n' });
    // The store folder turns into a file: every write to it fails, as with a full or read-only disk.
    const store = join(s.dataDir, 'store');
    await rename(store, `${store}.away`);
    await writeFile(store, 'not a folder');

    clock += 2 * HOUR;
    const first = await s.sup.runJanitor();
    expect(first.evicted).to.deep.equal([]);
    expect(first.failed.map((f) => f.project_id)).to.deep.equal(['p']);
    const health = (await s.api('/health')).body;
    expect(health.status).to.equal('degraded');
    expect(health.writeback.failing).to.have.length(1);
    expect(health.writeback.failing[0]).to.include({ project_id: 'p', attempts: 1 });
    const read = await s.api('/file/read', { project_id: 'p', path: 'a.txt' });
    expect(read.body.content).to.equal('v2\n');
    // The store cannot even be asked, yet the project's cache state shows.
    const info = await s.api('/projects/p');
    expect(info.status, JSON.stringify(info.body)).to.equal(200);
    expect(info.body).to.include({ cached: true, dirty: true, archive_bytes: null });
    expect(info.body.store_error.code).to.be.a('string');
    expect(info.body.cache.writeback_error.attempts).to.equal(1);

    // Not retried before retryS, even though it is still idle and dirty.
    await rm(store);
    await rename(`${store}.away`, store);
    clock += 2 * HOUR;
    expect((await s.sup.runJanitor()).kept).to.deep.equal(['p']);

    clock += 3 * HOUR + 1000;
    const retried = await s.sup.runJanitor();
    expect(retried.evicted).to.deep.equal(['p']);
    expect((await s.api('/health')).body).to.deep.include({ status: 'ok', writeback: { failing: [] } });
    expect(await storedFile(await localStore(store), 'p', 'a.txt')).to.equal('v2\n');
  });

  it('a command that arrives while the project is being replaced never works in the copy the replacement deletes', async () => {
    const s = await server();
    const many: Record<string, string> = {};
    for (let i = 0; i < 3000; i++) many[`d${i % 30}/f${i}.txt`] = `${i}\n`;
    const archive = await buildArchive(many);
    await s.putProject('p', { 'a.txt': 'x\n' });
    for (let round = 0; round < 4; round++) {
      const put = s.api('/projects/p?replace=true', archive, { method: 'PUT' });
      await new Promise((r) => setTimeout(r, 20 * round));
      const exec = await s.api('/execute', { project_id: 'p', command: `echo work > w${round}.txt` });
      const replaced = await put;
      expect(exec.status, JSON.stringify(exec.body)).to.equal(200);
      expect([200, 409]).to.include(replaced.status);
      // Whichever came first, the command's file is in the copy the project now has.
      const read = await s.api('/file/read', { project_id: 'p', path: `w${round}.txt` });
      expect(read.status, `round ${round}: PUT ${replaced.status}, ${JSON.stringify(read.body)}`).to.equal(200);
      await s.api('/projects/p/save', {});
    }
  });

  it('DELETE /projects/:id/cache refuses a project with running jobs (409 project_busy) and keeps it', async () => {
    const s = await server();
    await s.putProject('p', { 'a.txt': 'x\n' });
    const job = await s.api('/execute', { project_id: 'p', command: 'sleep 30', background: true });
    const res = await s.api('/projects/p/cache', undefined, { method: 'DELETE' });
    expect(res.status).to.equal(409);
    expect(res.body.error.code).to.equal('project_busy');
    expect((await s.api('/projects/p')).body.cached).to.equal(true);
    await s.api(`/jobs/${job.body.job_id}`, undefined, { method: 'DELETE' });
  });

  it('a corrupt cache index stops the start with a message naming the file and what to do', async () => {
    const dataDir = await tempDir('toolhost-badindex-');
    try {
      await writeFile(join(dataDir, 'cache-index.json'), '{"version":1,"projects":');
      let failure: Error | undefined;
      await startServer({ dataDir }).then(
        (s) => s.close(),
        (err: Error) => (failure = err),
      );
      expect(failure?.message).to.include(join(dataDir, 'cache-index.json')).and.include('move it away');
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('the cache index survives a restart: a dirty copy is still known dirty and then saved, not lost', async () => {
    const dataDir = await tempDir('toolhost-restart-');
    try {
      const first = await startServer({ dataDir, cache: { janitorIntervalS: 3600 } });
      await first.putProject('p', { 'a.txt': 'v1\n' });
      await first.api('/file/write', { project_id: 'p', path: 'a.txt', content: 'v2\n' });
      // The store is unwritable while the supervisor stops, so its shutdown write-back fails.
      await rename(join(dataDir, 'store'), join(dataDir, 'store.away'));
      await writeFile(join(dataDir, 'store'), 'not a folder');
      await first.sup.close();
      await rm(join(dataDir, 'store'));
      await rename(join(dataDir, 'store.away'), join(dataDir, 'store'));

      const second = await startServer({ dataDir, cache: { janitorIntervalS: 3600 } });
      try {
        const info = (await second.api('/projects/p')).body;
        expect(info).to.include({ cached: true, dirty: true });
        expect((await second.api('/file/read', { project_id: 'p', path: 'a.txt' })).body.content).to.equal('v2\n');
        const saved = await second.api('/projects/p/save', {});
        expect(saved.status, JSON.stringify(saved.body)).to.equal(200);
        expect(saved.body).to.include({ saved: true, dirty: false });
        expect(await storedFile(await localStore(join(dataDir, 'store')), 'p', 'a.txt')).to.equal('v2\n');
      } finally {
        await second.sup.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
