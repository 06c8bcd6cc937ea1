/**
 * The ProjectStore contract, run against both backends as the rest of toolhost uses them (built by openStore
 * from a configuration): a LocalStore on a temp folder, and an AzureBlobStore on a real Azurite (one emulator
 * for the suite, a fresh container per test). Then what only one backend has: lock files and copies across file
 * systems for the local store; prefixes and unreachable endpoints for Azure.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import type { ToolhostError } from '../lib/errors.js';
import { AzureBlobStore } from '../lib/store/azure-store.js';
import { openStore } from '../lib/store/create-store.js';
import { LocalStore } from '../lib/store/local-store.js';
import type { ProjectStore } from '../lib/store/project-store.js';
import { type Azurite, containerClient, startAzurite, uniqueContainerName } from './helpers/azurite.js';
import { closedPort, exists } from './helpers/probes.js';

/** One backend's store for one test. */
interface Fixture {
  store: ProjectStore;
  /** Another client of the same storage, as another pool thread or machine has. */
  another(): Promise<ProjectStore>;
  /** Every file of the folder (at any depth, "/"-separated) / blob of the container, sorted: leftovers included. */
  names(): Promise<string[]>;
  /** Puts `data` at `name` behind the store's back, as an operator or an older version might have. */
  plant(name: string, data: Buffer): Promise<void>;
}

interface Backend {
  name: string;
  fixture(): Promise<Fixture>;
}

/** Per-test folder of input archives, scratch folders and the local store. */
let work: string;
let inputs = 0;
/** One emulator for the whole file; every test gets its own container. */
let azurite: Azurite;

/** Distinct archive bytes (the store never looks inside, so they need not be a real archive). */
function content(tag: string, size = 4096): Buffer {
  return Buffer.concat([Buffer.from(`${tag}:`), randomBytes(size)]);
}

async function inputFile(data: Buffer, dir = work): Promise<string> {
  const file = join(dir, `input-${inputs++}`);
  await writeFile(file, data);
  return file;
}

async function readAll(stream: Readable): Promise<Buffer> {
  return Buffer.concat((await stream.toArray()) as Buffer[]);
}

async function rejection(promise: Promise<unknown>): Promise<ToolhostError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected the call to fail with a ToolhostError').to.be.instanceOf(Error).and.have.property('name', 'ToolhostError');
  return err as ToolhostError;
}

/** A layer's name as lib/layers makes it: `layers/<sha-256 hex>.<ext>`. */
function layerName(ext: string): string {
  return `layers/${randomBytes(32).toString('hex')}.${ext}`;
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

async function fetchBytes(store: ProjectStore, id: string): Promise<Buffer> {
  const loaded = await store.load(id, join(work, 'scratch'));
  if (loaded.kind === 'stream') return readAll(loaded.stream);
  try {
    return await readFile(loaded.file);
  } finally {
    await loaded.release();
  }
}

const local: Backend = {
  name: 'LocalStore',
  async fixture() {
    const config = loadConfig({ overrides: { dataDir: work } });
    const dir = join(work, 'store');
    return {
      store: await openStore(config),
      another: () => openStore(config),
      names: async () => (await filesUnder(dir)).sort(),
      plant: async (name, data) => {
        await mkdir(dirname(join(dir, name)), { recursive: true });
        await writeFile(join(dir, name), data);
      },
    };
  },
};

const azure: Backend = {
  name: 'AzureBlobStore',
  async fixture() {
    const container = uniqueContainerName('contract');
    const config = loadConfig({ overrides: { dataDir: work, store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container } } } });
    return {
      store: await openStore(config),
      another: () => openStore(config),
      names: () => blobNames(containerClient(azurite, container)),
      plant: async (name, data) => {
        await containerClient(azurite, container).getBlockBlobClient(name).uploadData(data);
      },
    };
  },
};

/** The files under `dir` at any depth, relative and "/"-separated (folders themselves are not listed). */
async function filesUnder(dir: string, rel = ''): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) found.push(...(await filesUnder(dir, path)));
    else found.push(path);
  }
  return found;
}

async function blobNames(client: ReturnType<typeof containerClient>): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of client.listBlobsFlat()) names.push(blob.name);
  return names.sort();
}

describe('project store', () => {
  before(async () => {
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.stop();
  });
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolhost-store-'));
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  for (const backend of [local, azure]) {
    describe(`contract: ${backend.name}`, () => {
      it('stores, lists and loads archives of both formats', async () => {
        const { store } = await backend.fixture();
        const zip = content('zip');
        const tgz = content('tgz', 10_000);
        const zipFile = await inputFile(zip);
        const alpha = await store.put('alpha', 'zip', zipFile);
        const beta = await store.put('beta', 'tar.gz', await inputFile(tgz));
        expect(alpha).to.include({ id: 'alpha', format: 'zip', size: zip.length });
        expect(beta).to.include({ id: 'beta', format: 'tar.gz', size: tgz.length });
        expect(new Date(alpha.modifiedAt).toISOString()).to.equal(alpha.modifiedAt);
        expect(await exists(zipFile), 'the input file is consumed').to.equal(false);
        expect(await store.stat('alpha')).to.deep.equal(alpha);
        expect(await store.stat('beta')).to.deep.equal(beta);
        expect(await store.list()).to.deep.equal([alpha, beta]);

        // What extraction wants: a tar.gz as a stream and a zip as a local file.
        const scratch = join(work, 'scratch');
        const streamed = await store.load('beta', scratch);
        expect(streamed).to.include({ kind: 'stream', format: 'tar.gz', etag: beta.etag, size: tgz.length });
        if (streamed.kind === 'stream') expect(await readAll(streamed.stream)).to.deep.equal(tgz);
        const filed = await store.load('alpha', scratch);
        expect(filed).to.include({ kind: 'file', format: 'zip', etag: alpha.etag });
        if (filed.kind === 'file') {
          expect(await readFile(filed.file)).to.deep.equal(zip);
          await filed.release();
        }
        expect(await readdir(scratch), 'release removes the local copy').to.deep.equal([]);
      });

      it('an unconditional put of the other format replaces the first', async () => {
        const { store, names } = await backend.fixture();
        await store.put('alpha', 'zip', await inputFile(content('zip')));
        const tgz = content('tgz');
        const stored = await store.put('alpha', 'tar.gz', await inputFile(tgz));
        expect(await store.stat('alpha')).to.deep.equal(stored);
        expect(await names()).to.deep.equal(['alpha.tar.gz']);
        expect(await store.list()).to.deep.equal([stored]);
        expect(await fetchBytes(store, 'alpha')).to.deep.equal(tgz);
      });

      it('ifNoneMatch "*" refuses a project that exists in either format', async () => {
        const { store, names } = await backend.fixture();
        const first = await store.put('alpha', 'zip', await inputFile(content('first')));
        for (const format of ['zip', 'tar.gz'] as const) {
          const data = content(`again-${format}`);
          const file = await inputFile(data);
          const err = await rejection(store.put('alpha', format, file, { ifNoneMatch: '*' }));
          expect(err.code).to.equal('save_conflict');
          expect(err.details).to.deep.equal({ project_id: 'alpha' });
          expect(await readFile(file), 'the refused file stays in place').to.deep.equal(data);
        }
        expect(await store.stat('alpha')).to.deep.equal(first);
        expect(await names()).to.deep.equal(['alpha.zip']);
        const created = await store.put('gamma', 'tar.gz', await inputFile(content('new')), { ifNoneMatch: '*' });
        expect(await store.stat('gamma')).to.deep.equal(created);
      });

      it('ifMatch with the current etag replaces the archive under a new etag', async () => {
        const { store } = await backend.fixture();
        const v1 = await store.put('alpha', 'zip', await inputFile(content('v1')));
        const data = content('v2');
        const v2 = await store.put('alpha', 'zip', await inputFile(data), { ifMatch: v1.etag });
        expect(v2.etag).to.not.equal(v1.etag);
        expect(await store.stat('alpha')).to.deep.equal(v2);
        expect(await fetchBytes(store, 'alpha')).to.deep.equal(data);
        const v3 = await store.put('alpha', 'zip', await inputFile(content('v3')), { ifMatch: v2.etag });
        expect(v3.etag).to.not.be.oneOf([v1.etag, v2.etag]);
      });

      it('ifMatch with a stale etag is a save_conflict that changes nothing', async () => {
        const { store, names } = await backend.fixture();
        const v1 = await store.put('alpha', 'zip', await inputFile(content('v1')));
        const current = content('v2');
        const v2 = await store.put('alpha', 'zip', await inputFile(current));
        const mine = content('mine');
        const file = await inputFile(mine);
        const err = await rejection(store.put('alpha', 'zip', file, { ifMatch: v1.etag }));
        expect(err.code).to.equal('save_conflict');
        expect(err.details).to.deep.equal({ project_id: 'alpha' });
        expect(await readFile(file)).to.deep.equal(mine);
        expect(await store.stat('alpha')).to.deep.equal(v2);
        expect(await fetchBytes(store, 'alpha')).to.deep.equal(current);
        expect(await names(), 'no temp file or partial upload is left').to.deep.equal(['alpha.zip']);
      });

      it('a large archive goes up in blocks and still honours its condition', async () => {
        const { store } = await backend.fixture();
        const big = content('big', 20 * 1024 * 1024); // beyond the Azure store's 8 MiB single-request limit
        const v1 = await store.put('alpha', 'tar.gz', await inputFile(big), { ifNoneMatch: '*' });
        expect(v1.size).to.equal(big.length);
        expect(await fetchBytes(store, 'alpha')).to.deep.equal(big);
        const stale = await rejection(store.put('alpha', 'tar.gz', await inputFile(content('late', 20 * 1024 * 1024)), { ifMatch: '"stale"' }));
        expect(stale.code).to.equal('save_conflict');
        expect(await store.stat('alpha')).to.deep.equal(v1);
      });

      it('of concurrent writers holding the same etag, exactly one wins', async () => {
        const fixture = await backend.fixture();
        const v1 = await fixture.store.put('alpha', 'zip', await inputFile(content('v1')));
        // One client per writer, as pool threads each have their own: nothing in-memory can serialize them.
        const stores = await Promise.all(Array.from({ length: 8 }, () => fixture.another()));
        const datas = stores.map((_, i) => content(`writer-${i}`));
        const files = await Promise.all(datas.map((d) => inputFile(d)));
        const results = await Promise.allSettled(files.map((f, i) => stores[i]!.put('alpha', 'zip', f, { ifMatch: v1.etag })));
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, stored: r.value }] : []));
        expect(won, 'winners').to.have.length(1);
        for (const r of results) if (r.status === 'rejected') expect((r.reason as ToolhostError).code).to.equal('save_conflict');
        expect(await fixture.store.stat('alpha')).to.deep.equal(won[0]!.stored);
        expect(await fetchBytes(fixture.store, 'alpha')).to.deep.equal(datas[won[0]!.i]);
      });

      it('putConflict keeps a copy beside the project that no listing shows', async () => {
        const { store, names } = await backend.fixture();
        const v1 = await store.put('alpha', 'zip', await inputFile(content('v1')));
        const file = await inputFile(content('lost race'));
        const name = await store.putConflict('alpha', 'zip', file, '20260101T000000000Z');
        expect(name).to.equal('alpha.conflict-20260101T000000000Z.zip');
        expect(await exists(file)).to.equal(false);
        await store.putConflict('ghost', 'tar.gz', await inputFile(content('orphan')), '20260101T000000000Z');
        expect(await names()).to.deep.equal(['alpha.conflict-20260101T000000000Z.zip', 'alpha.zip', 'ghost.conflict-20260101T000000000Z.tar.gz']);
        expect(await store.list()).to.deep.equal([v1]);
        expect(await store.stat('alpha')).to.deep.equal(v1);
        expect(await store.stat('ghost')).to.equal(null);
      });

      it('delete removes the project archive and nothing else; deleting nothing is false', async () => {
        const { store, names } = await backend.fixture();
        await store.put('alpha', 'zip', await inputFile(content('zip')));
        const beta = await store.put('beta', 'tar.gz', await inputFile(content('beta')));
        await store.putConflict('alpha', 'zip', await inputFile(content('lost race')), '20260101T000000000Z');
        expect(await store.delete('alpha')).to.equal(true);
        expect(await store.stat('alpha')).to.equal(null);
        expect(await store.list()).to.deep.equal([beta]);
        // The conflict copy is another writer's work: deleting the project keeps it.
        expect(await names()).to.deep.equal(['alpha.conflict-20260101T000000000Z.zip', 'beta.tar.gz']);
        expect(await store.delete('alpha')).to.equal(false);
        expect(await store.delete('nobody')).to.equal(false);
        const err = await rejection(store.delete('../escape'));
        expect(err.code).to.equal('invalid_project_id');
        expect(await store.stat('beta')).to.deep.equal(beta);
      });

      it('an unknown project is null to stat and project_not_found to load', async () => {
        const { store } = await backend.fixture();
        expect(await store.stat('nobody')).to.equal(null);
        {
          const err = await rejection(store.load('nobody', join(work, 'scratch')));
          expect(err.code).to.equal('project_not_found');
          expect(err.details).to.deep.equal({ project_id: 'nobody' });
        }
        expect(await store.list()).to.deep.equal([]);
      });

      describe('objects', () => {
        it('round trips bytes and a file (which stays in place), whole and streamed', async () => {
          const { store } = await backend.fixture();
          const index = layerName('json.gz');
          const small = content('index', 300);
          const put1 = await store.putObject(index, small);
          expect(put1).to.include({ name: index, size: small.length });
          expect(new Date(put1.modifiedAt).toISOString()).to.equal(put1.modifiedAt);
          expect(await store.getObject(index)).to.deep.equal({ body: small, etag: put1.etag });

          const layer = layerName('tar.gz');
          const big = content('layer', 9 * 1024 * 1024); // beyond the Azure store's single-request limit
          const file = await inputFile(big);
          const put2 = await store.putObject(layer, { file });
          expect(await readFile(file), 'the source file is left as it was').to.deep.equal(big);
          expect(put2).to.include({ name: layer, size: big.length });
          const opened = await store.openObject(layer);
          expect(opened).to.include({ etag: put2.etag, size: big.length });
          expect(await readAll(opened!.stream)).to.deep.equal(big);
          expect((await store.getObject(layer))?.etag).to.equal(put2.etag);
          expect(await store.listObjects('layers/')).to.deep.equal([put1, put2].sort(byName));

          // An unconditional write replaces the object under a new etag; rewriting the source file afterwards
          // does not reach the stored copy.
          const put3 = await store.putObject(layer, { file });
          expect(put3.etag).to.not.equal(put2.etag);
          await writeFile(file, content('rewritten', 100));
          expect((await store.getObject(layer))?.body).to.deep.equal(big);

          expect(await store.getObject('layers/absent.json.gz')).to.equal(null);
          expect(await store.openObject('absent.layers.json')).to.equal(null);
        });

        it('a conditional create succeeds once; the second is a save_conflict that writes nothing', async () => {
          const { store, names } = await backend.fixture();
          const name = 'demo.layers.json';
          const first = await store.putObject(name, Buffer.from('{"v":1}'), { ifNoneMatch: '*' });
          const before = await names();
          for (const body of [Buffer.from('{"v":2}'), { file: await inputFile(Buffer.from('{"v":3}')) }]) {
            const err = await rejection(store.putObject(name, body, { ifNoneMatch: '*' }));
            expect(err.code).to.equal('save_conflict');
            expect(err.details).to.deep.equal({ object: name });
            expect(err.message).to.include('already exists');
          }
          expect(await store.getObject(name)).to.deep.equal({ body: Buffer.from('{"v":1}'), etag: first.etag });
          expect(await names(), 'no temp file or partial upload is left').to.deep.equal(before);
        });

        it('ifMatch writes over the version read, and a stale or absent one is a save_conflict', async () => {
          const { store, names } = await backend.fixture();
          const name = 'demo.layers.json';
          const v1 = await store.putObject(name, Buffer.from('one'));
          const v2 = await store.putObject(name, Buffer.from('two'), { ifMatch: v1.etag });
          expect(v2.etag).to.not.equal(v1.etag);
          const stale = await rejection(store.putObject(name, Buffer.from('three'), { ifMatch: v1.etag }));
          expect(stale.code).to.equal('save_conflict');
          expect(stale.details).to.deep.equal({ object: name });
          expect(stale.message).to.include('changed');
          expect(await store.getObject(name)).to.deep.equal({ body: Buffer.from('two'), etag: v2.etag });
          const before = await names();
          const absent = await rejection(store.putObject('other.layers.json', Buffer.from('x'), { ifMatch: v2.etag }));
          expect(absent.code).to.equal('save_conflict');
          expect(await store.getObject('other.layers.json')).to.equal(null);
          expect(await names()).to.deep.equal(before);
        });

        it('deleteObject deletes once; with a stale ifMatch it deletes nothing and says false', async () => {
          const { store } = await backend.fixture();
          const name = layerName('tar.gz');
          const v1 = await store.putObject(name, content('v1'));
          const v2 = await store.putObject(name, content('v2'));
          expect(await store.deleteObject(name, { ifMatch: v1.etag })).to.equal(false);
          expect((await store.getObject(name))?.etag).to.equal(v2.etag);
          expect(await store.deleteObject(name, { ifMatch: v2.etag })).to.equal(true);
          expect(await store.getObject(name)).to.equal(null);
          expect(await store.deleteObject(name, { ifMatch: v2.etag })).to.equal(false);
          await store.putObject(name, content('v3'));
          expect(await store.deleteObject(name)).to.equal(true);
          expect(await store.deleteObject(name)).to.equal(false);
          expect(await store.listObjects('')).to.deep.equal([]);
        });

        it('listObjects finds every object under a prefix, archives too, sorted by name', async () => {
          const fixture = await backend.fixture();
          const { store } = fixture;
          const [a, b] = [layerName('tar.gz'), layerName('json.gz')].sort();
          const stored = [
            await store.putObject(b!, content('b')),
            await store.putObject(a!, content('a')),
            await store.putObject('layers.x', content('top')),
            await store.putObject('other/c', content('c')),
            await store.putObject('demo.layers.json', Buffer.from('{}')),
          ];
          const alpha = await store.put('alpha', 'zip', await inputFile(content('alpha')));
          await store.putConflict('alpha', 'zip', await inputFile(content('lost')), '20260101T000000000Z');
          // Neither is an object name (three parts; a leading "."): nothing the store could be asked for.
          await fixture.plant('layers/deep/x', content('deep'));
          await fixture.plant('.hidden', content('hidden'));

          const all = await store.listObjects('');
          expect(all.map((o) => o.name)).to.deep.equal([
            'alpha.conflict-20260101T000000000Z.zip',
            'alpha.zip',
            'demo.layers.json',
            'layers.x',
            a,
            b,
            'other/c',
          ]);
          expect(all.find((o) => o.name === 'alpha.zip')).to.include({ size: alpha.size, etag: alpha.etag });
          expect(await store.listObjects('layers/')).to.deep.equal([stored[1], stored[0]]);
          expect((await store.listObjects('lay')).map((o) => o.name)).to.deep.equal(['layers.x', a, b]);
          expect((await store.listObjects('other/')).map((o) => o.name)).to.deep.equal(['other/c']);
          expect(await store.listObjects('nothing/')).to.deep.equal([]);
          expect(await store.listObjects('../')).to.deep.equal([]);
        });

        it('refuses hostile object names with internal and writes nothing anywhere', async () => {
          const fixture = await backend.fixture();
          const { store } = fixture;
          const kept = await store.putObject('b', Buffer.from('kept'));
          await writeFile(join(work, 'x'), 'outside the store');
          const file = await inputFile(Buffer.from('payload'));
          const before = { names: await fixture.names(), work: (await filesUnder(work)).sort() };
          const hostile = ['../x', '/abs', 'a/../b', 'a/b/c', '.hidden', '', 'layers/', '/', 'a//b', 'layers/..', 'a\\b', 'x\0y', 'x y', 'é', 'a'.repeat(300)];
          for (const name of hostile) {
            const calls: [string, Promise<unknown>][] = [
              ['getObject', store.getObject(name)],
              ['openObject', store.openObject(name)],
              ['putObject bytes', store.putObject(name, Buffer.from('bad'))],
              ['putObject file', store.putObject(name, { file }, { ifNoneMatch: '*' })],
              ['deleteObject', store.deleteObject(name)],
              ['deleteObject ifMatch', store.deleteObject(name, { ifMatch: kept.etag })],
            ];
            for (const [what, call] of calls) {
              const err = await rejection(call);
              expect(err.code, `${what}(${JSON.stringify(name)})`).to.equal('internal');
            }
          }
          expect(await fixture.names()).to.deep.equal(before.names);
          expect((await filesUnder(work)).sort()).to.deep.equal(before.work);
          expect(await readFile(join(work, 'x'), 'utf8')).to.equal('outside the store');
          expect(await store.getObject('b')).to.deep.equal({ body: Buffer.from('kept'), etag: kept.etag });
        });

        it('a manifest makes a layered project; the newer of manifest and archive is the project; load stays archive-only', async () => {
          const { store } = await backend.fixture();
          const zip = content('zip');
          const archive = await store.put('alpha', 'zip', await inputFile(zip));
          const alphaManifest = await store.putObject('alpha.layers.json', Buffer.from('{"alpha":1}'));
          const betaManifest = await store.putObject('beta.layers.json', Buffer.from('{"beta":1}'));
          const gamma = await store.put('gamma', 'tar.gz', await inputFile(content('gamma')));
          const alpha = { id: 'alpha', format: 'layers', size: alphaManifest.size, modifiedAt: alphaManifest.modifiedAt, etag: alphaManifest.etag };
          const beta = { id: 'beta', format: 'layers', size: betaManifest.size, modifiedAt: betaManifest.modifiedAt, etag: betaManifest.etag };
          expect(await store.stat('alpha')).to.deep.equal(alpha);
          expect(await store.stat('beta')).to.deep.equal(beta);
          expect(await store.list()).to.deep.equal([alpha, beta, gamma]);
          // An archive placed after the manifest is the project (dropped over it by hand); a later manifest wins again.
          await sleep(1100); // Azure's Last-Modified counts whole seconds: a tie goes to the manifest
          const dropped = await store.put('alpha', 'zip', await inputFile(zip), { ifMatch: archive.etag });
          expect(await store.stat('alpha')).to.deep.equal(dropped);
          expect(await fetchBytes(store, 'alpha')).to.deep.equal(zip);
          await sleep(1100);
          const again = await store.putObject('alpha.layers.json', Buffer.from('{"alpha":2}'), { ifMatch: alphaManifest.etag });
          expect((await store.stat('alpha'))?.etag).to.equal(again.etag);
          const err = await rejection(store.load('beta', join(work, 'scratch')));
          expect(err.code).to.equal('project_not_found');
        });

        it('delete removes a manifest (true for a manifest alone) and leaves the layers', async () => {
          const { store } = await backend.fixture();
          const layer = await store.putObject(layerName('tar.gz'), content('layer'));
          await store.putObject('beta.layers.json', Buffer.from('{}'));
          await store.put('alpha', 'zip', await inputFile(content('zip')));
          await store.putObject('alpha.layers.json', Buffer.from('{}'));
          expect(await store.delete('beta')).to.equal(true);
          expect(await store.delete('alpha')).to.equal(true);
          expect(await store.stat('alpha')).to.equal(null);
          expect(await store.stat('beta')).to.equal(null);
          expect(await store.list()).to.deep.equal([]);
          expect(await store.listObjects('')).to.deep.equal([layer]);
          expect(await store.delete('beta')).to.equal(false);
        });

        it('a create (ifNoneMatch "*") is refused when the project has a manifest', async () => {
          const { store, names } = await backend.fixture();
          await store.putObject('beta.layers.json', Buffer.from('{}'));
          const before = await names();
          for (const format of ['zip', 'tar.gz'] as const) {
            const data = content(format);
            const file = await inputFile(data);
            const err = await rejection(store.put('beta', format, file, { ifNoneMatch: '*' }));
            expect(err.code).to.equal('save_conflict');
            expect(err.details).to.deep.equal({ project_id: 'beta' });
            expect(await readFile(file)).to.deep.equal(data);
          }
          expect(await names()).to.deep.equal(before);
          expect((await store.stat('beta'))?.format).to.equal('layers');
        });
      });
    });
  }

  describe('LocalStore', () => {
    it('copies in a file from another file system, leaving nothing behind', async function () {
      const shm = '/dev/shm';
      if (!(await exists(shm))) this.skip();
      const elsewhere = await mkdtemp(join(shm, 'toolhost-store-'));
      try {
        const store = new LocalStore(join(work, 'store'));
        await store.init();
        const data = content('far');
        const file = await inputFile(data, elsewhere);
        const stored = await store.put('alpha', 'zip', file);
        expect(await exists(file)).to.equal(false);
        expect(await fetchBytes(store, 'alpha')).to.deep.equal(data);
        // And the other way: a load into another file system copies out, with the etag of what it copied.
        const fetched = await store.load('alpha', elsewhere);
        expect(fetched.etag).to.equal(stored.etag);
        expect(fetched.kind === 'file' && (await readFile(fetched.file))).to.deep.equal(data);
        if (fetched.kind === 'file') await fetched.release();
        expect(await readdir(elsewhere)).to.deep.equal([]);
      } finally {
        await rm(elsewhere, { recursive: true, force: true });
      }
    });

    it('a conditional put waits for a live lock and takes over a stale one', async () => {
      const dir = join(work, 'store');
      const store = new LocalStore(dir);
      await store.init();
      const v1 = await store.put('alpha', 'zip', await inputFile(content('v1')));
      const lock = join(dir, '.locks', 'alpha.lock');

      await writeFile(lock, '1\n'); // held by a live writer of another thread
      let settled = false;
      const waiting = store.put('alpha', 'zip', await inputFile(content('v2')), { ifMatch: v1.etag }).finally(() => (settled = true));
      await sleep(300);
      expect(settled, 'the put ran while another writer held the lock').to.equal(false);
      await rm(lock);
      const v2 = await waiting;

      await writeFile(lock, '1\n'); // left by a writer that crashed a minute ago
      const past = new Date(Date.now() - 60_000);
      await utimes(lock, past, past);
      const v3 = await store.put('alpha', 'zip', await inputFile(content('v3')), { ifMatch: v2.etag });
      expect(await store.stat('alpha')).to.deep.equal(v3);
      expect(await exists(lock), 'the lock is released').to.equal(false);
    });
    it('temp files, locks, links and folders are no objects', async () => {
      const dir = join(work, 'store');
      const store = new LocalStore(dir);
      await store.init();
      const layer = await store.putObject('layers/a.tar.gz', content('a'));
      await writeFile(join(dir, '.object.1234.tmp'), 'staged');
      await writeFile(join(dir, 'layers', '.b.tmp'), 'staged');
      await writeFile(join(dir, '.locks', '~layers~a.tar.gz.lock'), '1\n');
      await writeFile(join(work, 'secret'), 'outside');
      await symlink(join(work, 'secret'), join(dir, 'linked'));
      await symlink(join(work, 'secret'), join(dir, 'layers', 'linked'));
      await mkdir(join(dir, 'folder'));
      expect(await store.listObjects('')).to.deep.equal([layer]);
      expect(await store.getObject('linked')).to.equal(null);
      expect(await store.openObject('layers/linked')).to.equal(null);
      expect(await store.getObject('folder')).to.equal(null);
      expect(await store.getObject('layers')).to.equal(null);
    });

    it('a conditional object write waits for its lock; a manifest takes its project lock', async () => {
      const dir = join(work, 'store');
      const store = new LocalStore(dir);
      await store.init();
      for (const [name, lockName] of [
        ['layers/a.json.gz', '~layers~a.json.gz.lock'],
        ['alpha.layers.json', 'alpha.lock'],
      ] as const) {
        const lock = join(dir, '.locks', lockName);
        await writeFile(lock, '1\n');
        let settled = false;
        const waiting = store.putObject(name, Buffer.from('v1'), { ifNoneMatch: '*' }).finally(() => (settled = true));
        await sleep(300);
        expect(settled, `${name} was written while another writer held ${lockName}`).to.equal(false);
        await rm(lock);
        expect((await waiting).etag).to.equal((await store.getObject(name))?.etag);
        expect(await exists(lock), 'the lock is released').to.equal(false);
      }
    });
  });

  describe('AzureBlobStore', () => {
    /** Retries cut short so an unreachable store is reported in milliseconds rather than production's ~11 s. */
    const quickRetries = { maxTries: 2, retryDelayInMs: 10, maxRetryDelayInMs: 10 };

    it('keeps its archives under its prefix and lists no others', async () => {
      const container = uniqueContainerName('prefix');
      const team = new AzureBlobStore({ connectionString: azurite.connectionString, container, prefix: 'team-a/' });
      await team.init();
      const client = containerClient(azurite, container);
      for (const planted of ['beta.zip', 'other/gamma.zip', 'team-a/nested/delta.zip']) {
        await client.getBlockBlobClient(planted).uploadData(content(planted));
      }
      const alpha = await team.put('alpha', 'zip', await inputFile(content('alpha')));
      const conflict = await team.putConflict('alpha', 'zip', await inputFile(content('lost')), '20260101T000000000Z');
      expect(conflict).to.equal('team-a/alpha.conflict-20260101T000000000Z.zip');
      expect(await blobNames(client)).to.include.members(['team-a/alpha.zip', conflict]);
      expect(await team.list()).to.deep.equal([alpha]);
      expect(await team.stat('beta')).to.equal(null);

      const root = new AzureBlobStore({ connectionString: azurite.connectionString, container });
      await root.init();
      expect((await root.list()).map((p) => p.id)).to.deep.equal(['beta']);
      expect(await root.stat('alpha')).to.equal(null);
    });

    it('an endpoint nobody listens on is store_unavailable, without the account key in the message', async function () {
      this.timeout(15_000); // a few seconds at most; production retries alone would take ~11 s
      const port = await closedPort();
      const connectionString = azurite.connectionString.replace(/BlobEndpoint=http:\/\/127\.0\.0\.1:\d+/, `BlobEndpoint=http://127.0.0.1:${port}`);
      const store = new AzureBlobStore({ connectionString, container: uniqueContainerName('down'), retryOptions: quickRetries });
      const err = await rejection(store.init());
      expect(err.code).to.equal('store_unavailable');
      expect(err.message).to.include('store.azure').and.include('ECONNREFUSED');
      expect(err.message).to.not.include('Eby8vdM02xNOcqF');
    });

    it('a store whose service goes away is store_unavailable and keeps the file to upload', async function () {
      this.timeout(30_000);
      const own = await startAzurite();
      const store = new AzureBlobStore({ connectionString: own.connectionString, container: uniqueContainerName('gone'), retryOptions: quickRetries });
      try {
        await store.init();
        await store.put('alpha', 'zip', await inputFile(content('v1')));
      } finally {
        await own.stop();
      }
      expect((await rejection(store.stat('alpha'))).code).to.equal('store_unavailable');
      expect((await rejection(store.list())).code).to.equal('store_unavailable');
      expect((await rejection(store.load('alpha', join(work, 'scratch')))).code).to.equal('store_unavailable');
      const file = await inputFile(content('v2'));
      expect((await rejection(store.put('alpha', 'zip', file))).code).to.equal('store_unavailable');
      expect(await exists(file)).to.equal(true);
    });

    it('an account URL whose credential or endpoint fails is store_unavailable', async function () {
      this.timeout(30_000); // DefaultAzureCredential tries each credential of its chain in turn
      const store = new AzureBlobStore({ accountUrl: `https://127.0.0.1:${await closedPort()}`, container: 'projects', retryOptions: quickRetries });
      const err = await rejection(store.init());
      expect(err.code).to.equal('store_unavailable');
      expect(err.message).to.include('store.azure');
    });

    it('settings without a usable way in are invalid_config', async () => {
      const none = await rejection(new AzureBlobStore({ connectionString: null, accountUrl: null, container: 'projects' }).init());
      expect(none.code).to.equal('invalid_config');
      expect(none.message).to.include('store.azure.connectionString').and.include('store.azure.accountUrl');
      const plain = await rejection(new AzureBlobStore({ accountUrl: azurite.blobUrl, container: 'projects' }).init());
      expect(plain.code).to.equal('invalid_config');
      expect(plain.message).to.include('https://');
      const garbled = await rejection(new AzureBlobStore({ connectionString: 'AccountName=x;AccountKey=c2VjcmV0;Nonsense', container: 'projects' }).init());
      expect(garbled.code).to.equal('invalid_config');
      expect(garbled.message).to.not.include('c2VjcmV0');
    });
  });
});
