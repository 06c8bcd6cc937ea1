/**
 * The typed client (`toolhost/client`) against a real server: each namespace's calls answer what the server does,
 * output is followed live to the end, and a refusal is a ToolhostClientError with the API's code, status and
 * message. The client declares its wire types by hand (lib/ never imports the server); the type checks at the
 * bottom hold them to the server's own schemas, so `npm run typecheck` fails when they drift apart.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { z } from 'zod';
import type { checkpointCreateTool, checkpointRestoreTool, projectForkTool } from '../handlers/checkpoint-tools.js';
import type { commandView, jobListItem } from '../handlers/command-view.js';
import type { executeRequest } from '../handlers/execute.js';
import { type CommandView, type ExecuteRequest, ToolhostClient, ToolhostClientError } from '../lib/client/index.js';
import type * as client from '../lib/client/types.js';
import type { projectInfoTool, projectListTool, projectSaveTool } from '../supervisor/http/project-tools.js';
import type { ReloadReport } from '../supervisor/reload.js';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';

const run = promisify(execFile);

/** Rejects unless `p` rejects with a ToolhostClientError; resolves with it. */
async function refusal(p: Promise<unknown>): Promise<ToolhostClientError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(ToolhostClientError);
    return err as ToolhostClientError;
  }
  throw new Error('the call succeeded; a refusal was expected');
}

/** Every entry of a tree with its type, mode and link target, then each file's digest. */
async function listing(dir: string): Promise<string> {
  const script = "find . -mindepth 1 -printf '%y %m %p %l\\n' | LC_ALL=C sort; find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum";
  return (await run('bash', ['-c', script], { cwd: dir })).stdout;
}

describe('client: the typed client against a real server', function () {
  this.timeout(120_000);
  let s: TestServer;
  let th: ToolhostClient;
  let tmp: string;

  before(async () => {
    s = await startServer({ commands: { killGraceS: 1 } });
    th = new ToolhostClient({ url: s.url, token: s.token });
    tmp = await tempDir('toolhost-client-test-');
    const src = join(tmp, 'src');
    await mkdir(join(src, 'lib', 'empty'), { recursive: true });
    await writeFile(join(src, 'hello.txt'), 'hello from the client\n');
    await writeFile(join(src, 'lib', 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    await symlink('hello.txt', join(src, 'link'));
    await writeFile(join(src, 'drop.log'), 'left out\n');
  });
  after(async () => {
    await s?.close({ force: true });
    if (tmp) await run('rm', ['-rf', tmp]);
  });

  it('pushes a folder, lists it, and pulls back exactly what was pushed (minus the excluded)', async () => {
    const pushed = await th.projects.push('cl', join(tmp, 'src'), { exclude: ['*.log'] });
    expect(pushed.created).to.equal(true);
    expect(pushed.info).to.include({ project_id: 'cl', cached: true });
    expect(pushed.packed.skipped).to.deep.equal([]);
    expect((await th.projects.list()).map((p) => p.project_id)).to.include('cl');
    expect((await th.projects.info('cl')).cache).to.not.equal(null);

    const again = await refusal(th.projects.push('cl', join(tmp, 'src')));
    expect(again).to.include({ code: 'project_exists', status: 409 });
    expect((await th.projects.push('cl', join(tmp, 'src'), { replace: true, exclude: ['*.log'] })).created).to.equal(false);

    await th.projects.pull('cl', join(tmp, 'pulled'));
    const expected = (await listing(join(tmp, 'src'))).replace(/.*drop\.log.*\n/g, '');
    expect(await listing(join(tmp, 'pulled'))).to.equal(expected);
    const busy = await refusal(th.projects.pull('cl', join(tmp, 'pulled')));
    expect(busy.message).to.match(/not empty/);
  });

  it('runs a command and follows its output, both streams, to its end and exit code', async () => {
    const seen: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
    const end = await th.run(
      { project_id: 'cl', command: 'cat hello.txt; for i in 1 2 3; do echo "line $i"; sleep 0.2; done; echo oops >&2; exit 3' },
      { onOutput: (stream, text) => (seen[stream] += text) },
    );
    expect(end).to.include({ type: 'end', status: 'completed', exit_code: 3 });
    expect(seen.stdout).to.equal('hello from the client\nline 1\nline 2\nline 3\n');
    expect(seen.stderr).to.equal('oops\n');

    // From offsets: only what comes after them, by status and by the event stream.
    const skip = 'hello from the client\n'.length;
    const page: CommandView = await th.jobs.status(end.job_id, { stdout_offset: skip, stderr_offset: 0 });
    expect(page.stdout).to.equal('line 1\nline 2\nline 3\n');
    let rest = '';
    await th.jobs.follow(end.job_id, { from: { stdout: skip + 'line 1\n'.length, stderr: 5 }, onOutput: (_s, t) => (rest += t) });
    expect(rest).to.equal('line 2\nline 3\n');
    expect((await th.jobs.list({ project_id: 'cl' })).map((j) => j.job_id)).to.include(end.job_id);
  });

  it('follows on when the event stream drops mid-way: every byte once, in order', async () => {
    // A proxy that cuts the connection right after passing on the first output event.
    let cuts = 0;
    const target = new URL(s.url);
    const proxy = createServer((down) => {
      const up = connect(Number(target.port), target.hostname);
      down.pipe(up);
      up.on('data', (chunk: Buffer) => {
        down.write(chunk);
        if (cuts === 0 && chunk.includes('event: stdout')) {
          cuts++;
          down.destroy();
          up.destroy();
        }
      });
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
      up.on('end', () => down.end());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const via = new ToolhostClient({ url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, token: s.token });
      let out = '';
      const end = await via.run({ project_id: 'cl', command: 'for i in 1 2 3 4; do echo "line $i"; sleep 0.3; done' }, { onOutput: (_s, t) => (out += t) });
      expect(cuts).to.equal(1);
      expect(end.exit_code).to.equal(0);
      expect(out).to.equal('line 1\nline 2\nline 3\nline 4\n');
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('executes with a wait, cancels a background job and sends input', async () => {
    const done = await th.execute({ project_id: 'cl', command: 'lib/run.sh', wait_s: 30 });
    expect(done).to.include({ status: 'completed', exit_code: 0, stdout: 'ran\n' });

    const bg = await th.execute({ project_id: 'cl', command: 'sleep 60', background: true });
    const cancelled = await th.jobs.cancel(bg.job_id);
    expect(cancelled.status).to.equal('cancelled');
    const end = await th.jobs.follow(bg.job_id);
    expect(end.status).to.equal('cancelled');

    const cat = await th.execute({ project_id: 'cl', command: 'read line; echo "got $line"', stdin: 'pipe', background: true });
    expect(await th.jobs.input(cat.job_id, 'yes\n', { eof: true })).to.include({ bytes: 4, eof: true });
    let out = '';
    expect((await th.jobs.follow(cat.job_id, { onOutput: (_s, t) => (out += t) })).exit_code).to.equal(0);
    expect(out).to.equal('got yes\n');
  });

  it('saves, checkpoints, restores and forks', async () => {
    await th.execute({ project_id: 'cl', command: 'echo v2 > hello.txt', wait_s: 30 });
    const saved = await th.projects.save('cl');
    expect(saved).to.include({ project_id: 'cl', saved: true, dirty: false });
    const cp = await th.checkpoints.create('cl', { label: 'at v2' });
    expect(cp).to.include({ label: 'at v2', kind: 'manual' });
    expect(cp.checkpoint_id).to.match(/^cp_/);
    expect((await th.checkpoints.list('cl')).map((c) => c.checkpoint_id)).to.include(cp.checkpoint_id);

    await th.execute({ project_id: 'cl', command: 'echo v3 > hello.txt', wait_s: 30 });
    const restored = await th.checkpoints.restore('cl', cp.checkpoint_id);
    expect(restored).to.include({ project_id: 'cl', checkpoint_id: cp.checkpoint_id });
    expect((await th.execute({ project_id: 'cl', command: 'cat hello.txt', wait_s: 30 })).stdout).to.equal('v2\n');

    const fork = await th.checkpoints.fork('cl', 'cl-fork');
    expect(fork).to.include({ project_id: 'cl-fork', source_project_id: 'cl' });
    const file = join(tmp, 'fork.tar.gz');
    expect(await th.projects.download('cl-fork', file)).to.be.above(0);
    expect((await readFile(file)).subarray(0, 2)).to.deep.equal(Buffer.from([0x1f, 0x8b]));
    expect(await th.projects.delete('cl-fork')).to.include({ project_id: 'cl-fork' });
    expect((await refusal(th.projects.info('cl-fork'))).code).to.equal('project_not_found');
  });

  it('creates an empty project and evicts it', async () => {
    expect(await th.projects.create('empty-one', { git_init: true })).to.include({ project_id: 'empty-one' });
    expect((await th.execute({ project_id: 'empty-one', command: 'git symbolic-ref --short HEAD', wait_s: 30 })).stdout).to.equal('main\n');
    expect(await th.projects.evict('empty-one')).to.deep.equal({ project_id: 'empty-one', evicted: true });
  });

  it('reports health and reloads', async () => {
    const h = await th.health();
    expect(h.status).to.equal('ok');
    expect(h.role).to.equal('all');
    expect(h.containment?.sandbox).to.be.oneOf(['bwrap', 'none']);
    expect(await new ToolhostClient({ url: s.url }).health()).to.have.keys('status');
    const r = await th.reload();
    expect(r.applied).to.be.an('array');
    expect(r.restart_required).to.be.an('array');
  });

  it("rejects with the API's code, status and message", async () => {
    const missing = await refusal(th.projects.info('no-such-project'));
    expect(missing).to.include({ code: 'project_not_found', status: 404 });
    expect(missing.message).to.match(/no-such-project/);

    const badId = await refusal(th.projects.info('../etc'));
    expect(badId).to.include({ code: 'invalid_project_id', status: 400 });

    const job = await refusal(th.jobs.status('00000000-0000-4000-8000-000000000000'));
    expect(job).to.include({ code: 'job_not_found', status: 404 });
    expect(job.details).to.have.property('job_id');
    expect((await refusal(th.jobs.follow('00000000-0000-4000-8000-000000000000'))).code).to.equal('job_not_found');

    const wrong = await refusal(new ToolhostClient({ url: s.url, token: 'x'.repeat(40) }).projects.list());
    const direct = await s.api('/projects', undefined, { token: 'x'.repeat(40) });
    expect(wrong).to.include({ code: 'unauthorized', status: 401, message: direct.body.error.message });

    const bad = await refusal(th.execute({ project_id: 'cl', command: '' }));
    expect(bad.status).to.equal(400);
    expect((await refusal(Promise.resolve().then(() => th.execute({ project_id: 'cl', command: 'true', wait_s: 191 })))).code).to.equal('bad_request');
  });

  it('names an unreachable server as such, and refuses a URL that is none', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as { port: number };
        srv.close(() => resolve(port));
      });
    });
    const down = await refusal(new ToolhostClient({ url: `http://127.0.0.1:${port}` }).health());
    expect(down).to.include({ code: 'unreachable', status: 0 });
    expect(down.message).to.match(/ECONNREFUSED/);
    expect(() => new ToolhostClient({ url: 'localhost:8080' })).to.throw(TypeError, /http/);
    expect(() => new ToolhostClient({ url: 'not a url' })).to.throw(TypeError, /not a URL/);
  });
});

// The client's declared wire types against the server's schemas: a field the server sends that the client's type
// does not accept, or a request the server's schema would not take, fails the type check here.
type Accepts<Client, Server> = [Server] extends [Client] ? true : false;
const _conforms: [
  Accepts<client.CommandView, z.infer<typeof commandView>>,
  Accepts<client.JobListItem, z.infer<typeof jobListItem>>,
  Accepts<z.input<typeof executeRequest>, ExecuteRequest>,
  Accepts<client.ProjectSummary, z.infer<typeof projectListTool.output>['projects'][number]>,
  Accepts<client.ProjectInfo, z.infer<typeof projectInfoTool.output>>,
  Accepts<client.SaveResult, z.infer<typeof projectSaveTool.output>>,
  Accepts<client.CheckpointInfo, z.infer<typeof checkpointCreateTool.output>>,
  Accepts<client.RestoreResult, z.infer<typeof checkpointRestoreTool.output>>,
  Accepts<client.ForkResult, z.infer<typeof projectForkTool.output>>,
  Accepts<client.ReloadReport, ReloadReport>,
] = [true, true, true, true, true, true, true, true, true, true];
void _conforms;
