/**
 * Materializing projects from Azure Blob Storage (Azurite): concurrent first requests share one download, archives
 * planted in the container behind the server's back are refused as PUT would refuse them, a crash leaves the
 * store untouched and the next start still knows the unsaved work, and an unreachable store does not stop the start.
 */

import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Agent, createServer, type IncomingMessage, request, type Server } from 'node:http';
import { join, relative } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { expect } from 'chai';
import { type Azurite, azureStore, containerClient, startAzurite, uniqueContainerName } from './helpers/azurite.js';
import { type ChildServer, startChild } from './helpers/child-server.js';
import { authHeaders, buildArchive, startServer, storedFile, type TestServer, tempDir } from './helpers/harness.js';
import { closedPort, exists } from './helpers/probes.js';
import { buildTarGz } from './helpers/tar-writer.js';
import { buildZip, zipFile, zipSymlink } from './helpers/zip-writer.js';

const MiB = 1024 * 1024;
/** The emulator's public development key (not a secret); an error message must never quote it. */
const ACCOUNT_KEY_START = 'Eby8vdM02xNOcqF';
/**
 * Every server here: no janitor run during a test, and few threads. Each pool thread loads the handlers and the
 * Azure SDK on first use, which is most of a test's run time on a small machine; two file threads still leave one
 * free while the other downloads.
 */
const SMALL = { cache: { janitorIntervalS: 3600 }, pool: { maxThreads: 2 }, commands: { threads: 1 } };

/** A small JSON client for a server in another process. */
/** The token of each child server by its url, read from where it put it. */
const tokens = new Map<string, string | null>();

async function call(base: string, path: string, body?: unknown, method?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(base + path, {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { ...(body === undefined || body instanceof Uint8Array ? {} : { 'content-type': 'application/json' }), ...authHeaders(tokens.get(base) ?? null) },
    body: body === undefined ? undefined : body instanceof Uint8Array ? (body as unknown as BodyInit) : JSON.stringify(body),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** An HTTP proxy in front of Azurite's blob endpoint that counts blob downloads and can hold them back. */
interface BlobProxy {
  /** The emulator's connection string with BlobEndpoint pointing at the proxy. */
  connectionString: string;
  /** GETs of `<container>/<blob>` without a `comp=` query: downloads of the blob's content. */
  downloads(container: string, blob: string): number;
  /** Holds every download of `<container>/<blob>` until `release()`; `arrived` resolves when the first comes in. */
  hold(container: string, blob: string): { arrived: Promise<void>; release(): void };
  close(): Promise<void>;
}

async function startBlobProxy(azurite: Azurite): Promise<BlobProxy> {
  const upstream = new URL(azurite.blobUrl);
  const agent = new Agent({ keepAlive: true });
  const counts = new Map<string, number>();
  const holds = new Map<string, { gate: Promise<void>; arrived: () => void; release: () => void }>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const isDownload = req.method === 'GET' && !url.searchParams.has('comp');
    const key = decodeURIComponent(url.pathname);
    if (isDownload) counts.set(key, (counts.get(key) ?? 0) + 1);
    const held = isDownload ? holds.get(key) : undefined;
    held?.arrived();
    const forward = (): void => {
      const out = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
        (up: IncomingMessage) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
    };
    if (held) void held.gate.then(forward);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const account = upstream.pathname; // "/devstoreaccount1"
  const path = (container: string, blob: string): string => `${account}/${container}/${blob}`;
  return {
    connectionString: azurite.connectionString.replace(`BlobEndpoint=${azurite.blobUrl}`, `BlobEndpoint=http://127.0.0.1:${port}${account}`),
    downloads: (container, blob) => counts.get(path(container, blob)) ?? 0,
    hold: (container, blob) => {
      let release!: () => void;
      let arrived!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const came = new Promise<void>((r) => (arrived = r));
      holds.set(path(container, blob), { gate, arrived, release });
      return { arrived: came, release };
    },
    close: async () => {
      for (const h of holds.values()) h.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

describe('projects: materializing from Azure Blob Storage (Azurite)', function () {
  this.timeout(60_000);
  let azurite: Azurite;
  const servers: TestServer[] = [];
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.stop();
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close({ force: true });
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A server on a fresh container of the emulator (reached through `connectionString`, by default directly). */
  async function azureServer(
    extra: Record<string, unknown> = {},
    connectionString = azurite.connectionString,
  ): Promise<{ s: TestServer; name: string; container: ContainerClient }> {
    const name = uniqueContainerName('mat');
    const s = await startServer({ store: { backend: 'azure', azure: { connectionString, container: name } }, ...SMALL, ...extra });
    servers.push(s);
    return { s, name, container: containerClient(azurite, name) };
  }

  describe('concurrent first requests', () => {
    for (const format of ['tar.gz', 'zip'] as const) {
      it(`share one download of a project placed in the container, and a cached project is served meanwhile (${format})`, async () => {
        const proxy = await startBlobProxy(azurite);
        cleanups.push(() => proxy.close());
        const { s, name, container } = await azureServer({}, proxy.connectionString);
        // Placed straight into the container, as another machine's save or an operator would.
        const blob = `placed.${format}`;
        await container.getBlockBlobClient(blob).uploadData(await buildArchive({ 'src/a.txt': 'placed content\n' }, format));
        expect((await s.putProject('other', { 'b.txt': 'other content\n' })).status).to.equal(201);
        expect((await s.api('/projects/placed')).body).to.include({ cached: false, format });

        const held = proxy.hold(name, blob);
        let settled = 0;
        const reads = Array.from({ length: 20 }, () => s.api('/file/read', { project_id: 'placed', path: 'src/a.txt' }).finally(() => settled++));
        await held.arrived;
        // While the one download is held, the other project answers: materializing holds no slot it needs. A hang
        // here is the failure; the guard only turns mocha's generic timeout into a message saying so.
        let guard: NodeJS.Timeout | undefined;
        const other = await Promise.race([
          s.api('/file/read', { project_id: 'other', path: 'b.txt' }),
          new Promise<never>(
            (_, reject) => (guard = setTimeout(() => reject(new Error("a read of a cached project waited for another project's download")), 20_000)),
          ),
        ]).finally(() => clearTimeout(guard));
        expect(other.status, JSON.stringify(other.body)).to.equal(200);
        expect(other.body.content).to.equal('other content\n');
        expect(settled, 'no read of the held project finished before its download did').to.equal(0);

        held.release();
        const results = await Promise.all(reads);
        for (const r of results) {
          expect(r.status, JSON.stringify(r.body)).to.equal(200);
          expect(r.body.content).to.equal('placed content\n');
        }
        expect(proxy.downloads(name, blob), 'downloads of the blob').to.equal(1);
        const again = await s.api('/file/read', { project_id: 'placed', path: 'src/a.txt' });
        expect(again.body.content).to.equal('placed content\n');
        expect(proxy.downloads(name, blob), 'a later read uses the cached copy').to.equal(1);
        expect((await s.api('/projects/placed')).body).to.include({ cached: true, dirty: false });

        // The count is real: once evicted, the next read downloads the blob again.
        expect((await s.api('/projects/placed/cache', undefined, { method: 'DELETE' })).body.evicted).to.equal(true);
        expect((await s.api('/file/read', { project_id: 'placed', path: 'src/a.txt' })).body.content).to.equal('placed content\n');
        expect(proxy.downloads(name, blob)).to.equal(2);
      });
    }
  });

  describe('unsafe archives planted in the container', () => {
    /** Small limits, so a bomb of a few MB trips them. */
    const ARCHIVE = { maxEntries: 1000, maxTotalBytes: 2 * MiB, maxRatio: 50 };

    /** What an attack aims at, built once the server's data dir is known. */
    interface Target {
      /** Extraction happens in `<dataDir>/tmp/extract-<id>-<uuid>`: the relative way from there to the sentinel. */
      up: string;
      /** A folder outside the data dir that must stay as it was. */
      sentinel: string;
      rand: string;
    }

    interface Attack {
      title: string;
      formats: readonly ('tar.gz' | 'zip')[];
      build(format: 'tar.gz' | 'zip', t: Target): Promise<Buffer> | Buffer;
      code: 'unsafe_archive_entry' | 'archive_too_large' | 'bad_archive';
      /** What the message must include (the entry's name, quoted). */
      names(t: Target): string[];
      /** Paths the attack aimed at, which must not exist afterwards. */
      aimed(t: Target): string[];
    }

    const BOTH = ['tar.gz', 'zip'] as const;
    const file = (format: 'tar.gz' | 'zip', entries: { name: string; data?: string | Buffer; link?: string }[]): Promise<Buffer> | Buffer =>
      format === 'zip'
        ? buildZip(entries.map((e) => (e.link === undefined ? zipFile(e.name, e.data ?? '') : zipSymlink(e.name, e.link))))
        : buildTarGz(entries.map((e) => (e.link === undefined ? { name: e.name, data: e.data ?? '' } : { name: e.name, type: 'symlink', linkname: e.link })));

    const attacks: Attack[] = [
      {
        title: 'zip-slip: a name climbing out with ".."',
        formats: BOTH,
        build: (f, t) =>
          file(f, [
            { name: 'ok.txt', data: 'ok' },
            { name: `${t.up}/slip.txt`, data: 'pwned' },
          ]),
        code: 'unsafe_archive_entry',
        names: (t) => [JSON.stringify(`${t.up}/slip.txt`), '".." segment'],
        aimed: (t) => [join(t.sentinel, 'slip.txt')],
      },
      {
        title: 'an absolute path',
        formats: BOTH,
        build: (f, t) => file(f, [{ name: `/tmp/toolhost-evil-${t.rand}.txt`, data: 'pwned' }]),
        code: 'unsafe_archive_entry',
        names: (t) => [JSON.stringify(`/tmp/toolhost-evil-${t.rand}.txt`), 'absolute'],
        aimed: (t) => [`/tmp/toolhost-evil-${t.rand}.txt`],
      },
      {
        title: 'a relative symlink leading outside, then a file written through it',
        formats: BOTH,
        build: (f, t) =>
          file(f, [
            { name: 'link', link: t.up },
            { name: 'link/pwned.txt', data: 'pwned' },
          ]),
        code: 'unsafe_archive_entry',
        names: () => ['"link"', 'outside'],
        aimed: (t) => [join(t.sentinel, 'pwned.txt')],
      },
      {
        title: 'an absolute symlink, then a file written through it',
        formats: BOTH,
        build: (f, t) =>
          file(f, [
            { name: 'abs', link: t.sentinel },
            { name: 'abs/pwned.txt', data: 'pwned' },
          ]),
        code: 'unsafe_archive_entry',
        names: (t) => ['"abs"', t.sentinel],
        aimed: (t) => [join(t.sentinel, 'pwned.txt')],
      },
      {
        title: 'a hard link to /etc/passwd',
        formats: ['tar.gz'],
        build: () => buildTarGz([{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }]),
        code: 'unsafe_archive_entry',
        names: () => ['"passwd"', '/etc/passwd'],
        aimed: () => [],
      },
      {
        title: 'a hard link climbing out to a file beside the data dir',
        formats: ['tar.gz'],
        build: (_f, t) => buildTarGz([{ name: 'x', type: 'link', linkname: `${t.up}/target.txt` }]),
        code: 'unsafe_archive_entry',
        names: (t) => ['"x"', `${t.up}/target.txt`],
        aimed: () => [],
      },
      {
        title: 'a decompression bomb (4 MiB of zeros)',
        formats: BOTH,
        build: (f) => file(f, [{ name: 'zeros.bin', data: Buffer.alloc(4 * MiB) }]),
        code: 'archive_too_large',
        names: () => ['"zeros.bin"'],
        aimed: () => [],
      },
      {
        title: 'a truncated archive',
        formats: ['tar.gz'],
        build: async () => {
          const whole = await buildTarGz([
            { name: 'a.txt', data: 'a' },
            { name: 'big.bin', data: randomBytes(512 * 1024) },
          ]);
          return whole.subarray(0, Math.floor(whole.length * 0.75));
        },
        code: 'bad_archive',
        names: () => ['"big.bin"', 'truncated'],
        aimed: () => [],
      },
      {
        title: 'an entry failing its CRC',
        formats: ['zip'],
        build: () => {
          const bytes = buildZip([zipFile('a.txt', 'hello world', 0o644, 'store')]);
          bytes[bytes.indexOf('hello world')] = 'j'.charCodeAt(0);
          return bytes;
        },
        code: 'bad_archive',
        names: () => ['"a.txt"', 'CRC'],
        aimed: () => [],
      },
    ];

    for (const attack of attacks) {
      for (const format of attack.formats) {
        it(`${attack.title} (${format}): 422 on every request, nothing written anywhere, nothing cached`, async () => {
          const { s, container } = await azureServer({ archive: ARCHIVE });
          const sentinel = await tempDir('toolhost-sentinel-');
          cleanups.push(() => rm(sentinel, { recursive: true, force: true }));
          await writeFile(join(sentinel, 'target.txt'), 'untouched\n');
          const t: Target = { up: relative(join(s.dataDir, 'tmp', 'extract-x'), sentinel), sentinel, rand: randomBytes(6).toString('hex') };
          expect(t.up).to.match(/^\.\.\/\.\.\/\.\.\//);
          const passwdBefore = await stat('/etc/passwd');

          await container.getBlockBlobClient(`p.${format}`).uploadData(await attack.build(format, t));
          // A sound project placed the same way loads, so the refusal below is about the archive.
          await container.getBlockBlobClient('sound.tar.gz').uploadData(await buildArchive({ 'a.txt': 'fine\n' }));
          expect((await s.api('/file/read', { project_id: 'sound', path: 'a.txt' })).body.content).to.equal('fine\n');

          const first = await s.api('/file/read', { project_id: 'p', path: 'ok.txt' });
          expect(first.status, JSON.stringify(first.body)).to.equal(422);
          expect(first.body.error.code).to.equal(attack.code);
          for (const n of attack.names(t)) expect(first.body.error.message).to.include(n);

          for (const aimed of attack.aimed(t)) expect(await exists(aimed), aimed).to.equal(false);
          expect(await readdir(sentinel), 'the folder beside the data dir').to.deep.equal(['target.txt']);
          expect(await readFile(join(sentinel, 'target.txt'), 'utf8')).to.equal('untouched\n');
          expect((await stat(join(sentinel, 'target.txt'))).nlink, 'no hard link was made to the file outside').to.equal(1);
          const passwd = await stat('/etc/passwd');
          expect({ nlink: passwd.nlink, mtimeMs: passwd.mtimeMs }).to.deep.equal({ nlink: passwdBefore.nlink, mtimeMs: passwdBefore.mtimeMs });
          expect(await exists(join(s.dataDir, 'projects', 'p')), '<dataDir>/projects/p').to.equal(false);
          expect(await readdir(join(s.dataDir, 'tmp')), 'leftovers in <dataDir>/tmp').to.deep.equal([]);
          expect((await s.api('/projects/p')).body).to.include({ cached: false, dirty: false });

          // Nothing half-extracted was kept: the next request tries again and is refused the same way.
          const second = await s.api('/file/list', { project_id: 'p' });
          expect(second.status, JSON.stringify(second.body)).to.equal(422);
          expect(second.body.error).to.deep.equal(first.body.error);
          expect(await exists(join(s.dataDir, 'projects', 'p'))).to.equal(false);
          expect(await readdir(join(s.dataDir, 'tmp'))).to.deep.equal([]);
          expect((await s.api('/projects/p')).body.cached).to.equal(false);
        });
      }
    }
  });

  describe('a crash (SIGKILL, no shutdown write-back)', () => {
    it('leaves the old archive in the store; the next start on the same data dir knows the copy is dirty and saves it', async () => {
      const dataDir = await tempDir('toolhost-crash-');
      const children: ChildServer[] = [];
      cleanups.push(async () => {
        for (const c of children) {
          if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
          await c.exited;
          await rm(c.dataDir, { recursive: true, force: true });
        }
        await rm(dataDir, { recursive: true, force: true });
      });
      const name = uniqueContainerName('crash');
      const container = containerClient(azurite, name);
      const store = await azureStore(azurite, name);
      const config = { dataDir, store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container: name } }, ...SMALL };

      const first = await startChild(config);
      children.push(first);
      tokens.set(first.url, first.token);
      const put = await call(first.url, '/projects/p', await buildArchive({ 'a.txt': 'old\n', 'b.txt': 'same\n' }), 'PUT');
      expect(put.status, JSON.stringify(put.body)).to.equal(201);
      const write = await call(first.url, '/file/write', { project_id: 'p', path: 'a.txt', content: 'new\n' });
      expect(write.status, JSON.stringify(write.body)).to.equal(200);
      first.child.kill('SIGKILL');
      expect(await first.exited, 'killed by a signal, not exited').to.equal(null);
      expect(first.child.signalCode).to.equal('SIGKILL');
      expect(await storedFile(store, 'p', 'a.txt'), 'the store still holds the old content').to.equal('old\n');

      const second = await startChild(config);
      children.push(second);
      tokens.set(second.url, second.token);
      const info = await call(second.url, '/projects/p');
      expect(info.status, JSON.stringify(info.body)).to.equal(200);
      expect(info.body).to.include({ cached: true, dirty: true });
      expect(info.body.cache.source_etag, 'the copy still knows the version it came from').to.equal(put.body.etag);
      expect((await call(second.url, '/file/read', { project_id: 'p', path: 'a.txt' })).body.content).to.equal('new\n');

      const saved = await call(second.url, '/projects/p/save', {});
      expect(saved.status, JSON.stringify(saved.body)).to.equal(200);
      expect(saved.body).to.include({ saved: true, dirty: false });
      expect(saved.body.checkpoint_id).to.be.a('string');
      expect(await storedFile(store, 'p', 'a.txt')).to.equal('new\n');
      expect(await storedFile(store, 'p', 'b.txt')).to.equal('same\n');
      const names: string[] = [];
      for await (const b of container.listBlobsFlat()) names.push(b.name);
      expect(
        names.filter((n) => !n.startsWith('layers/')),
        'a plain save, no conflict copy',
      ).to.deep.equal(['p.layers.json']);

      second.child.kill('SIGTERM');
      expect(await second.exited).to.equal(0);
    });
  });

  describe('an unreachable store', () => {
    it('does not stop the start: /health says degraded, and a project it must fetch answers store_unavailable naming what to check', async function () {
      this.timeout(60_000);
      const port = await closedPort();
      const connectionString = azurite.connectionString.replace(`BlobEndpoint=${azurite.blobUrl}`, `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1`);
      // Short deadlines: retries fit in a tenth of deadlineBaseS, so each failed call takes about 1.5 s here.
      const store = { backend: 'azure', azure: { connectionString, container: uniqueContainerName('down'), deadlineBaseS: 3 } };
      const dataDir = await tempDir('toolhost-down-');
      cleanups.push(() => rm(dataDir, { recursive: true, force: true }));

      const s = await startServer({ dataDir, store, ...SMALL });
      servers.push(s);
      const health = await s.api('/health');
      expect(health.body.status).to.equal('degraded');
      expect(health.body.store.outage.last_error.message).to.include('ECONNREFUSED');
      expect(JSON.stringify(health.body)).to.not.include(ACCOUNT_KEY_START);
      const r = await s.api('/file/read', { project_id: 'p', path: 'a.txt' });
      expect(r.status, JSON.stringify(r.body)).to.equal(503);
      expect(r.body.error.code).to.equal('store_unavailable');
      expect(r.body.error.message).to.include('could not be reached').and.include('ECONNREFUSED').and.include('check store.azure');
      expect(r.body.error.message).to.not.include(ACCOUNT_KEY_START);

      // What an operator runs starts too, and its log says why it is degraded (without the key).
      const child = await startChild({ store, ...SMALL });
      cleanups.push(async () => {
        child.child.kill('SIGKILL');
        await child.exited;
        await rm(child.dataDir, { recursive: true, force: true });
      });
      const warned = child.logs.find((l) => String(l.msg).includes('the project store is unreachable'));
      expect(warned, JSON.stringify(child.logs)).to.not.equal(undefined);
      expect(JSON.stringify(child.logs)).to.not.include(ACCOUNT_KEY_START);
    });
  });
});
