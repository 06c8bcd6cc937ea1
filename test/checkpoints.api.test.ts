/**
 * Checkpoints, restore and fork as agents and HTTP clients reach them: the four tools over their routes and over
 * MCP (the official SDK client), against a real server whose commands change the project behind the tools' backs.
 * A restore must bring back exactly the earlier tree (contents, modes, symlinks, empty folders, deletions), and be
 * undone by restoring its automatic checkpoint; a fork and its source must change independently; bad input gets a
 * 4xx that says what to do; GET /projects/:id/archive gives the whole project as one archive.
 */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { expect } from 'chai';
import { type Azurite, containerClient, startAzurite, uniqueContainerName } from './helpers/azurite.js';
import { type ChildServer, startChild } from './helpers/child-server.js';
import { authHeaders, buildArchive, startServer, type TestServer, tempDir } from './helpers/harness.js';
import { errorJson, mcpClient, resultText, type ToolResult } from './helpers/mcp-client.js';

const run = promisify(execFile);

/**
 * Every entry of the tree with its type, mode and symlink target, then every file's digest: two trees are equal
 * exactly when their listings are.
 */
const LISTING = "find . -mindepth 1 -printf '%y %m %p %l\\n' | LC_ALL=C sort; " + 'find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum';

const FILES = {
  'src/app.ts': 'export const port = 3000;\n',
  'src/lib/util.ts': 'export const twice = (n: number) => 2 * n;\n',
  'README.md': '# cp\n',
  secret: 'token\n',
  target: 'the target\n',
};

describe('checkpoints, restore and fork over HTTP and MCP', function () {
  this.timeout(120_000);
  let s: TestServer;

  before(async () => {
    s = await startServer({ commands: { killGraceS: 1 } });
    expect((await s.putProject('cp', FILES)).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  async function execute(project: string, command: string): Promise<string> {
    const r = await s.api('/execute', { project_id: project, command });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.exit_code, `${command}: ${r.body.stderr}`).to.equal(0);
    return r.body.stdout as string;
  }
  const listing = (project: string) => execute(project, LISTING);
  const checkpoint = (project: string, body: Record<string, unknown> = {}) => s.api(`/projects/${project}/checkpoints`, body);
  const restore = (project: string, id: string) => s.api(`/projects/${project}/checkpoints/${id}/restore`, {});
  const fork = (project: string, body: Record<string, unknown>) => s.api(`/projects/${project}/fork`, body);
  const write = (project: string, path: string, content: string) => s.api('/file/write', { project_id: project, path, content });

  describe('over HTTP', () => {
    let before: string;
    let after: string;
    let first: string;

    it('takes a checkpoint, and a restore brings back exactly that tree after commands changed it', async () => {
      expect((await write('cp', 'notes/todo.md', '- refactor\n')).status).to.equal(200);
      await execute('cp', 'chmod 755 src/app.ts; mkdir -p keep/empty');
      before = await listing('cp');

      const made = await checkpoint('cp', { label: 'before the refactor' });
      expect(made.status, JSON.stringify(made.body)).to.equal(200);
      expect(made.body.checkpoint_id).to.match(/^cp_[a-z0-9]{1,40}$/);
      expect(made.body).to.include({ label: 'before the refactor', kind: 'manual' });
      expect(made.body.bytes_uploaded).to.be.a('number');
      expect(Date.parse(made.body.created_at)).to.not.be.NaN;
      first = made.body.checkpoint_id;

      await execute('cp', 'rm -rf src; mkdir -p gen && echo x > gen/out; ln -s target link; chmod 600 secret; mkdir empty');
      after = await listing('cp');
      expect(after).to.not.equal(before);
      expect(after).to.include('l 777 ./link target');
      expect(after).to.include('f 600 ./secret');
      expect(after).to.include('d 755 ./empty');
      expect(after).to.not.include('./src');

      const list = await s.api('/projects/cp/checkpoints');
      expect(list.status, JSON.stringify(list.body)).to.equal(200);
      expect(list.body.project_id).to.equal('cp');
      const ids = (list.body.checkpoints as { checkpoint_id: string }[]).map((c) => c.checkpoint_id);
      expect(ids).to.include(first);
      const times = (list.body.checkpoints as { created_at: string }[]).map((c) => Date.parse(c.created_at));
      expect(times, 'newest first').to.deep.equal([...times].sort((a, b) => b - a));

      const r = await restore('cp', first);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      expect(r.body).to.include({ project_id: 'cp', checkpoint_id: first });
      expect(r.body.undo_checkpoint_id).to.match(/^cp_/).and.not.equal(first);
      expect(r.body.files_deleted, 'gen/out and link are gone').to.be.at.least(2);
      expect(r.body.files_written, 'src/ is back').to.be.at.least(2);
      expect(await listing('cp')).to.equal(before);

      // The state before the restore was checkpointed: restoring it undoes the restore.
      const undo = await restore('cp', r.body.undo_checkpoint_id);
      expect(undo.status, JSON.stringify(undo.body)).to.equal(200);
      expect(await listing('cp')).to.equal(after);
      const kinds = new Map((await s.api('/projects/cp/checkpoints')).body.checkpoints.map((c: any) => [c.checkpoint_id, c.kind]));
      expect(kinds.get(r.body.undo_checkpoint_id)).to.equal('before-restore');
    });

    it('forks a project that then changes independently of its source, both ways', async () => {
      const f = await fork('cp', { new_project_id: 'cp-fork' });
      expect(f.status, JSON.stringify(f.body)).to.equal(200);
      expect(f.body).to.include({ project_id: 'cp-fork', source_project_id: 'cp', checkpoint_id: null });
      expect(await listing('cp-fork')).to.equal(after);

      expect((await write('cp-fork', 'gen/out', 'fork\n')).status).to.equal(200);
      await execute('cp-fork', 'rm secret; mkdir only-in-fork');
      expect(await listing('cp')).to.equal(after);

      expect((await write('cp', 'README.md', '# changed in the source\n')).status).to.equal(200);
      expect(await execute('cp-fork', 'cat README.md gen/out; LC_ALL=C ls')).to.equal(
        '# cp\nfork\nREADME.md\nempty\ngen\nkeep\nlink\nnotes\nonly-in-fork\ntarget\n',
      );
      expect(await execute('cp', 'cat gen/out; test -e only-in-fork || echo no-fork-dir')).to.equal('x\nno-fork-dir\n');
      expect((await write('cp', 'README.md', '# cp\n')).status).to.equal(200);
      expect(await listing('cp')).to.equal(after);

      // From a checkpoint: the tree as it was then.
      const old = await fork('cp', { new_project_id: 'cp-fork-old', checkpoint_id: first });
      expect(old.status, JSON.stringify(old.body)).to.equal(200);
      expect(old.body).to.include({ project_id: 'cp-fork-old', checkpoint_id: first });
      expect(await listing('cp-fork-old')).to.equal(before);
    });

    it('refuses unknown and malformed checkpoints, taken ids, bad ids and labels, with what to do', async () => {
      const unknown = await restore('cp', 'cp_doesnotexist0');
      expect(unknown.status).to.equal(404);
      expect(unknown.body.error.code).to.equal('checkpoint_not_found');
      const unknownFork = await fork('cp', { new_project_id: 'cp-nope', checkpoint_id: 'cp_doesnotexist0' });
      expect(unknownFork.status).to.equal(404);
      expect(unknownFork.body.error.code).to.equal('checkpoint_not_found');
      expect((await s.api('/projects/cp-nope')).status, 'a failed fork leaves no project').to.equal(404);

      for (const bad of ['CP_ABC', 'cp_', 'cp_a-b', `cp_${'a'.repeat(41)}`, '..%2F..%2Fetc', 'cp_abc%00']) {
        const r = await restore('cp', bad);
        expect(r.status, bad).to.be.within(400, 499);
        expect(r.body.error.code, bad).to.equal('checkpoint_not_found');
        expect(r.body.error.message, bad).to.include('checkpoint_id');
      }
      const badForkCp = await fork('cp', { new_project_id: 'cp-x', checkpoint_id: '../cp_a' });
      expect(badForkCp.status).to.equal(400);
      expect(badForkCp.body.error.message).to.include('checkpoint_id');

      for (const taken of ['cp-fork', 'cp']) {
        const r = await fork('cp', { new_project_id: taken });
        expect(r.status, taken).to.equal(409);
        expect(r.body.error.code).to.equal('project_exists');
      }
      for (const bad of ['../evil', '.hidden', '', 'a/b', 'x'.repeat(129), 'copy.conflict-1', 'a\u0000b']) {
        const r = await fork('cp', { new_project_id: bad });
        expect(r.status, bad).to.equal(400);
        expect(r.body.error.message, bad).to.include('new_project_id');
      }
      expect((await fork('cp', {})).status, 'new_project_id is required').to.equal(400);

      for (const label of ['x'.repeat(201), 'two\nlines', 'nul\u0000', '']) {
        const r = await checkpoint('cp', { label });
        expect(r.status, JSON.stringify(label)).to.equal(400);
        expect(r.body.error.message).to.include('label');
      }
      expect((await checkpoint('cp', { label: 'x'.repeat(200) })).status).to.equal(200);
      const extra = await checkpoint('cp', { label: 'ok', keep: true });
      expect(extra.status).to.equal(400);
      expect(extra.body.error.code).to.equal('unknown_field');

      const noProject = await checkpoint('nope-project');
      expect(noProject.status).to.equal(404);
      expect(noProject.body.error.code).to.equal('project_not_found');
      expect((await s.api('/projects/nope-project/checkpoints')).body.error.code).to.equal('project_not_found');
      const badProject = await s.api('/projects/..bad/checkpoints');
      expect(badProject.status).to.equal(400);
      expect(badProject.body.error.code).to.equal('invalid_project_id');
      expect((await restore('..bad', first)).body.error.code).to.equal('invalid_project_id');
    });

    it('refuses a restore while a command runs in the project (project_busy), and restores once it ended', async () => {
      const marker = `cp-busy-${process.pid}`;
      const running = await s.api('/execute', { project_id: 'cp', command: `exec -a ${marker} sleep 1000`, background: true });
      expect(running.status, JSON.stringify(running.body)).to.equal(200);
      const jobId = running.body.job_id as string;
      const busy = await restore('cp', first);
      expect(busy.status, JSON.stringify(busy.body)).to.equal(409);
      expect(busy.body.error.code).to.equal('project_busy');
      expect(busy.body.error.message).to.match(/cancel|wait|finish/);
      expect(await listing('cp'), 'a refused restore changed nothing').to.equal(after);

      expect((await s.api(`/jobs/${jobId}`, undefined, { method: 'DELETE' })).status).to.equal(200);
      for (let i = 0; i < 30; i++) {
        const page = await s.api(`/jobs/${jobId}?wait_s=2`);
        if (page.body.status !== 'running' && page.body.status !== 'queued') break;
      }
      // The job's record says cancelled a moment before the pump counts it out of the project.
      let ok = await restore('cp', first);
      for (let i = 0; i < 50 && ok.body.error?.code === 'project_busy'; i++) {
        await new Promise((r) => setTimeout(r, 100));
        ok = await restore('cp', first);
      }
      expect(ok.status, JSON.stringify(ok.body)).to.equal(200);
      expect(await listing('cp')).to.equal(before);
      expect((await restore('cp', ok.body.undo_checkpoint_id)).status).to.equal(200);
    });

    it('downloads the whole project as tar.gz and zip, and refuses other formats', async () => {
      const tgz = await fetch(`${s.url}/projects/cp/archive`, { headers: { authorization: `Bearer ${s.token}` } });
      expect(tgz.status).to.equal(200);
      expect(tgz.headers.get('content-type')).to.equal('application/gzip');
      expect(tgz.headers.get('content-disposition')).to.equal('attachment; filename="cp.tar.gz"');
      const dir = await tempDir('toolhost-archive-out-');
      const file = join(dir, 'cp.tar.gz');
      await writeFile(file, Buffer.from(await tgz.arrayBuffer()));
      const tree = join(dir, 'tree');
      await run('mkdir', [tree]);
      await run('tar', ['-xpzf', file, '-C', tree]);
      const { stdout } = await run('bash', ['-c', LISTING], { cwd: tree });
      expect(stdout).to.equal(await listing('cp'));

      const zip = await fetch(`${s.url}/projects/cp/archive?format=zip`, { headers: { authorization: `Bearer ${s.token}` } });
      expect(zip.status).to.equal(200);
      expect(zip.headers.get('content-type')).to.equal('application/zip');
      await writeFile(join(dir, 'cp.zip'), Buffer.from(await zip.arrayBuffer()));
      const { stdout: names } = await run('unzip', ['-Z1', join(dir, 'cp.zip')]);
      expect(names.split('\n')).to.include.members(['README.md', 'gen/out', 'secret', 'link']);
      await run('rm', ['-rf', dir]);

      const bad = await s.api('/projects/cp/archive?format=rar');
      expect(bad.status).to.equal(400);
      expect(bad.body.error.message).to.include('zip').and.include('tar.gz');
      expect((await s.api('/projects/cp/archive?format=zip&x=1')).status).to.equal(400);
      expect((await s.api('/projects/nope-project/archive')).body.error.code).to.equal('project_not_found');
      expect((await s.api('/projects/..bad/archive')).body.error.code).to.equal('invalid_project_id');
    });

    it('lists the four tools in every tool format and in OpenAPI', async () => {
      const names = ['checkpoint_create', 'checkpoint_list', 'checkpoint_restore', 'project_fork'];
      for (const format of ['anthropic', 'openai', 'openai-responses']) {
        const tools = (await s.api(`/tools?format=${format}`)).body.tools as any[];
        const listed = tools.map((t) => t.name ?? t.function?.name);
        expect(listed, format).to.include.members(names);
      }
      const { routes } = (await s.api('/tools')).body;
      expect(routes.checkpoint_restore).to.deep.equal({ method: 'POST', path: '/projects/{project_id}/checkpoints/{checkpoint_id}/restore' });
      const doc = (await s.api('/openapi.json')).body;
      expect(doc.paths['/projects/{project_id}/checkpoints/{checkpoint_id}/restore'].post.parameters.map((p: any) => p.name)).to.deep.equal([
        'project_id',
        'checkpoint_id',
      ]);
      expect(doc.paths['/projects/{project_id}/checkpoints'].get.responses).to.have.property('404');
      expect(doc.paths['/projects/{id}/archive'].get.parameters.map((p: any) => p.name)).to.include('format');
    });
  });

  describe('over MCP', () => {
    let client: Client;
    before(async () => {
      expect((await s.putProject('mcp-cp', { 'a.txt': 'one\n', 'b/c.txt': 'two\n' })).status).to.equal(201);
      client = await mcpClient(s);
    });
    after(async () => client?.close());
    const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as ToolResult;

    it('checkpoints, lists, restores and forks with texts that say what happened and what to do next', async () => {
      const { tools } = await client.listTools();
      const byName = new Map(tools.map((t) => [t.name, t]));
      expect(byName.get('checkpoint_list')?.annotations?.readOnlyHint).to.equal(true);
      expect(byName.get('checkpoint_create')?.description).to.include('risky');
      expect(byName.get('project_fork')?.description).to.include('parallel');

      const before = await listing('mcp-cp');
      const made = await call('checkpoint_create', { project_id: 'mcp-cp', label: 'start' });
      expect(made.isError ?? false, resultText(made)).to.equal(false);
      const id = resultText(made).match(/cp_[a-z0-9]+/)?.[0];
      expect(id, resultText(made)).to.be.a('string');
      expect(resultText(made)).to.include('"start"').and.include('checkpoint_restore');

      await execute('mcp-cp', 'rm -rf b; echo three > a.txt; ln -s a.txt l');
      const list = await call('checkpoint_list', { project_id: 'mcp-cp' });
      expect(resultText(list)).to.include(id!).and.include('newest first');

      const restored = await call('checkpoint_restore', { project_id: 'mcp-cp', checkpoint_id: id });
      expect(restored.isError ?? false, resultText(restored)).to.equal(false);
      const undo = resultText(restored).match(/checkpoint (cp_[a-z0-9]+); restore that one to undo/)?.[1];
      expect(undo, resultText(restored)).to.be.a('string');
      expect(await listing('mcp-cp')).to.equal(before);

      const forked = await call('project_fork', { project_id: 'mcp-cp', new_project_id: 'mcp-cp-2', checkpoint_id: undo });
      expect(forked.isError ?? false, resultText(forked)).to.equal(false);
      expect(resultText(forked)).to.include('mcp-cp-2').and.include(undo!);
      expect(await execute('mcp-cp-2', 'cat a.txt; readlink l; test -e b || echo no-b')).to.equal('three\na.txt\nno-b\n');
      expect(await listing('mcp-cp')).to.equal(before);

      const missing = await call('checkpoint_restore', { project_id: 'mcp-cp', checkpoint_id: 'cp_nothere' });
      expect(missing.isError).to.equal(true);
      expect(errorJson(missing).error.code).to.equal('checkpoint_not_found');
      const taken = await call('project_fork', { project_id: 'mcp-cp', new_project_id: 'mcp-cp-2' });
      expect(errorJson(taken).error.code).to.equal('project_exists');
      const long = await call('checkpoint_create', { project_id: 'mcp-cp', label: 'y'.repeat(201) });
      expect(errorJson(long).error.code).to.equal('bad_request');
    });
  });
});

describe('checkpoints, restore and fork with the Azure roles (Azurite, 1 api + 2 worker processes)', function () {
  this.timeout(240_000);
  let azurite: Azurite;
  let prefix: string;
  const children: ChildServer[] = [];
  let api: ChildServer;
  const workers: Record<string, ChildServer> = {};

  async function start(role: string, nodeId: string): Promise<ChildServer> {
    const child = await startChild({
      role,
      nodeId,
      logLevel: 'info',
      store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container: `${prefix}-projects` } },
      queue: { backend: 'azure', azure: { connectionString: azurite.connectionString, prefix, visibilityS: 6, leaseS: 15 } },
      pool: { maxThreads: 2 },
      commands: { threads: 1, sandbox: 'none' },
      shutdown: { graceS: 1 },
    });
    children.push(child);
    return child;
  }

  /** A request to `server`, with the worker that ran it. */
  async function call(server: ChildServer, path: string, body?: unknown): Promise<{ status: number; body: any; worker: string | null }> {
    const res = await fetch(server.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...authHeaders(server.token) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text, worker: res.headers.get('x-toolhost-worker') };
  }

  before(async () => {
    azurite = await startAzurite();
    prefix = uniqueContainerName('tk').slice(0, 16);
    const projects = containerClient(azurite, `${prefix}-projects`);
    await projects.create();
    // Placed in the store as a plain archive, as an operator would: it loads, and gets checkpoints.
    const archive = await buildArchive({ 'a.txt': 'one\n', 'src/b.txt': 'two\n' });
    await projects.getBlockBlobClient('az.tar.gz').upload(archive, archive.length);
    [api, workers.w1, workers.w2] = await Promise.all([start('api', 'api1'), start('worker', 'w1'), start('worker', 'w2')]);
  });
  after(async () => {
    for (const c of children) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await Promise.all(children.map((c) => rm(c.dataDir, { recursive: true, force: true })));
    await azurite?.stop();
  });

  // A project's first job waits for a worker to take it up (its lease, its copy from the store): on a loaded
  // machine that can take longer than execute's default wait, hence wait_s.
  it("sends a project's checkpoint, list and restore to the worker holding it, and a fork anywhere", async () => {
    const first = await call(api, '/execute', { project_id: 'az', command: 'cat a.txt', wait_s: 180 });
    expect(first.status, JSON.stringify(first.body)).to.equal(200);
    const holder = first.worker!;
    expect(['w1', 'w2']).to.include(holder);

    const made = await call(api, '/projects/az/checkpoints', { label: 'start' });
    expect(made.status, JSON.stringify(made.body)).to.equal(200);
    expect(made.worker).to.equal(holder);
    const changed = await call(api, '/execute', { project_id: 'az', command: 'rm -rf src; echo three > a.txt; ln -s a.txt l; mkdir e', wait_s: 180 });
    expect(changed.body.exit_code, JSON.stringify(changed.body)).to.equal(0);

    const list = await call(api, '/projects/az/checkpoints');
    expect(list.worker).to.equal(holder);
    expect(list.body.checkpoints.map((c: { checkpoint_id: string }) => c.checkpoint_id)).to.include(made.body.checkpoint_id);

    const restored = await call(api, `/projects/az/checkpoints/${made.body.checkpoint_id}/restore`, {});
    expect(restored.status, JSON.stringify(restored.body)).to.equal(200);
    expect(restored.worker).to.equal(holder);
    const tree = await call(api, '/execute', { project_id: 'az', command: 'cat a.txt src/b.txt; ls', wait_s: 180 });
    expect(tree.body.stdout).to.equal('one\ntwo\na.txt\nsrc\n');

    const forked = await call(api, '/projects/az/fork', { new_project_id: 'az-fork', checkpoint_id: restored.body.undo_checkpoint_id });
    expect(forked.status, JSON.stringify(forked.body)).to.equal(200);
    expect(forked.worker).to.equal(holder);
    const inFork = await call(api, '/execute', { project_id: 'az-fork', command: 'cat a.txt; readlink l; test -d e && test ! -e src && echo ok', wait_s: 180 });
    expect(inFork.status, JSON.stringify(inFork.body)).to.equal(200);
    expect(inFork.body.stdout, JSON.stringify(inFork.body)).to.equal('three\na.txt\nok\n');

    // The archive comes from the worker holding the copy; neither an api process nor a worker takes tool routes it cannot serve.
    const archive = await fetch(`${workers[holder]!.url}/projects/az/archive`, { headers: authHeaders(workers[holder]!.token) });
    expect(archive.status).to.equal(200);
    expect(archive.headers.get('content-type')).to.equal('application/gzip');
    expect((await call(api, '/projects/az/archive')).body.error.code).to.equal('not_on_this_role');
    const onWorker = await call(workers[holder]!, '/projects/az/checkpoints', {});
    expect(onWorker.status).to.equal(409);
    expect(onWorker.body.error.code).to.equal('not_on_this_role');
    expect((await call(workers[holder]!, '/projects/az')).status, 'a worker still answers the project tools').to.equal(200);
  });
});
