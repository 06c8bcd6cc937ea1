/**
 * The layered store, run against both backends (a LocalStore folder and Azurite) through the same pool-side code
 * the server runs (lib/layers/ops.ts): a one-file change uploads a small delta (counted in the store itself), a
 * plain zip dropped into the store loads and then gets checkpoints, compaction keeps the tree identical,
 * collection deletes only layers no manifest names, and a save or a compaction killed with SIGKILL at any moment
 * leaves the store loadable with the old or the new tree, never anything else.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { packTree } from '../lib/archive/pack.js';
import { collectLayers } from '../lib/layers/collect.js';
import { readManifest } from '../lib/layers/manifest.js';
import { compactLayers, type LayerContext, listCheckpoints, materializeLayers, saveLayers } from '../lib/layers/ops.js';
import { openStore } from '../lib/store/create-store.js';
import type { ProjectStore } from '../lib/store/project-store.js';
import { type Azurite, startAzurite, uniqueContainerName } from './helpers/azurite.js';

const LIMITS = { maxEntries: 100_000, maxTotalBytes: 2 ** 32, maxRatio: 1000 };
const KEEP = { count: 100, maxAgeHours: 24 };

let work: string;
let azurite: Azurite;

interface Backend {
  name: string;
  store(): Promise<ProjectStore>;
}

const backends: Backend[] = [
  { name: 'local store', store: () => openStore(loadConfig({ env: {}, overrides: { dataDir: join(work, 'data') } })) },
  {
    name: 'Azure Blob (Azurite)',
    store: () =>
      openStore(
        loadConfig({
          env: {},
          overrides: {
            dataDir: join(work, 'data'),
            store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container: uniqueContainerName('layers') } },
          },
        }),
      ),
  },
];

/** Every file, link and folder under `root` with its content digest, mode or target: two equal trees list equal. */
async function listing(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const abs = join(dir, e.name);
      const rel = relative(root, abs);
      const st = await lstat(abs);
      if (e.isSymbolicLink()) out.push(`l ${rel} -> ${await readlink(abs)}`);
      else if (e.isDirectory()) {
        out.push(`d ${rel} ${(st.mode & 0o777).toString(8)}`);
        await walk(abs);
      } else
        out.push(
          `f ${rel} ${(st.mode & 0o777).toString(8)} ${createHash('sha256')
            .update(await readFile(abs))
            .digest('hex')}`,
        );
    }
  };
  await walk(root);
  return out;
}

async function tree(root: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

async function storedBytes(store: ProjectStore): Promise<number> {
  return (await store.listObjects('')).reduce((n, o) => n + o.size, 0);
}

function ctx(store: ProjectStore): LayerContext {
  return { store, limits: LIMITS, owner: () => null };
}

let saves = 0;
function save(c: LayerContext, id: string, root: string, source: Parameters<typeof saveLayers>[1]['source'], statePath: string) {
  return saveLayers(c, {
    id,
    root,
    exclude: [],
    scratch: join(work, 'scratch'),
    statePath,
    source,
    stamp: `s${saves++}`,
    record: null,
    recordAs: 'save',
    keep: KEEP,
  });
}

/** Loads the project as stored into a fresh folder and lists it. */
async function loaded(store: ProjectStore, id: string): Promise<string[]> {
  const dest = join(work, `load-${randomBytes(4).toString('hex')}`);
  await materializeLayers(ctx(store), id, dest, join(work, `state-${randomBytes(4).toString('hex')}`));
  return listing(dest);
}

describe('layered store (both backends)', function () {
  this.timeout(300_000);
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'toolhost-layers-'));
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.stop();
    await rm(work, { recursive: true, force: true });
  });

  for (const b of backends) {
    describe(b.name, () => {
      it('a one-file change uploads a small delta, and the store then loads the changed tree', async () => {
        const store = await b.store();
        const c = ctx(store);
        const root = join(work, `copy-${saves}`);
        const files: Record<string, Buffer> = {};
        for (let i = 0; i < 200; i++) files[`src/m${i % 10}/f${i}.bin`] = randomBytes(8 * 1024);
        await tree(root, files);
        const statePath = join(work, `state-${saves}`);
        const first = await save(c, 'p', root, { kind: 'none' }, statePath);
        if (!('stored' in first)) throw new Error('first save conflicted');
        const full = await storedBytes(store);
        await writeFile(join(root, 'src/m3/f3.bin'), randomBytes(2048));
        const before = await storedBytes(store);
        const second = await save(c, 'p', root, { kind: 'layers', etag: first.stored.etag }, statePath);
        if (!('stored' in second)) throw new Error('second save conflicted');
        const written = (await storedBytes(store)) - before;
        // The delta: the one file (2 KiB of random bytes) in a tar.gz, its index, and a manifest one entry longer.
        expect(second.bytesUploaded).to.be.within(2048, 16 * 1024);
        expect(written).to.be.below(full / 50);
        expect(await loaded(store, 'p')).to.deep.equal(await listing(root));
        const cps = await listCheckpoints(c, 'p');
        expect(cps!.map((x) => x.kind)).to.deep.equal(['save', 'save']);
        // Nothing changed: nothing uploaded, no checkpoint.
        const third = await save(c, 'p', root, { kind: 'layers', etag: second.stored.etag }, statePath);
        expect('stored' in third && third.checkpoint).to.equal(null);
      });

      it('a plain zip dropped into the store loads, and its first save makes it layers with checkpoints', async () => {
        const store = await b.store();
        const c = ctx(store);
        const src = join(work, `zip-src-${saves}`);
        await tree(src, { 'a.txt': 'alpha\n', 'dir/b.txt': 'beta\n' });
        const zip = join(work, `p-${saves}.zip`);
        await packTree({ root: src, format: 'zip', out: zip, exclude: [] });
        await store.put('z', 'zip', zip);
        expect((await store.stat('z'))?.format).to.equal('zip');
        expect(await materializeLayers(c, 'z', join(work, `no-${saves}`), join(work, `nostate-${saves}`))).to.equal(null);
        expect(await listCheckpoints(c, 'z')).to.equal(null);
        const etag = (await store.stat('z'))!.etag;
        await writeFile(join(src, 'a.txt'), 'changed\n');
        const saved = await save(c, 'z', src, { kind: 'archive', format: 'zip', etag }, join(work, `zstate-${saves}`));
        expect('stored' in saved).to.equal(true);
        expect((await store.stat('z'))?.format).to.equal('layers');
        expect((await store.listObjects('')).map((o) => o.name)).to.not.include('z.zip');
        expect(await loaded(store, 'z')).to.deep.equal(await listing(src));
        expect((await listCheckpoints(c, 'z'))!.length).to.equal(1);
      });

      it('compaction merges a long chain into fewer layers with the tree unchanged; collection keeps what is named', async () => {
        const store = await b.store();
        const c = ctx(store);
        const root = join(work, `chain-${saves}`);
        const files: Record<string, Buffer> = {};
        for (let i = 0; i < 50; i++) files[`f${i}.bin`] = randomBytes(4096);
        await tree(root, files);
        const statePath = join(work, `chainstate-${saves}`);
        let r = await save(c, 'q', root, { kind: 'none' }, statePath);
        for (let i = 0; i < 8; i++) {
          if (i % 3 === 2) await rm(join(root, `f${i}.bin`));
          else await writeFile(join(root, `f${i}.bin`), `v${i}`);
          await mkdir(join(root, `empty${i}`));
          if (!('stored' in r)) throw new Error('conflict');
          r = await save(c, 'q', root, { kind: 'layers', etag: r.stored.etag }, statePath);
        }
        if (!('stored' in r)) throw new Error('conflict');
        const before = await loaded(store, 'q');
        expect(before).to.deep.equal(await listing(root));
        expect((await readManifest(store, 'q'))!.manifest.head.length).to.equal(9);
        const etag = await compactLayers(c, { id: 'q', root, exclude: [], scratch: join(work, 'scratch'), statePath, etag: r.stored.etag, maxLayers: 4 });
        expect(etag).to.be.a('string');
        const after = (await readManifest(store, 'q'))!.manifest;
        expect(after.head.length).to.be.at.most(2);
        expect(await loaded(store, 'q')).to.deep.equal(before);
        // Every checkpoint still loads its own tree: collection must keep their layers.
        const deleted = await collectLayers(store, 0);
        expect(deleted.deleted).to.equal(0);
        // Drop the checkpoints (keep 1): the old chain's layers are no longer named and go, the head's stay.
        const m = (await readManifest(store, 'q'))!;
        await store.putObject('q.layers.json', Buffer.from(JSON.stringify({ ...m.manifest, checkpoints: [] })), { ifMatch: m.etag });
        const gone = await collectLayers(store, 0);
        expect(gone.deleted).to.be.above(0);
        expect(await loaded(store, 'q')).to.deep.equal(before);
        // Within the grace period nothing goes, named or not.
        expect((await collectLayers(store, 3600_000)).deleted).to.equal(0);
      });
    });
  }

  /**
   * Runs the child's `mode` on project `id` and kills it after each delay; after every kill the store must load
   * with the tree it had before or the one the operation makes.
   */
  async function killedAtAnyMoment(
    mode: 'save' | 'compact',
    id: string,
    root: string,
    statePath: string,
    prepare: () => Promise<{ old: string[]; next: string[] }>,
  ): Promise<void> {
    const store = await backends[0]!.store();
    // From before the child has loaded (about a second of tsx) to after it has written everything.
    for (const delayMs of [300, 900, 1100, 1300, 1500, 1800, 2200, 3000]) {
      const { old, next } = await prepare();
      const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'layer-save-child.ts')], {
        env: {
          ...process.env,
          MODE: mode,
          PROJECT: id,
          STORE_DIR: join(work, 'data', 'store'),
          ROOT: root,
          STATE: statePath,
          ETAG: (await store.stat(id))!.etag,
          SCRATCH: join(work, 'scratch'),
        },
        stdio: 'ignore',
      });
      // Listened for at once: a child that finishes before the kill must not leave this waiting for an 'exit' gone by.
      const gone = new Promise((r) => child.once('exit', r));
      await sleep(delayMs);
      child.kill('SIGKILL');
      await gone;
      const now = JSON.stringify(await loaded(store, id));
      if (now !== JSON.stringify(old) && now !== JSON.stringify(next)) expect.fail(`after a kill at ${delayMs} ms the store holds neither tree`);
    }
  }

  async function bigCopy(name: string): Promise<string> {
    const root = join(work, name);
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 400; i++) files[`d${i % 20}/f${i}.bin`] = randomBytes(64 * 1024);
    await tree(root, files);
    return root;
  }

  it('a save killed with SIGKILL at any moment leaves the store loadable with the old tree or the new one', async () => {
    const store = await backends[0]!.store();
    const root = await bigCopy('killed');
    const statePath = join(work, 'killed-state');
    expect('stored' in (await save(ctx(store), 'k', root, { kind: 'none' }, statePath))).to.equal(true);
    // Each round changes half the files again, so every kill interrupts a real save.
    await killedAtAnyMoment('save', 'k', root, statePath, async () => {
      const old = await loaded(store, 'k');
      for (let i = 0; i < 200; i++) await writeFile(join(root, `d${i % 20}/f${i}.bin`), randomBytes(64 * 1024));
      return { old, next: await listing(root) };
    });
  });

  it('a compaction killed with SIGKILL at any moment leaves the store loadable with the same tree', async () => {
    const store = await backends[0]!.store();
    const c = ctx(store);
    const root = await bigCopy('compacted');
    const statePath = join(work, 'compacted-state');
    let r = await save(c, 'kc', root, { kind: 'none' }, statePath);
    for (let i = 0; i < 5; i++) {
      await writeFile(join(root, `d${i}/f${i}.bin`), randomBytes(16 * 1024));
      if (!('stored' in r)) throw new Error('conflict');
      r = await save(c, 'kc', root, { kind: 'layers', etag: r.stored.etag }, statePath);
    }
    const same = await loaded(store, 'kc');
    // maxLayers 1: every round compacts again (the head is at least a base and one layer).
    await killedAtAnyMoment('compact', 'kc', root, statePath, async () => ({ old: same, next: same }));
  });
});
