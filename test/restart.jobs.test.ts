/**
 * Command jobs across a restart of the supervisor process: a finished job keeps its output, a command that was
 * running when the process died is `interrupted` with the output it had, and a graceful stop ends background jobs
 * at once instead of waiting out shutdown.graceS.
 */
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { type ExecuteResult, executeRequest, executeTool } from '../handlers/execute.js';
import { jobLogPaths } from '../lib/process/job-logs.js';
import { CommandJobs } from '../supervisor/command-jobs.js';
import { newJob } from '../supervisor/http/tools.js';
import { createLogger } from '../supervisor/logger.js';
import { type ChildServer, startChild } from './helpers/child-server.js';
import { authHeaders, buildArchive, tempDir } from './helpers/harness.js';
import { LeakGuard } from './helpers/jobs.js';
import { eventually, processesWith } from './helpers/procs.js';

async function call(srv: ChildServer, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(srv.url + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...authHeaders(srv.token) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
}

/** Waits (long-polling GET /jobs/:id) until the job's stdout holds `text`. */
async function untilPrinted(srv: ChildServer, id: string, text: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const r = await call(srv, `/jobs/${id}?wait_s=1`);
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    if (String(r.body.stdout).includes(text)) return;
  }
  throw new Error(`job ${id} never printed ${text}`);
}

async function untilRunning(srv: ChildServer, n: number): Promise<void> {
  for (;;) {
    const h = (await call(srv, '/health')).body as { jobs: { running: number } };
    if (h.jobs.running >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('restart: command jobs outlive the supervisor process', () => {
  const guard = new LeakGuard('restart');
  const servers: ChildServer[] = [];
  let data: string;

  afterEach(async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.exited));
    await guard.check();
    for (const s of servers) await rm(s.dataDir, { recursive: true, force: true });
    servers.length = 0;
  });

  /** A supervisor on the data dir of the first one started in this test (its own on the first call). */
  async function start(config: Record<string, unknown> = {}): Promise<ChildServer> {
    const first = servers[0];
    const srv = await startChild({ logLevel: 'info', commands: { killGraceS: 1 }, ...config, ...(first ? { dataDir: data } : {}) });
    if (!first) {
      data = join(srv.dataDir, 'data');
      const put = await fetch(`${srv.url}/projects/p`, {
        method: 'PUT',
        headers: authHeaders(srv.token),
        body: (await buildArchive({ 'a.txt': 'a\n' })) as unknown as BodyInit,
      });
      expect(put.status).to.equal(201);
    }
    servers.push(srv);
    return srv;
  }

  it('after kill -9, a finished job reads as before and the running one is interrupted with the output it had', async function () {
    this.timeout(240_000); // three supervisor starts
    const a = await start();
    const done = await call(a, '/execute', { project_id: 'p', command: 'echo finished-output; echo to-stderr >&2; exit 3' });
    expect(done.status, JSON.stringify(done.body)).to.equal(200);
    expect(done.body.status).to.equal('completed');
    const marker = guard.marker('sleep');
    const run = await call(a, '/execute', { project_id: 'p', command: `echo started-line; exec -a ${marker} sleep 60`, background: true });
    expect(run.body.status).to.be.oneOf(['queued', 'running']);
    await untilPrinted(a, run.body.job_id, 'started-line');

    a.child.kill('SIGKILL');
    await a.exited;
    // The dead supervisor's command outlives it (nothing of the old run kills it); the test ends it itself.
    for (const pid of processesWith(marker)) process.kill(pid, 'SIGKILL');

    const b = await start();
    const finished = await call(b, `/jobs/${done.body.job_id}`);
    expect(finished.status, JSON.stringify(finished.body)).to.equal(200);
    expect(finished.body).to.include({ status: 'completed', exit_code: 3, stdout: 'finished-output\n', stderr: 'to-stderr\n', logs_removed: false });
    expect(finished.body.finished_at).to.equal(done.body.finished_at);

    const cut = await call(b, `/jobs/${run.body.job_id}?wait_s=0`);
    expect(cut.status, JSON.stringify(cut.body)).to.equal(200);
    expect(cut.body).to.include({ status: 'interrupted', stdout: 'started-line\n', exit_code: null, cancelled: false });
    expect(cut.body.started_at).to.be.a('string');
    expect(cut.body.finished_at).to.be.a('string');
    expect(cut.body.more_bytes).to.deep.equal({ stdout: 0, stderr: 0 });

    const list = await call(b, '/jobs?project_id=p');
    const byId = Object.fromEntries((list.body.jobs as { job_id: string; status: string }[]).map((j) => [j.job_id, j.status]));
    expect(byId).to.deep.equal({ [done.body.job_id]: 'completed', [run.body.job_id]: 'interrupted' });

    // The model reads what interrupted means and what to do.
    const text = await call(b, '/tools/job_status/call?format=text', { job_id: run.body.job_id, wait_s: 0 });
    expect(text.body.text).to.match(/^interrupted.*the server restarted while it ran.*run it again if needed/);
    expect(text.body.text).to.include('started-line');
    // The schema callers generate clients from knows the status.
    const doc = (await call(b, '/openapi.json')).body;
    expect(JSON.stringify(doc)).to.include('"interrupted"');

    // Input to a job that ended this way is refused like input to any ended job.
    const input = await call(b, `/jobs/${run.body.job_id}/input`, { data: 'x' });
    expect(input.status).to.be.within(400, 499);

    // Stays so across a clean restart, with the same end time.
    b.child.kill('SIGTERM');
    expect(await b.exited).to.equal(0);
    const c = await start();
    const again = await call(c, `/jobs/${run.body.job_id}?wait_s=0`);
    expect(again.body).to.include({ status: 'interrupted', stdout: 'started-line\n', finished_at: cut.body.finished_at });
    expect((await call(c, `/jobs/${done.body.job_id}`)).body.stdout).to.equal('finished-output\n');
  });

  it('a graceful stop ends a background job at once, lets foreground work finish, and the job reads as interrupted after', async function () {
    // With a grace of 600 s, a stop that waited for the background job would outlive this test's timeout.
    this.timeout(240_000);
    const a = await start({ shutdown: { graceS: 600 } });
    const marker = guard.marker('server');
    const bg = await call(a, '/execute', { project_id: 'p', command: `echo serving; exec -a ${marker} sleep 1000`, background: true });
    await untilPrinted(a, bg.body.job_id, 'serving');
    const fg = call(a, '/execute', { project_id: 'p', command: 'sleep 1; echo foreground-done' });
    await untilRunning(a, 2);

    a.child.kill('SIGTERM');
    const answer = await fg;
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    expect(answer.body).to.include({ status: 'completed', stdout: 'foreground-done\n' });
    expect(await a.exited).to.equal(0);
    expect(a.logs.some((l) => l.msg === 'toolhost stopped')).to.equal(true);
    expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);

    const b = await start();
    const ended = await call(b, `/jobs/${bg.body.job_id}?wait_s=0`);
    expect(ended.body).to.include({ status: 'interrupted', stdout: 'serving\n', cancelled: false });
    expect(ended.body.signal).to.be.a('string'); // its tree was killed
  });

  it('a graceful stop right after a background command was accepted does not let it start and wait out the grace', async function () {
    // The stop lands while the pump is between taking the job and starting it (the command never got a channel):
    // it once started anyway and ran until shutdown.graceS killed it.
    this.timeout(240_000);
    const a = await start({ shutdown: { graceS: 600 } });
    const marker = guard.marker('late');
    const bg = await call(a, '/execute', { project_id: 'p', command: `exec -a ${marker} sleep 1000`, background: true });
    a.child.kill('SIGTERM');
    expect(await a.exited).to.equal(0);
    expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
    const b = await start();
    const ended = await call(b, `/jobs/${bg.body.job_id}?wait_s=0`);
    expect(ended.body.status).to.equal('interrupted');
  });

  it('forgets what it finds past jobs.retentionMinutes, logs included', async function () {
    this.timeout(180_000);
    const a = await start();
    const done = await call(a, '/execute', { project_id: 'p', command: 'echo old' });
    expect(done.body.status).to.equal('completed');
    a.child.kill('SIGTERM');
    expect(await a.exited).to.equal(0);
    const jobs = join(data, 'jobs');
    const file = join(jobs, `${done.body.job_id}.json`);
    const rec = JSON.parse(await readFile(file, 'utf8')) as { finishedAt: number };
    rec.finishedAt -= 2 * 60 * 60_000;
    await writeFile(file, JSON.stringify(rec));
    // Files that belong to no record (a record cut short, orphaned logs) are removed too.
    await writeFile(join(jobs, '00000000-0000-4000-8000-000000000001.json'), '{"id": "00000000-0000-40');
    await writeFile(join(jobs, '00000000-0000-4000-8000-000000000002.stdout'), 'orphan');

    const b = await start({ jobs: { retentionMinutes: 60 } });
    const gone = await call(b, `/jobs/${done.body.job_id}`);
    expect(gone.status).to.equal(404);
    expect(gone.body.error.code).to.equal('job_not_found');
    expect(await readdir(jobs)).to.deep.equal([]);
  });
});

describe('restart: the registry of command jobs across instances, driven directly', () => {
  let dataDir: string;
  const channels: MessageChannel[] = [];
  const registries: CommandJobs[] = [];
  beforeEach(async () => {
    dataDir = await tempDir('toolhost-records-');
  });
  afterEach(async () => {
    for (const r of registries) await r.close();
    for (const c of channels) c.port1.close();
    registries.length = 0;
    channels.length = 0;
    await rm(dataDir, { recursive: true, force: true });
  });

  async function registry(jobs: Record<string, unknown> = {}): Promise<CommandJobs> {
    const config = loadConfig({ overrides: { dataDir, logLevel: 'silent', jobs } });
    const r = new CommandJobs(config, createLogger('silent'));
    await r.start();
    registries.push(r);
    return r;
  }

  function accept(r: CommandJobs, body: Record<string, unknown>): string {
    const req = executeRequest.parse({ project_id: 'p', ...body });
    const job = newJob(executeTool, 'p', req);
    r.create(job, req);
    return job.id;
  }

  function start(r: CommandJobs, id: string): void {
    const channel = new MessageChannel();
    channels.push(channel);
    r.started(id, channel.port1);
  }

  it('a job queued or running when its registry went away is interrupted in the next one; a cancelled one stays cancelled', async () => {
    const a = await registry();
    const queued = accept(a, { command: 'true', background: true });
    const running = accept(a, { command: 'yes' });
    start(a, running);
    await writeFile(jobLogPaths(dataDir, running).stdout, 'half a li');
    const cancelled = accept(a, { command: 'true' });
    a.cancel(cancelled);
    await a.close(); // its records are on disk, as a crash after these writes would leave them

    const b = await registry();
    expect(b.status(queued)).to.equal('interrupted');
    const v = await b.view(running, 'page');
    expect(v).to.include({ status: 'interrupted', stdout: 'half a li', stdout_offset: 9, exit_code: null });
    expect(v.duration_ms).to.be.a('number');
    expect(b.status(cancelled)).to.equal('cancelled');
  });

  it('a graceful stop interrupts background jobs only, queued ones included', async () => {
    const a = await registry();
    const bgQueued = accept(a, { command: 'serve', background: true });
    const bgRunning = accept(a, { command: 'serve', background: true });
    start(a, bgRunning);
    const fg = accept(a, { command: 'make' });
    start(a, fg);
    a.interruptBackground();
    expect(a.status(bgQueued)).to.equal('interrupted');
    // A running one ends when its handler reports the kill.
    expect(a.status(bgRunning)).to.equal('running');
    a.finished(bgRunning, { ok: false, error: { code: 'cancelled', message: 'killed' } });
    expect(a.status(bgRunning)).to.equal('interrupted');
    expect(a.status(fg)).to.equal('running');
    a.finished(fg, { ok: false, error: { code: 'cancelled', message: 'killed' } });
  });

  it('keeps what a sweep did (logs removed for disk) and why a job failed across restarts', async () => {
    const a = await registry();
    const big = accept(a, { command: 'big' });
    start(a, big);
    await writeFile(jobLogPaths(dataDir, big).stdout, 'x'.repeat(100));
    a.finished(big, { ok: true, value: result(big, 'x'.repeat(100)) });
    const failed = accept(a, { command: 'nope' });
    a.finished(failed, { ok: false, error: { code: 'project_not_found', message: 'no project p' } });
    await a.close();

    const b = await registry({ maxLogDiskBytes: 10 }); // its first sweep removes the logs
    expect((await b.view(big, 'page')).logs_removed).to.equal(true);
    await b.close();

    const c = await registry();
    const v = await c.view(big, 'page');
    expect(v).to.include({ status: 'completed', logs_removed: true, stdout: '', stdout_offset: 100, exit_code: 0 });
    const f = await c.view(failed, 'page');
    expect(f.status).to.equal('failed');
    expect(f.error).to.deep.include({ code: 'project_not_found' });
  });
});

/** What execute's handler reports for a command that printed `stdout` and exited 0. */
function result(id: string, stdout: string): ExecuteResult {
  const size = Buffer.byteLength(stdout);
  const zero = { stdout: 0, stderr: 0 };
  return {
    job_id: id,
    exit_code: 0,
    signal: null,
    stdout,
    stderr: '',
    timed_out: false,
    cancelled: false,
    duration_ms: 1,
    truncated: { stdout: false, stderr: false },
    omitted_bytes: zero,
    omitted_lines: zero,
    omitted_offset: { stdout: null, stderr: null },
    stdout_offset: size,
    stderr_offset: 0,
    log_dropped_bytes: zero,
    invalid_utf8: { stdout: false, stderr: false },
  };
}
