import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';
import { eventually, processesWith } from './helpers/procs.js';

describe('POST /execute', () => {
  let s: TestServer;
  const secret = `s3cr3t-${process.pid}`;

  before(async () => {
    process.env.AZURE_STORAGE_CONNECTION_STRING = `AccountKey=${secret}`;
    process.env.SOME_API_TOKEN = secret;
    s = await startServer({ commands: { killGraceS: 1, maxOutputBytes: 1000 } });
    const put = await s.putProject('p1', { 'README.md': '# hi\n', 'src/main.sh': 'echo main\n' });
    expect(put.status).to.equal(201);
  });
  after(async () => {
    delete process.env.AZURE_STORAGE_CONNECTION_STRING;
    delete process.env.SOME_API_TOKEN;
    await s?.close();
  });

  it('runs bash -c in the project and returns exit code, stdout and stderr', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'cat README.md; echo oops >&2; exit 7' });
    expect(r.status).to.equal(200);
    expect(r.body).to.include({ exit_code: 7, stdout: '# hi\n', stderr: 'oops\n', timed_out: false });
    expect(r.body.job_id).to.be.a('string');
    expect(r.body.duration_ms).to.be.a('number');
    expect(r.body.truncated).to.deep.equal({ stdout: false, stderr: false });
  });

  it('runs in cwd relative to the project and passes the request env', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'pwd; echo "$GREETING"', cwd: 'src', env: { GREETING: 'hello' } });
    expect(r.body.exit_code).to.equal(0);
    const [pwd, greeting] = r.body.stdout.trim().split('\n');
    expect(pwd).to.match(/\/projects\/p1\/src$/);
    expect(greeting).to.equal('hello');
  });

  it('gives a clean environment: no supervisor secrets, non-interactive settings present', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'env' });
    expect(r.body.stdout).not.to.include(secret);
    expect(r.body.stdout).not.to.include('AZURE_STORAGE_CONNECTION_STRING');
    for (const v of ['CI=1', 'GIT_TERMINAL_PROMPT=0', 'PAGER=cat', 'GIT_PAGER=cat', 'DEBIAN_FRONTEND=noninteractive', 'TERM=dumb']) {
      expect(r.body.stdout).to.include(v);
    }
    expect(r.body.stdout).to.match(/^PATH=/m);
    expect(r.body.stdout).to.match(/^HOME=\//m);
  });

  it('closes stdin so a prompt fails fast instead of hanging', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'read -r answer; echo "got:$answer:$?"', timeout_s: 30 });
    expect(r.body.timed_out).to.equal(false);
    expect(r.body.stdout).to.equal('got::1\n');
  });

  it('kills the whole tree on timeout, background grandchild included, and returns the output so far', async () => {
    const marker = `toolhost-bg-${process.pid}-${Date.now()}`;
    const r = await s.api('/execute', {
      project_id: 'p1',
      command: `bash -c 'exec -a ${marker} sleep 1000' & sleep 0.2; pgrep -f '^${marker}' > /dev/null && echo before; sleep 1000`,
      timeout_s: 1,
    });
    expect(r.status).to.equal(200);
    expect(r.body.timed_out).to.equal(true);
    expect(r.body.stdout).to.equal('before\n');
    expect(r.body.exit_code).to.not.equal(0);
    // "before" proves the grandchild was running; find it by name (a pid from inside a sandbox means nothing here).
    expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
  });

  it('kills a process that escaped the group with setsid once the command ends', async () => {
    const marker = `toolhost-setsid-${process.pid}-${Date.now()}`;
    const r = await s.api('/execute', { project_id: 'p1', command: `setsid bash -c 'exec -a ${marker} sleep 1000' & sleep 0.2; echo done` });
    expect(r.body.stdout).to.equal('done\n');
    expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
  });

  it('caps output as head and tail with truncation in its own fields', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'seq 1 10000' });
    expect(r.body.truncated.stdout).to.equal(true);
    expect(r.body.omitted_bytes.stdout).to.be.greaterThan(40000);
    expect(r.body.stdout.startsWith('1\n2\n3\n')).to.equal(true);
    expect(r.body.stdout.endsWith('9999\n10000\n')).to.equal(true);
    // The capture (commands.maxOutputBytes) keeps whole lines; one line says what was left out and how to read it.
    const lines = r.body.stdout.split('\n');
    const notice = lines.findIndex((l: string) => l.startsWith('[... '));
    expect(lines[notice]).to.equal(
      `[... ${r.body.omitted_lines.stdout.toLocaleString('en-US')} lines (${(r.body.omitted_bytes.stdout / 1000).toFixed(1)} kB) of stdout omitted; read them with job_status ${JSON.stringify({ job_id: r.body.job_id, stdout_offset: r.body.omitted_offset.stdout, stderr_offset: 0 })} ...]`,
    );
    expect(Number(lines[notice + 1]) - Number(lines[notice - 1]) - 1).to.equal(r.body.omitted_lines.stdout);
    expect(r.body.stdout.length).to.be.lessThan(1200);
  });

  it('refuses a cwd outside the project', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'pwd', cwd: '../..' });
    expect(r.status).to.equal(400);
    expect(r.body.error.code).to.equal('path_outside_project');
  });

  it('answers 404 for a cwd that does not exist', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'pwd', cwd: 'nope' });
    expect(r.status).to.equal(404);
    expect(r.body.error.code).to.equal('file_not_found');
  });

  it('answers 404 for an unknown project and creates nothing', async () => {
    const r = await s.api('/execute', { project_id: 'ghost', command: 'touch x' });
    expect(r.status).to.equal(404);
    expect(r.body.error.code).to.equal('project_not_found');
    expect(r.body.error.message).to.include('PUT /projects/ghost');
    const list = await s.api('/projects');
    expect(list.body.projects.map((p: { project_id: string }) => p.project_id)).to.deep.equal(['p1']);
  });

  it('refuses a timeout_s above the configured maximum', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'true', timeout_s: 999999 });
    expect(r.status).to.equal(400);
    expect(r.body.error.message).to.include('maximum');
  });

  it('refuses NUL bytes in the command and in env values with 400 instead of failing to spawn', async () => {
    for (const body of [
      { project_id: 'p1', command: 'echo a\u0000b' },
      { project_id: 'p1', command: 'true', env: { A: 'x\u0000y' } },
    ]) {
      const r = await s.api('/execute', body);
      expect(r.status).to.equal(400);
      expect(r.body.error.message).to.include('NUL');
    }
  });

  it('rejects bad env names and unknown fields', async () => {
    const bad = await s.api('/execute', { project_id: 'p1', command: 'true', env: { 'A B': 'x' } });
    expect(bad.status).to.equal(400);
    const unknown = await s.api('/execute', { project_id: 'p1', command: 'true', shell: 'zsh' });
    expect(unknown.status).to.equal(400);
    expect(unknown.body.error.code).to.equal('unknown_field');
    expect(unknown.body.error.message).to.include('"shell"');
  });

  it('runs commands at commands.nice, inherited by their children, and a command cannot raise it back', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'nice; bash -c nice; renice -n 0 -p $$ >/dev/null 2>&1; echo "renice:$?"; nice' });
    expect(r.body.stdout).to.equal('10\n10\nrenice:1\n10\n');
  });

  it("weighs a command's whole session as one task at commands.nice (its autogroup), which it cannot put above the supervisor", async function () {
    const own = await readFile('/proc/self/autogroup', 'utf8').catch(() => null);
    // A kernel without autogroups: the niceness alone counts, and the test above covers it.
    if (own === null) this.skip();
    const r = await s.api('/execute', {
      project_id: 'p1',
      command:
        'cat /proc/self/autogroup; bash -c "cat /proc/self/autogroup"; (echo -5 > /proc/self/autogroup) 2>/dev/null; echo "raise:$?"; cat /proc/self/autogroup',
    });
    const lines = r.body.stdout.trim().split('\n');
    expect(lines, r.body.stdout).to.have.length(4);
    expect(lines[0]).to.match(/^\/autogroup-\d+ nice 10$/);
    expect(lines[1]).to.equal(lines[0]);
    expect(lines[2]).to.equal('raise:1');
    expect(lines[3]).to.equal(lines[0]);
    // The supervisor's own session is left as it was.
    expect(await readFile('/proc/self/autogroup', 'utf8')).to.equal(own);
  });
});
