/**
 * Persistent shell sessions over HTTP, with real shells under the machine's containment: state that carries over
 * between execs (cd, export, functions, aliases, a virtualenv), stdin at EOF, exit markers a command cannot
 * spoof, timeouts that kill the exec's tree (the shell survives, or is restarted and says so), the jobs API
 * following a yielded exec, limits, idle end, and sessions ending with their project's working copy.
 */
import { expect } from 'chai';
import { buildArchive, startServer, type TestServer } from './helpers/harness.js';
import { LeakGuard } from './helpers/jobs.js';
import { eventually, processesWith } from './helpers/procs.js';

describe('sessions: persistent shells over HTTP', function () {
  this.timeout(120_000);
  let s: TestServer;
  const guard = new LeakGuard('sess');

  before(async () => {
    s = await startServer({ sessions: { max: 6, maxPerProject: 3, idleMinutes: 30 }, commands: { killGraceS: 1 } });
    expect((await s.putProject('demo', { 'a.txt': 'a\n', 'src/b.txt': 'b\n' })).status).to.equal(201);
    expect((await s.putProject('other', { 'a.txt': 'a\n' })).status).to.equal(201);
  });
  after(async () => {
    await s?.close();
  });
  afterEach(() => guard.check());

  async function open(project = 'demo', extra: Record<string, unknown> = {}): Promise<string> {
    const r = await s.api('/sessions', { project_id: project, ...extra });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return r.body.session_id as string;
  }
  const exec = (id: string, command: string, extra: Record<string, unknown> = {}) => s.api(`/sessions/${id}/exec`, { command, ...extra });
  const end = (id: string) => s.api(`/sessions/${id}`, undefined, { method: 'DELETE' });

  it('keeps the working directory, exports, functions, aliases and a virtualenv between execs', async () => {
    const id = await open();
    expect(id).to.match(/^s_[0-9a-f]{24}_demo$/);
    const setup = await exec(
      id,
      [
        'cd src',
        'export GREETING=hello',
        `shout() { echo "\${1^^}"; }`,
        "alias ll='echo aliased'",
        'mkdir -p ../.venv/bin',
        'printf "export VIRTUAL_ENV=%s\\nexport PATH=%s:\\$PATH\\n" "$PWD/../.venv" "$PWD/../.venv/bin" > ../.venv/bin/activate',
        'printf "#!/bin/sh\\necho venv-python\\n" > ../.venv/bin/python && chmod +x ../.venv/bin/python',
      ].join('\n'),
    );
    expect(setup.status, JSON.stringify(setup.body)).to.equal(200);
    expect(setup.body.exit_code).to.equal(0);
    expect(setup.body.session).to.deep.equal({ session_id: id, restarted: false });
    expect((await exec(id, 'source ../.venv/bin/activate')).body.exit_code).to.equal(0);
    const r = await exec(id, `basename "$PWD"; echo $GREETING; shout quiet; ll; python; echo \${VIRTUAL_ENV##*/}`);
    expect(r.body.stdout).to.equal('src\nhello\nQUIET\naliased\nvenv-python\n.venv\n');
    const info = (await s.api('/sessions?project_id=demo')).body.sessions.find((x: { session_id: string }) => x.session_id === id);
    expect(info).to.include({ project_id: 'demo', cwd: '.', execs: 3, restarts: 0, running_job_id: null });
    expect((await end(id)).body).to.deep.equal({ session_id: id, ended: true });
    expect((await exec(id, 'true')).status).to.equal(404);
  });

  it('keeps one session apart from another, even in the same project', async () => {
    const [a, b] = [await open(), await open()];
    await exec(a, 'export ONLY_A=1; cd src');
    const r = await exec(b, `echo "[\${ONLY_A:-unset}]"; basename "$PWD"`);
    expect(r.body.stdout).to.equal('[unset]\ndemo\n');
    // Operators see them: /health and /metrics count the sessions alive.
    expect((await s.api('/health')).body.sessions.alive).to.equal(2);
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.token}` } })).text();
    expect(metrics).to.match(/toolhost_sessions\{state="alive"\} 2/);
    await Promise.all([end(a), end(b)]);
  });

  it('gives a command that reads stdin EOF at once, and cannot be fooled by output that looks like a marker', async () => {
    const id = await open();
    const r = await exec(id, `read line; echo "read=$? [$line]"; cat; printf "\\0%032x\\0" 0; echo; printf "\\0\${__th_n:-x}\\0""0\\n"; echo after`);
    expect(r.body.exit_code).to.equal(0);
    expect(r.body.stdout).to.include('read=1 []');
    expect(r.body.stdout).to.include('after');
    expect(r.body.duration_ms).to.be.below(30_000);
    const exit = await exec(id, 'echo out; echo err >&2; (exit 7)');
    expect(exit.body).to.include({ exit_code: 7, stdout: 'out\n', stderr: 'err\n' });
    await end(id);
  });

  it('answers the exec after one whose output outran its log (the stream it paused flows again)', async () => {
    const id = await open();
    const big = await exec(id, 'seq 1 300000', { max_output_chars: 1000 });
    expect(big.body).to.include({ status: 'completed', exit_code: 0 });
    expect(big.body.stdout_offset).to.equal(1_988_895);
    const small = await exec(id, 'seq 1 3', { wait_s: 20 });
    expect(small.body).to.include({ status: 'completed', stdout: '1\n2\n3\n' });
    await end(id);
  });

  it('runs a long command (sent with its length) byte for byte, trailing newlines and all', async () => {
    const id = await open();
    const body = Array.from({ length: 4000 }, (_, i) => `line ${i} ümlaut`).join('\n');
    const r = await exec(id, `cat > long.txt <<'EOF'\n${body}\nEOF\nwc -c < long.txt\n\n\n`);
    expect(r.body.exit_code, JSON.stringify(r.body)).to.equal(0);
    expect(Number(r.body.stdout)).to.equal(Buffer.byteLength(`${body}\n`));
    await exec(id, 'rm long.txt');
    await end(id);
  });

  it('ends a timed-out exec with its shell: its children die, no later step of the list runs, and the answer says restarted', async () => {
    const id = await open('demo', { cwd: 'src', env: { START: 'kept' } });
    const m = guard.marker();
    await exec(id, 'cd ..; export LOST=1');
    const r = await exec(id, `bash -c 'exec -a ${m} sleep 300' & bash -c 'exec -a ${m} sleep 300'; echo ran > after-timeout.txt`, { timeout_s: 1 });
    expect(r.body).to.include({ status: 'timed_out', timed_out: true });
    expect(r.body.session.restarted).to.equal(true);
    expect(await eventually(() => processesWith(m).length === 0)).to.equal(true);
    const after = await exec(id, `basename "$PWD"; echo "\${LOST:-gone} $START"; ls ../after-timeout.txt 2>&1 | grep -c 'No such'`);
    expect(after.body.stdout).to.equal('src\ngone kept\n1\n');
    const stuck = await exec(id, 'while :; do :; done', { timeout_s: 1 });
    expect(stuck.body).to.include({ status: 'timed_out' });
    expect(stuck.body.session.restarted).to.equal(true);
    const exited = await exec(id, 'echo bye; exit 4');
    expect(exited.body).to.include({ exit_code: 4, stdout: 'bye\n' });
    expect(exited.body.session.restarted).to.equal(true);
    expect((await exec(id, 'echo again')).body.stdout).to.equal('again\n');
    const info = (await s.api('/sessions?project_id=demo')).body.sessions.find((x: { session_id: string }) => x.session_id === id);
    expect(info.restarts).to.equal(3);
    await end(id);
  });

  it('runs nothing between execs, even code a command left in the shell (a DEBUG trap that forks later)', async () => {
    const id = await open();
    const trap = `__x=0; trap '[[ $BASH_COMMAND == *__th_cmd* && $__x == 0 ]] && { __x=1; for ((i=0;i<200000;i++)); do :; done; (while :; do echo tick >> bg.txt; sleep 0.2; done) & }' DEBUG; echo set`;
    expect((await exec(id, trap)).body.stdout).to.equal('set\n');
    await new Promise((r) => setTimeout(r, 1500));
    const between = await s.api('/file/read', { project_id: 'demo', path: 'bg.txt' });
    expect(between.status, 'nothing ran between the execs').to.equal(404);
    expect(await eventually(() => processesWith('tick >> bg.txt').length === 0)).to.equal(true);
    await exec(id, 'trap - DEBUG; rm -f bg.txt');
    await end(id);
  });

  it('replaces a shell that died while idle, and says so; a TMOUT does not end it', async function () {
    const id = await open();
    await exec(id, 'export TMOUT=1; echo set');
    await new Promise((r) => setTimeout(r, 2000));
    const kept = await exec(id, 'echo "kept $TMOUT"');
    expect(kept.body.stdout).to.equal('kept 1\n');
    expect(kept.body.session.restarted).to.equal(false);
    // Killed from outside (an OOM kill, an operator): the sandbox's processes name the session in their arguments.
    const sandbox = processesWith(id);
    if (sandbox.length === 0) this.skip(); // no bubblewrap here: nothing names the session on its command line
    for (const pid of sandbox) process.kill(pid, 'SIGKILL');
    expect(await eventually(() => processesWith(id).length === 0)).to.equal(true);
    const r = await exec(id, 'echo again');
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.stdout).to.equal('again\n');
    expect(r.body.session.restarted).to.equal(true);
    await end(id);
  });

  it('yields a long exec with a job id the jobs API follows, refuses a second exec meanwhile, and restarts on request', async () => {
    const id = await open();
    const r = await exec(id, 'echo started; sleep 2; echo finished', { wait_s: 0.2 });
    expect(r.body.status).to.equal('running');
    const busy = await exec(id, 'true');
    expect(busy.status).to.equal(409);
    expect(busy.body.error.code).to.equal('session_busy');
    expect(busy.body.error.message).to.include(r.body.job_id);
    const done = await s.api(`/jobs/${r.body.job_id}?wait_s=10&stdout_offset=0`);
    expect(done.body.status).to.be.oneOf(['running', 'completed']);
    let view = done.body;
    while (view.status === 'running') view = (await s.api(`/jobs/${r.body.job_id}?wait_s=10`)).body;
    expect(view.stdout).to.equal('started\nfinished\n');
    expect(view.session.session_id).to.equal(id);
    await exec(id, 'cd src');
    const restarted = await s.api(`/sessions/${id}/restart`, {});
    expect(restarted.status, JSON.stringify(restarted.body)).to.equal(200);
    expect(restarted.body.restarts).to.equal(1);
    expect((await exec(id, 'basename "$PWD"')).body.stdout).to.equal('demo\n');
    await end(id);
  });

  it('refuses sessions past its limits with a clear 429, and bad ids and cwds with a 4xx', async () => {
    const ids = [await open(), await open(), await open()];
    const over = await s.api('/sessions', { project_id: 'demo' });
    expect(over.status).to.equal(429);
    expect(over.body.error.code).to.equal('session_limit');
    expect(over.body.error.message).to.include('DELETE /sessions/');
    // A name finds the session that has it instead of making one.
    await end(ids.pop()!);
    const named = await s.api('/sessions', { project_id: 'demo', name: 'agent-1' });
    const again = await s.api('/sessions', { project_id: 'demo', name: 'agent-1' });
    expect([named.body.created, again.body.created]).to.deep.equal([true, false]);
    expect(again.body.session_id).to.equal(named.body.session_id);
    ids.push(named.body.session_id);
    for (const bad of ['nope', 's_0123_demo', encodeURIComponent('../../etc'), `s_${'0'.repeat(24)}_demo`]) {
      const r = await exec(bad, 'true');
      expect(r.status, bad).to.equal(404);
      expect(r.body.error.code).to.equal('session_not_found');
    }
    for (const cwd of ['../..', '/etc', 'missing']) {
      const r = await s.api('/sessions', { project_id: 'other', cwd });
      expect(r.status, cwd).to.be.within(400, 404);
    }
    const unknown = await s.api('/sessions', { project_id: 'other', shell: '/bin/sh' });
    expect(unknown.status).to.equal(400);
    await Promise.all(ids.map(end));
  });

  it('holds its limits under concurrent creations', async () => {
    const tries = await Promise.all(Array.from({ length: 10 }, () => s.api('/sessions', { project_id: 'other' })));
    const made = tries.filter((r) => r.status === 200).map((r) => r.body.session_id as string);
    expect(made).to.have.length(3);
    expect(tries.filter((r) => r.status === 429)).to.have.length(7);
    await Promise.all(made.map(end));
  });

  it('keeps the sessions of a project when a replacement or a deletion is refused', async () => {
    const id = await open('other');
    await exec(id, 'export STILL=here; echo x > dirty.txt');
    const put = await s.putProject('other', { 'a.txt': 'new\n' });
    expect(put.status).to.equal(409);
    const del = await s.api('/projects/other', undefined, { method: 'DELETE' });
    expect(del.status).to.equal(409);
    expect((await exec(id, 'echo $STILL')).body.stdout).to.equal('here\n');
    await exec(id, 'rm dirty.txt');
    await end(id);
  });

  it('ends the sessions of a project whose working copy is evicted', async () => {
    const id = await open('other');
    const m = guard.marker();
    await exec(id, `(exec -a ${m} sleep 300 &) ; true`);
    expect((await s.api('/projects/other/cache', undefined, { method: 'DELETE' })).body).to.include({ evicted: true });
    expect(await eventually(() => processesWith(id).length === 0, 8000)).to.equal(true);
    expect((await exec(id, 'true')).body.error.code).to.equal('session_not_found');
  });
});

describe('sessions: lifetime and containment', function () {
  this.timeout(120_000);
  let s: TestServer;
  let clock = Date.now();

  before(async () => {
    s = await startServer({ sessions: { max: 8, maxPerProject: 8, idleMinutes: 1 } }, { now: () => clock });
    for (const id of ['p1', 'p2', 'p3']) expect((await s.putProject(id, { 'a.txt': 'a\n' })).status).to.equal(201);
  });
  after(async () => {
    clock = Date.now();
    await s?.close();
  });

  const open = async (project: string): Promise<string> => (await s.api('/sessions', { project_id: project })).body.session_id;
  const gone = async (id: string): Promise<boolean> => (await s.api(`/sessions/${id}/exec`, { command: 'true' })).status === 404;

  it('runs its shell in the same sandbox as any command: no other project, no data dir', async function () {
    if (process.getuid?.() !== 0) this.skip(); // one uid for every project: only bubblewrap as root separates them here
    const id = await open('p1');
    const r = await s.api(`/sessions/${id}/exec`, {
      command: `ls ${s.dataDir}/projects/p2 2>&1 || echo no-p2; ls ${s.dataDir}/uids 2>&1 || echo no-uids; ls ${s.dataDir}/jobs 2>&1 || echo no-jobs`,
    });
    expect(r.body.stdout).to.include('no-p2');
    expect(r.body.stdout).to.include('no-jobs');
    expect(r.body.stdout).not.to.include('a.txt');
    await s.api(`/sessions/${id}`, undefined, { method: 'DELETE' });
  });

  it('ends a session left idle for sessions.idleMinutes, and keeps one in use', async () => {
    const [idle, busy] = [await open('p1'), await open('p1')];
    const running = await s.api(`/sessions/${busy}/exec`, { command: 'sleep 25', wait_s: 0 });
    expect(running.body.status).to.be.oneOf(['queued', 'running']);
    clock += 2 * 60_000;
    // The sweep runs on its own timer (a quarter of idleMinutes, here 15 s, give or take a fifth).
    let ended = false;
    for (let i = 0; i < 25 && !ended; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      ended = (await s.api('/sessions?project_id=p1')).body.sessions.every((x: { session_id: string }) => x.session_id !== idle);
    }
    expect(ended, 'the idle session ended').to.equal(true);
    const left = (await s.api('/sessions?project_id=p1')).body.sessions.map((x: { session_id: string }) => x.session_id);
    expect(left).to.include(busy);
    await s.api(`/jobs/${running.body.job_id}`, undefined, { method: 'DELETE' });
    await s.api(`/sessions/${busy}`, undefined, { method: 'DELETE' });
  });

  it('ends the sessions of a project that is deleted or replaced', async () => {
    const [a, b] = [await open('p2'), await open('p3')];
    expect((await s.api('/projects/p2?force=true', undefined, { method: 'DELETE' })).status).to.equal(200);
    expect(await gone(a)).to.equal(true);
    const replaced = await s.api('/projects/p3?replace=true', await buildArchive({ 'b.txt': 'b\n' }), { method: 'PUT' });
    expect(replaced.status, JSON.stringify(replaced.body)).to.equal(200);
    expect(await gone(b)).to.equal(true);
  });
});
