import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildArchive, startServer, type TestServer } from './helpers/harness.js';
import { type CapturedLog, captureLog } from './helpers/log-capture.js';

/** The value of one sample of the exposition text, e.g. `toolhost_jobs_total{type="search",outcome="ok"}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describe('metrics and structured logs', () => {
  const token = 'metrics-token-0123456789abcdef';
  let s: TestServer;
  let captured: CapturedLog;

  before(async () => {
    captured = captureLog('info');
    s = await startServer({ token, logLevel: 'info' }, { log: captured.log });
    expect((await s.putProject('m', { 'a.txt': 'hello\n' })).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  async function scrape(server = s): Promise<string> {
    const r = await server.api('/metrics');
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.match(/^text\/plain/);
    return r.body as string;
  }

  it('needs the token like every route but /health', async () => {
    const r = await s.api('/metrics', undefined, { token: 'wrong-token-wrong-token' });
    expect(r.status).to.equal(401);
  });

  it('registers every metric, including the ones later issues increment, and the process defaults', async () => {
    const text = await scrape();
    for (const name of [
      'toolhost_queue_depth',
      'toolhost_cache_hits_total',
      'toolhost_cache_misses_total',
      'toolhost_cache_evictions_total',
      'toolhost_cache_bytes',
      'toolhost_store_writeback_failures_total',
      'toolhost_commands_running',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(sample(text, name), name).to.be.a('number');
    }
    for (const lane of ['files', 'commands']) {
      expect(sample(text, 'toolhost_pool_threads', { lane }), lane).to.be.greaterThan(0);
      expect(sample(text, 'toolhost_pool_busy', { lane }), lane).to.equal(0);
    }
    expect(text).to.include('# TYPE toolhost_jobs_total counter');
    expect(text).to.include('# TYPE toolhost_job_duration_seconds histogram');
  });

  it('counts jobs by type and outcome, observes latency, and tracks cache hits and misses', async () => {
    const before = await scrape();
    const count = (text: string, type: string, outcome: string): number => sample(text, 'toolhost_jobs_total', { type, outcome }) ?? 0;
    expect((await s.api('/file/read', { project_id: 'm', path: 'a.txt' })).status).to.equal(200);
    expect((await s.api('/file/read', { project_id: 'm', path: 'a.txt' })).status).to.equal(200);
    expect((await s.api('/file/read', { project_id: 'm', path: 'missing.txt' })).status).to.equal(404);
    expect((await s.api('/execute', { project_id: 'm', command: 'echo hi' })).body.exit_code).to.equal(0);
    // A project placed in the store by other means is extracted on first use: a miss, then hits.
    await writeFile(join(s.dataDir, 'store', 'cold.tar.gz'), await buildArchive({ 'b.txt': 'b\n' }));
    expect((await s.api('/file/list', { project_id: 'cold' })).status).to.equal(200);
    expect((await s.api('/file/list', { project_id: 'cold' })).status).to.equal(200);

    const after = await scrape();
    expect(count(after, 'file.read', 'ok') - count(before, 'file.read', 'ok')).to.equal(2);
    expect(count(after, 'file.read', 'file_not_found') - count(before, 'file.read', 'file_not_found')).to.equal(1);
    expect(count(after, 'execute', 'ok') - count(before, 'execute', 'ok')).to.equal(1);
    const observed = (text: string): number => sample(text, 'toolhost_job_duration_seconds_count', { type: 'file.read' }) ?? 0;
    expect(observed(after) - observed(before)).to.equal(3);
    expect(sample(after, 'toolhost_job_duration_seconds_bucket', { type: 'execute', le: '+Inf' })).to.be.at.least(1);
    const delta = (name: string): number => (sample(after, name) ?? 0) - (sample(before, name) ?? 0);
    expect(delta('toolhost_cache_misses_total')).to.equal(1);
    expect(delta('toolhost_cache_hits_total')).to.equal(5);
  });

  it('shows a running command in the gauges while it runs', async () => {
    const running = s.api('/execute', { project_id: 'm', command: 'sleep 1; echo done' });
    for (;;) {
      if ((await s.api('/health')).body.jobs.running >= 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const during = await scrape();
    expect(sample(during, 'toolhost_commands_running')).to.equal(1);
    expect(sample(during, 'toolhost_jobs_running', { type: 'execute' })).to.equal(1);
    expect(sample(during, 'toolhost_pool_busy', { lane: 'commands' })).to.equal(1);
    expect((await running).body.stdout).to.equal('done\n');
    const after = await scrape();
    expect(sample(after, 'toolhost_commands_running')).to.equal(0);
    expect(sample(after, 'toolhost_pool_busy', { lane: 'commands' })).to.equal(0);
  });

  it('keeps a registry per supervisor, so several run in one process', async () => {
    const other = await startServer();
    try {
      const text = await scrape(other);
      expect(sample(text, 'toolhost_jobs_total', { type: 'file.read', outcome: 'ok' })).to.equal(undefined);
      expect(sample(await scrape(), 'toolhost_jobs_total', { type: 'file.read', outcome: 'ok' })).to.be.at.least(2);
    } finally {
      await other.close();
    }
  });

  it('logs one JSON line per request and per job, tied by the request id, with no bodies, contents or secrets', async () => {
    const content = `file-content-${process.pid}-${Date.now()}`;
    const secret = `env-secret-${process.pid}`;
    const headers = { 'x-request-id': 'trace-write-1' };
    expect((await s.api('/file/write', { project_id: 'm', path: 'c.txt', content }, { headers })).status).to.equal(200);
    const read = await s.api('/file/read', { project_id: 'm', path: 'c.txt' }, { headers: { 'x-request-id': 'trace-read-1' } });
    expect(read.body.content).to.equal(content);
    expect(read.headers.get('x-request-id')).to.equal('trace-read-1');
    const exec = await s.api(
      '/execute',
      { project_id: 'm', command: `echo "$TOKEN_X" ${content}`, env: { TOKEN_X: secret } },
      { headers: { 'x-request-id': 'trace-exec-1' } },
    );
    expect(exec.body.stdout).to.include(secret);

    const request = captured.lines.find((l) => l.msg === 'request' && l.request_id === 'trace-read-1');
    expect(request).to.include({ method: 'POST', path: '/file/read', status: 200 });
    expect(request!.duration_ms).to.be.a('number');
    const job = captured.lines.find((l) => l.msg === 'job' && l.request_id === 'trace-read-1');
    expect(job).to.include({ project_id: 'm', type: 'file.read', outcome: 'ok' });
    expect(job!.job_id).to.be.a('string');
    expect(job!.duration_ms).to.be.a('number');
    const execJob = captured.lines.find((l) => l.msg === 'job' && l.request_id === 'trace-exec-1');
    expect(execJob).to.include({ type: 'execute', outcome: 'ok', job_id: exec.body.job_id });

    const text = captured.text();
    expect(text).not.to.include(content);
    expect(text).not.to.include(secret);
    expect(text).not.to.include(token);
    expect(text).not.to.include('hello');
  });
});
