import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import tar from 'tar-stream';
import { buildArchive, localStore, startServer, storedFile, storedPaths, type TestServer } from './helpers/harness.js';
import { buildZip, zipFile, zipSymlink } from './helpers/zip-writer.js';

async function tarGz(
  entries: { name: string; data?: string | Buffer; type?: 'file' | 'symlink' | 'link' | 'character-device'; linkname?: string }[],
): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    if (type === 'file') pack.entry({ name: e.name }, e.data ?? '');
    else pack.entry({ name: e.name, type, linkname: e.linkname });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

describe('projects', () => {
  let s: TestServer;
  let atStart: string[];
  beforeEach(async () => {
    s = await startServer({ http: { maxArchiveBytes: 1024 * 1024 } });
    // What the start lays out (token, the sandbox's /etc copy, homes/ and uids/ as root), before any upload.
    atStart = (await readdir(s.dataDir)).sort();
  });
  afterEach(async () => s?.close());

  /** Nothing of a refused upload may remain: no store archive, no working copy, no temp files, nothing outside. */
  async function expectNothingLeft(id: string): Promise<void> {
    expect(await storedArchives(s.dataDir)).to.deep.equal([]);
    expect(await readdir(join(s.dataDir, 'projects'))).to.deep.equal([]);
    expect(await readdir(join(s.dataDir, 'tmp'))).to.deep.equal([]);
    expect((await readdir(s.dataDir)).sort()).to.deep.equal(atStart);
    expect(atStart).to.include.members(['cache-index.json', 'jobs', 'projects', 'store', 'tmp', 'token']);
    const get = await s.api(`/projects/${id}`);
    expect(get.status).to.equal(404);
  }

  it('stores a tar.gz and a zip project, lists and describes them', async () => {
    const a = await s.putProject('alpha', { 'a.txt': 'A\n' }, 'tar.gz');
    expect(a.status).to.equal(201);
    // Either archive format is stored as layers.
    expect(a.body).to.include({ project_id: 'alpha', format: 'layers', cached: true });
    const b = await s.putProject('beta', { 'b/b.txt': 'B\n' }, 'zip');
    expect(b.status).to.equal(201);
    expect(b.body.format).to.equal('layers');
    expect(await storedArchives(s.dataDir)).to.deep.equal(['alpha.layers.json', 'beta.layers.json', 'layers']);
    const store = await localStore(join(s.dataDir, 'store'));
    expect(await storedPaths(store, 'alpha')).to.deep.equal(['a.txt']);
    expect(await storedFile(store, 'alpha', 'a.txt')).to.equal('A\n');
    expect(await storedPaths(store, 'beta')).to.deep.equal(['b/', 'b/b.txt']);
    expect(await storedFile(store, 'beta', 'b/b.txt')).to.equal('B\n');
    const list = await s.api('/projects');
    expect(list.body.projects.map((p: { project_id: string; cached: boolean }) => [p.project_id, p.cached])).to.deep.equal([
      ['alpha', true],
      ['beta', true],
    ]);
    const info = await s.api('/projects/beta');
    expect(info.status).to.equal(200);
    expect(info.body.cache.size_bytes).to.equal(2);
    expect(Date.parse(info.body.cache.last_access)).to.be.a('number').and.not.NaN;
    const read = await s.api('/file/read', { project_id: 'beta', path: 'b/b.txt' });
    expect(read.body.content).to.equal('B\n');
    expect((await s.api('/file/read', { project_id: 'alpha', path: 'a.txt' })).body.content).to.equal('A\n');
  });

  it('extracts on first use a project placed in the store while the server was down', async () => {
    const archive = await buildArchive({ 'src/x.ts': 'export const x = 1;\n' }, 'zip');
    await s.close();
    const { writeFile } = await import('node:fs/promises');
    const dataDir = s.dataDir;
    s = await startServer({ dataDir });
    await writeFile(join(dataDir, 'store', 'late.zip'), archive);
    const before = await s.api('/projects/late');
    expect(before.body.cached).to.equal(false);
    const reads = await Promise.all(Array.from({ length: 10 }, () => s.api('/file/read', { project_id: 'late', path: 'src/x.ts' })));
    expect(reads.map((r) => r.body.content)).to.deep.equal(Array(10).fill('export const x = 1;\n'));
    expect((await s.api('/projects/late')).body.cached).to.equal(true);
    expect(await readdir(join(dataDir, 'tmp'))).to.deep.equal([]);
  });

  it('refuses to overwrite an existing project unless asked, then replaces it', async () => {
    await s.putProject('p', { 'v.txt': '1' });
    const again = await s.putProject('p', { 'v.txt': '2' });
    expect(again.status).to.equal(409);
    expect(again.body.error.code).to.equal('project_exists');
    expect(again.body.error.message).to.include('replace=true');
    const unclear = await s.api('/projects/p?replace=yes', await buildArchive({ 'v.txt': '2' }), { method: 'PUT' });
    expect(unclear.status).to.equal(400);
    expect(unclear.body.error.message).to.include('replace');
    expect((await s.api('/file/read', { project_id: 'p', path: 'v.txt' })).body.content).to.equal('1');
    const replaced = await s.api('/projects/p?replace=true', await buildArchive({ 'w.txt': '3' }, 'zip'), { method: 'PUT' });
    expect(replaced.status).to.equal(200);
    expect(replaced.body.format).to.equal('layers');
    expect((await s.api('/file/read', { project_id: 'p', path: 'w.txt' })).body.content).to.equal('3');
    expect((await s.api('/file/read', { project_id: 'p', path: 'v.txt' })).status).to.equal(404);
    // The manifest alone names the project (layers/ keeps both uploads' data until collection), and it is the new one.
    expect(await storedArchives(s.dataDir)).to.deep.equal(['layers', 'p.layers.json']);
    const store = await localStore(join(s.dataDir, 'store'));
    expect(await storedPaths(store, 'p')).to.deep.equal(['w.txt']);
    expect(await storedFile(store, 'p', 'w.txt')).to.equal('3');
  });

  it('refuses an invalid project id', async () => {
    const r = await s.api('/projects/-bad', await buildArchive({ a: 'a' }), { method: 'PUT' });
    expect(r.status).to.equal(400);
    expect(r.body.error.code).to.equal('invalid_project_id');
    const t = await s.api('/file/read', { project_id: '../etc', path: 'passwd' });
    expect(t.status).to.equal(400);
    // Names of conflict copies are reserved: such a project would be hidden and mistaken for one.
    const c = await s.api('/projects/app.conflict-20261124T101010123Z', await buildArchive({ a: 'a' }), { method: 'PUT' });
    expect(c.status).to.equal(400);
    expect(c.body.error.message).to.include('conflict');
    const u = await s.api('/file/read', { project_id: 'app.conflict-x', path: 'a' });
    expect(u.status).to.equal(400);
    expect(u.body.error.message).to.include('reserved for conflict copies');
    expect(await storedArchives(s.dataDir)).to.deep.equal([]);
  });

  it('refuses a body that is not an archive, and an empty body', async () => {
    const r = await s.api('/projects/x', Buffer.from('just some text, not an archive'), { method: 'PUT' });
    expect(r.status).to.equal(415);
    expect(r.body.error.message).to.include('zip');
    const e = await s.api('/projects/x', new Uint8Array(0), { method: 'PUT' });
    expect(e.status).to.equal(400);
    await expectNothingLeft('x');
  });

  it('refuses an archive over http.maxArchiveBytes with 413', async () => {
    const { randomBytes } = await import('node:crypto');
    const r = await s.api('/projects/big', await tarGz([{ name: 'noise.bin', data: randomBytes(2 * 1024 * 1024) }]), { method: 'PUT' });
    expect(r.status).to.equal(413);
    expect(r.body.error.code).to.equal('payload_too_large');
    await expectNothingLeft('big');
  });

  const unsafe: [string, () => Promise<Buffer>, string][] = [
    [
      'a zip-slip entry (tar)',
      () =>
        tarGz([
          { name: 'ok.txt', data: 'ok' },
          { name: '../evil.txt', data: 'pwned' },
        ]),
      '../evil.txt',
    ],
    ['a zip-slip entry (zip)', async () => buildZip([zipFile('ok.txt', 'ok'), zipFile('../../evil.txt', 'pwned')]), '../../evil.txt'],
    ['an absolute path', () => tarGz([{ name: '/tmp/toolhost-evil.txt', data: 'pwned' }]), '/tmp/toolhost-evil.txt'],
    ['a symlink out of the project', () => tarGz([{ name: 'up', type: 'symlink', linkname: '../../..' }]), 'up'],
    ['a zip symlink to /etc', async () => buildZip([zipSymlink('etc', '/etc')]), 'etc'],
    ['a hardlink to /etc/passwd', () => tarGz([{ name: 'pw', type: 'link', linkname: '/etc/passwd' }]), 'pw'],
    ['a device file', () => tarGz([{ name: 'null', type: 'character-device' }]), 'null'],
  ];
  for (const [what, make, entry] of unsafe) {
    it(`refuses ${what} with 422 naming the entry, leaving nothing behind`, async () => {
      const r = await s.api('/projects/evil', await make(), { method: 'PUT' });
      expect(r.status).to.equal(422);
      expect(r.body.error.code).to.equal('unsafe_archive_entry');
      expect(r.body.error.message).to.include(entry);
      await expectNothingLeft('evil');
      await stat('/tmp/toolhost-evil.txt').then(
        () => expect.fail('an entry was written outside'),
        () => {},
      );
    });
  }

  it('refuses an archive bomb with 422', async () => {
    const r = await s.api('/projects/bomb', await tarGz([{ name: 'zeros.bin', data: Buffer.alloc(20 * 1024 * 1024) }]), { method: 'PUT' });
    expect(r.status).to.equal(422);
    expect(r.body.error.code).to.equal('archive_too_large');
    await expectNothingLeft('bomb');
  });

  it('answers 404 for an unknown project', async () => {
    const r = await s.api('/projects/nothing-here');
    expect(r.status).to.equal(404);
    expect(r.body.error.code).to.equal('project_not_found');
  });
});

/** The files of the local store, without its lock folder. */
async function storedArchives(dataDir: string): Promise<string[]> {
  return (await readdir(join(dataDir, 'store'))).filter((n) => n !== '.locks').sort();
}
