/**
 * PATH inside commands: the system's (or commands.path), never the supervisor's own, which under `npm start` or
 * mocha begins with toolhost's node_modules/.bin (a project's `tsc` would silently run toolhost's copy). A PATH
 * the caller passes in `env` is the caller's explicit choice and is kept.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';

const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

describe('commands: PATH', () => {
  const saved = process.env.PATH;
  const servers: TestServer[] = [];
  let bin: string;

  before(async () => {
    // The supervisor's own PATH starts with a node_modules/.bin holding a `tsc` of its own.
    bin = join(await tempDir('toolhost-path-'), 'node_modules', '.bin');
    await mkdir(bin, { recursive: true });
    await writeFile(join(bin, 'tsc'), '#!/bin/sh\necho toolhost-tsc\n', { mode: 0o755 });
    process.env.PATH = `${bin}:${saved}`;
  });
  after(async () => {
    process.env.PATH = saved;
    for (const s of servers) await s.close({ force: true });
  });

  async function server(overrides: Record<string, unknown> = {}): Promise<TestServer> {
    const s = await startServer(overrides);
    servers.push(s);
    expect((await s.putProject('p', { 'a.txt': 'a\n' })).status).to.equal(201);
    return s;
  }

  it("gives commands the system's PATH, without the supervisor's node_modules/.bin", async () => {
    const s = await server();
    const r = await s.api('/execute', { project_id: 'p', command: 'echo "$PATH"; command -v tsc || echo no-tsc' });
    expect(r.body.exit_code).to.equal(0);
    const [path, tsc] = r.body.stdout.trim().split('\n');
    expect(path).to.equal(SYSTEM_PATH);
    expect(path).to.not.include('node_modules');
    expect(tsc).to.not.equal(join(bin, 'tsc'));
  });

  it('honours commands.path, and a PATH the caller passes in env', async () => {
    const s = await server({ commands: { path: '/opt/tools/bin:/usr/bin:/bin' } });
    const r = await s.api('/execute', { project_id: 'p', command: 'echo "$PATH"' });
    expect(r.body.stdout).to.equal('/opt/tools/bin:/usr/bin:/bin\n');
    const own = await s.api('/execute', { project_id: 'p', command: 'echo "$PATH"', env: { PATH: '/usr/bin:/bin:/custom' } });
    expect(own.body.stdout).to.equal('/usr/bin:/bin:/custom\n');
  });

  it('refuses a commands.path that is not absolute folders', async () => {
    let err: unknown;
    try {
      await server({ commands: { path: 'node_modules/.bin:/usr/bin' } });
    } catch (e) {
      err = e;
    }
    expect(String(err)).to.include('commands.path');
  });
});
