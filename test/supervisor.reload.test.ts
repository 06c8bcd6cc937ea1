import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { ToolhostError } from '../lib/errors.js';
import { startSupervisor } from '../supervisor/supervisor.js';
import { type ChildServer, startChild } from './helpers/child-server.js';
import { authHeaders, startServer, type TestServer, tempDir } from './helpers/harness.js';
import { type CapturedLog, captureLog } from './helpers/log-capture.js';
import { eventually } from './helpers/procs.js';

/** Polls an async check: for tests only. */
async function until(check: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return check();
}

describe('config reload: POST /admin/reload', () => {
  const token = 'reload-token-0123456789abcdef';
  const base = { commands: { threads: 1, maxConcurrent: 1, maxPerProject: 1, killGraceS: 1 }, pool: { maxThreads: 2 } };
  let dir: string;
  let file: string;
  let s: TestServer;
  let captured: CapturedLog;

  const writeConfig = (config: unknown): Promise<void> => writeFile(file, typeof config === 'string' ? config : JSON.stringify(config));
  const reload = () => s.api('/admin/reload', undefined, { method: 'POST' });
  const health = async () => (await s.api('/health')).body;

  beforeEach(async () => {
    dir = await tempDir('toolhost-reload-');
    file = join(dir, 'config.json');
    await writeConfig(base);
    captured = captureLog('info');
    s = await startServer({ token, logLevel: 'info' }, { log: captured.log, configFile: file });
    expect((await s.putProject('r', { 'a.txt': 'line one\nline two\nline three\n', 'd1/d2/d3/f.txt': 'deep\n' })).status).to.equal(201);
  });
  afterEach(async () => {
    await s?.close({ force: true });
    await rm(dir, { recursive: true, force: true });
  });

  it('applies a larger pool while a long command keeps running on the old one and completes', async () => {
    const order: string[] = [];
    // The first command runs until the test creates the file "go": the order of answers cannot depend on timing.
    const first = s
      .api('/execute', { project_id: 'r', command: 'until [ -e go ]; do sleep 0.05; done; echo first', timeout_s: 60 })
      .finally(() => order.push('first'));
    expect(await until(async () => (await health()).jobs.running === 1)).to.equal(true);
    // One command slot: the second command waits for it.
    const second = s.api('/execute', { project_id: 'r', command: 'echo second' }).finally(() => order.push('second'));
    expect(await until(async () => (await health()).queue.depth === 1)).to.equal(true);

    await writeConfig({ ...base, commands: { threads: 2, maxConcurrent: 4, maxPerProject: 4, killGraceS: 1 }, pool: { maxThreads: 4 } });
    const r = await reload();
    expect(r.status).to.equal(200);
    expect(r.body.file).to.equal(file);
    expect(r.body.applied).to.have.members(['commands.threads', 'commands.maxConcurrent', 'commands.maxPerProject', 'pool.maxThreads']);
    expect(r.body.restart_required).to.deep.equal([]);
    expect(s.sup.config.commands.maxConcurrent).to.equal(4);

    const b = await second;
    expect(order, 'the waiting command ran on the new slots while the first still runs').to.deep.equal(['second']);
    expect((await s.api('/file/write', { project_id: 'r', path: 'go', content: '' })).status).to.equal(200);
    const a = await first;
    expect(a.body).to.include({ status: 'completed', exit_code: 0, stdout: 'first\n', cancelled: false });
    expect(b.body).to.include({ status: 'completed', stdout: 'second\n' });
    // The old command pool retires once its command has ended; the new one has the new size.
    expect(await until(async () => (await health()).pool.lanes.commands.threads === 2)).to.equal(true);
    expect(captured.lines.some((l) => l.msg === 'config reloaded')).to.equal(true);
  });

  it("applies handler limits and the front's checks to new jobs", async () => {
    expect((await s.api('/file/list', { project_id: 'r', depth: 3 })).status).to.equal(200);
    await writeConfig({ ...base, files: { maxReadBytes: 12, maxWriteBytes: 16777216 }, list: { maxEntries: 5000, maxDepth: 2 } });
    const r = await reload();
    expect(r.body.applied).to.have.members(['files.maxReadBytes', 'list.maxDepth']);
    const read = await s.api('/file/read', { project_id: 'r', path: 'a.txt' });
    expect(read.body).to.include({ content: 'line one\n', truncated: true });
    const list = await s.api('/file/list', { project_id: 'r', depth: 3 });
    expect(list.status).to.equal(400);
    expect(list.body.error.message).to.include('list.maxDepth (2)');
  });

  it('applies new output budgets to the commands that follow, in their answers and in the pages job_status reads', async () => {
    const seq = { project_id: 'r', command: 'seq 1 20000' };
    const before = await s.api('/execute', seq);
    expect(before.body.stdout.length + before.body.stderr.length).to.be.greaterThan(20_000);
    const defaults = (await loadConfig({ env: {} })).budgets;
    await writeConfig({ ...base, budgets: { ...defaults, outputChars: 2000 } });
    const r = await reload();
    expect(r.body.applied).to.deep.equal(['budgets.outputChars']);
    const after = await s.api('/execute', seq);
    expect(after.body.status).to.equal('completed');
    expect(after.body.stdout.length + after.body.stderr.length).to.be.within(1000, 2000);
    expect(after.body.truncated.stdout).to.equal(true);
    const page = await s.api(`/jobs/${after.body.job_id}?stdout_offset=${after.body.omitted_offset.stdout}&wait_s=0`, undefined, { method: 'GET' });
    expect(page.body.stdout.length).to.be.within(1000, 2000);
  });

  it('refuses an invalid config with the reason, logs it, and keeps the config in effect', async () => {
    const before = s.sup.config;
    await writeConfig({ ...base, pool: { maxThreads: -1 }, commandz: {} });
    const r = await reload();
    expect(r.status).to.equal(422);
    expect(r.body.error.code).to.equal('invalid_config');
    expect(r.body.error.message).to.include('pool.maxThreads').and.include('commandz');
    expect(s.sup.config).to.equal(before);
    const logged = captured.lines.find((l) => l.msg === 'config reload refused');
    expect(logged?.reason).to.include('pool.maxThreads');
    expect((await s.api('/file/read', { project_id: 'r', path: 'a.txt' })).status, 'still serving').to.equal(200);
  });

  it('refuses a file that is not JSON without echoing its text', async () => {
    // V8 quotes the start of the text in some JSON.parse errors.
    const secret = 'do-not-echo-0123456789abcdef';
    for (const text of [`{"token": "${secret}"`, `${secret}`]) {
      await writeConfig(text);
      const r = await reload();
      expect(r.status).to.equal(422);
      expect(r.body.error.message).to.include('not valid JSON');
      expect(JSON.stringify(r.body)).not.to.include(secret.slice(0, 8));
    }
    expect(captured.text()).not.to.include(secret.slice(0, 8));
  });

  it('reports options that need a restart and keeps their old values', async () => {
    const queue = { backend: 'memory', maxDepth: 7 };
    await writeConfig({
      ...base,
      queue,
      http: { maxBodyBytes: 1000, maxArchiveBytes: 1000000, requestTimeoutS: 100 },
      commands: { ...base.commands, maxConcurrent: 3 },
    });
    const r = await reload();
    expect(r.status).to.equal(200);
    expect(r.body.restart_required).to.have.members(['queue.maxDepth', 'http.maxBodyBytes']);
    expect(r.body.applied).to.have.members(['http.maxArchiveBytes', 'http.requestTimeoutS', 'commands.maxConcurrent']);
    expect(s.sup.config.queue.maxDepth).to.equal(10000);
    expect(s.sup.config.commands.maxConcurrent).to.equal(3);
    expect(s.sup.config.http).to.deep.equal({ maxBodyBytes: 16777216, maxArchiveBytes: 1000000, requestTimeoutS: 100, allowedHosts: [], allowedOrigins: [] });
    expect(Object.isFrozen(s.sup.config.http)).to.equal(true);
  });

  it('needs the token', async () => {
    expect((await s.api('/admin/reload', undefined, { method: 'POST', token: 'wrong-token-wrong-token' })).status).to.equal(401);
  });
});

describe('config reload without a config source', () => {
  it('refuses, since there is nothing to re-read', async () => {
    const dataDir = await tempDir('toolhost-data-');
    const sup = await startSupervisor(loadConfig({ overrides: { port: 0, dataDir, logLevel: 'silent' } }));
    try {
      const err = await sup.reload().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ToolhostError);
      expect((err as ToolhostError).code).to.equal('bad_request');
    } finally {
      await sup.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('config reload: SIGHUP', () => {
  let srv: ChildServer | undefined;
  afterEach(async () => {
    if (srv && srv.child.exitCode === null) srv.child.kill('SIGKILL');
    if (srv) await rm(srv.dataDir, { recursive: true, force: true });
    srv = undefined;
  });

  it('re-reads the config file on SIGHUP, refuses a bad one, and applies the log level', async () => {
    srv = await startChild({ logLevel: 'info', commands: { maxConcurrent: 2 } });
    const s = srv;
    const file = join(s.dataDir, 'config.json');
    const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, any>;
    const rewrite = (over: Record<string, unknown>): Promise<void> => writeFile(file, JSON.stringify({ ...config, ...over }));
    const count = (msg: string): number => s.logs.filter((l) => l.msg === msg).length;

    await rewrite({ commands: { maxConcurrent: 5 } });
    s.child.kill('SIGHUP');
    expect(await eventually(() => count('config reloaded') === 1)).to.equal(true);
    expect(s.logs.find((l) => l.msg === 'config reloaded')!.applied).to.deep.equal(['commands.maxConcurrent']);

    await writeFile(file, '{"commands": {"maxConcurrent": 0}}');
    s.child.kill('SIGHUP');
    expect(await eventually(() => count('config reload refused') === 1)).to.equal(true);
    expect(s.logs.find((l) => l.msg === 'config reload refused')!.reason).to.include('commands.maxConcurrent');
    expect((await fetch(`${s.url}/health`)).status, 'still serving').to.equal(200);

    await rewrite({ commands: { maxConcurrent: 5 }, logLevel: 'warn' });
    const r = (await (await fetch(`${s.url}/admin/reload`, { method: 'POST', headers: authHeaders(s.token) })).json()) as { applied: string[] };
    expect(r.applied).to.deep.equal(['logLevel']);
    await fetch(`${s.url}/health`, { headers: { 'x-request-id': 'after-warn', ...authHeaders(s.token) } });
    // An error line (still logged at warn) marks the point by which the request line would have appeared.
    await writeFile(file, '{');
    s.child.kill('SIGHUP');
    expect(await eventually(() => count('config reload refused') === 2)).to.equal(true);
    expect(s.logs.some((l) => l.request_id === 'after-warn')).to.equal(false);

    s.child.kill('SIGTERM');
    expect(await s.exited).to.equal(0);
  });
});
