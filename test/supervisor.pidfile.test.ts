/** The data dir's pidfile: written at start, removed at a clean exit, a live holder refuses a second supervisor, a stale one is replaced. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { type ChildServer, startChild } from './helpers/child-server.js';
import { tempDir } from './helpers/harness.js';

describe('supervisor process: the pidfile', () => {
  const servers: ChildServer[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.exited));
    for (const d of [...servers.map((s) => s.dataDir), ...dirs]) await rm(d, { recursive: true, force: true });
    servers.length = 0;
    dirs.length = 0;
  });

  async function start(config: Record<string, unknown> = {}): Promise<ChildServer> {
    const srv = await startChild(config);
    servers.push(srv);
    return srv;
  }

  it('names the running supervisor, refuses a second one on the same data dir, and is gone after a clean stop', async function () {
    this.timeout(180_000);
    const a = await start();
    const data = join(a.dataDir, 'data');
    const pidfile = join(data, 'toolhost.pid');
    expect(await readFile(pidfile, 'utf8')).to.equal(`${a.child.pid}\n`);

    let refused: Error | undefined;
    try {
      await start({ dataDir: data });
    } catch (err) {
      refused = err as Error;
    }
    expect(refused?.message).to.include(`another toolhost (pid ${a.child.pid}) is running on this data dir`);
    expect(refused?.message).to.include(pidfile);
    expect(refused?.message).to.include('would corrupt its cache');
    // The refused one left the pidfile and the running supervisor alone.
    expect(await readFile(pidfile, 'utf8')).to.equal(`${a.child.pid}\n`);
    expect((await fetch(`${a.url}/health`)).status).to.be.oneOf([200, 401]);

    a.child.kill('SIGTERM');
    expect(await a.exited).to.equal(0);
    expect(existsSync(pidfile)).to.equal(false);
  });

  it('replaces a stale pidfile: a dead pid, a live process that is not a toolhost on this dir, or not a pid at all', async function () {
    this.timeout(240_000);
    const dead = spawn('true');
    await new Promise((r) => dead.once('exit', r));
    const other = spawn('sleep', ['300']);
    try {
      for (const stale of [`${dead.pid}\n`, `${other.pid}\n`, 'not a pid']) {
        const root = await tempDir('toolhost-pidfile-');
        dirs.push(root);
        const data = join(root, 'data');
        await mkdir(data, { recursive: true });
        await writeFile(join(data, 'toolhost.pid'), stale);
        const s = await start({ dataDir: data });
        expect(await readFile(join(data, 'toolhost.pid'), 'utf8'), `over ${JSON.stringify(stale)}`).to.equal(`${s.child.pid}\n`);
        s.child.kill('SIGTERM');
        expect(await s.exited).to.equal(0);
      }
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('after kill -9 the pidfile stays behind and the next start replaces it', async function () {
    this.timeout(180_000);
    const a = await start();
    const data = join(a.dataDir, 'data');
    a.child.kill('SIGKILL');
    await a.exited;
    expect(await readFile(join(data, 'toolhost.pid'), 'utf8')).to.equal(`${a.child.pid}\n`);
    const b = await start({ dataDir: data });
    expect(await readFile(join(data, 'toolhost.pid'), 'utf8')).to.equal(`${b.child.pid}\n`);
  });
});
