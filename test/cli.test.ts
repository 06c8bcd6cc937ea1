/**
 * The `toolhost` command as an operator runs it: a real process (`node --import tsx bin/toolhost.ts`) against a
 * real server. A folder pushed and pulled back is the same tree; `exec` streams both outputs and exits with the
 * command's code (124 for a timeout); bad usage exits 2 with the usage text; a refusal of the server exits 1 with
 * its message; `serve` and `stop` start and end a server through its pidfile.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';
import { alive } from './helpers/procs.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'toolhost.ts');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with `args` and only the environment given (plus PATH), from the repository root. */
function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every entry of a tree with its type, mode and link target, then each file's digest. */
async function listing(dir: string): Promise<string> {
  const script = "find . -mindepth 1 -printf '%y %m %p %l\\n' | LC_ALL=C sort; find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum";
  return (await run('bash', ['-c', script], { cwd: dir })).stdout;
}

describe('cli: the toolhost command against a real server', function () {
  this.timeout(120_000);
  let s: TestServer;
  let tmp: string;
  let env: Record<string, string>;

  before(async () => {
    s = await startServer({ commands: { killGraceS: 1 } });
    env = { TOOLHOST_URL: s.url, TOOLHOST_TOKEN: s.token! };
    tmp = await tempDir('toolhost-cli-test-');
    const src = join(tmp, 'src');
    await mkdir(join(src, 'deep', 'er', 'empty'), { recursive: true });
    await writeFile(join(src, 'hello.txt'), 'hello from the cli\n');
    await writeFile(join(src, 'deep', 'er', 'tool.sh'), '#!/bin/sh\necho tool\n', { mode: 0o755 });
    await writeFile(join(src, 'deep', 'private'), 'mode 600\n', { mode: 0o600 });
    await writeFile(join(src, 'spaces in name.txt'), 'x\n');
    await symlink('../hello.txt', join(src, 'deep', 'hello-link'));
  });
  after(async () => {
    await s?.close({ force: true });
    if (tmp) await run('rm', ['-rf', tmp]);
  });

  it('pushes a folder, runs a command in it with output and exit code, and pulls back the same tree', async () => {
    const pushed = await cli(['push', join(tmp, 'src'), 'clip'], env);
    expect(pushed.code, pushed.stderr).to.equal(0);
    expect(pushed.stdout).to.match(/^created clip from /);

    const ran = await cli(['exec', 'clip', '--', 'cat hello.txt && echo to-stderr >&2; deep/er/tool.sh; exit 3'], env);
    expect(ran.stdout).to.equal('hello from the cli\ntool\n');
    expect(ran.stderr).to.equal('to-stderr\n');
    expect(ran.code).to.equal(3);

    // Words after "--" are joined by spaces, as ssh does.
    const words = await cli(['exec', 'clip', '--cwd', 'deep', '--env', 'WHO=cli', '--', 'cat', 'hello-link;', 'echo', '$WHO'], env);
    expect(words).to.include({ code: 0, stdout: 'hello from the cli\ncli\n' });

    const pulled = await cli(['pull', 'clip', join(tmp, 'back')], env);
    expect(pulled.code, pulled.stderr).to.equal(0);
    // Modes come back as toolhost keeps them: 0644, or 0755 with an execute bit.
    const sent = (await listing(join(tmp, 'src'))).replace('f 600 ./deep/private', 'f 644 ./deep/private');
    expect(await listing(join(tmp, 'back'))).to.equal(sent);

    const again = await cli(['pull', 'clip', join(tmp, 'back')], env);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.match(/not empty/);
    const exists = await cli(['push', join(tmp, 'src'), 'clip'], env);
    expect(exists.code).to.equal(1);
    expect(exists.stderr).to.match(/^toolhost: .*clip.*\n$/);
    // The commands above made the working copy dirty: a replace would lose that, and is refused until a save.
    const dirty = await cli(['push', join(tmp, 'src'), 'clip', '--replace'], env);
    expect(dirty).to.include({ code: 1 });
    expect(dirty.stderr).to.match(/unsaved changes/);
    expect((await cli(['save', 'clip'], env)).code).to.equal(0);
    const replaced = await cli(['push', join(tmp, 'src'), 'clip', '--replace'], env);
    expect(replaced.code, replaced.stderr).to.equal(0);
    expect(replaced.stdout).to.match(/^replaced clip /);
  });

  it('exits 124 when the command times out, and says so', async () => {
    const r = await cli(['exec', 'clip', '--timeout', '1', '--', 'echo started; sleep 30'], env);
    expect(r.code).to.equal(124);
    expect(r.stdout).to.equal('started\n');
    expect(r.stderr).to.match(/timed out/);
  });

  it('cancels the command on Ctrl-C and exits 130', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, 'exec', 'clip', '--', 'echo started; sleep 60'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGINT');
    expect(await code).to.equal(130);
    expect(stderr)
      .to.match(/cancelling job ([0-9a-f-]{36})/)
      .and.match(/was cancelled/);
    const jobId = /cancelling job ([0-9a-f-]{36})/.exec(stderr)![1]!;
    expect((await s.api(`/jobs/${jobId}`)).body.status).to.equal('cancelled');
  });

  it("tails a job to its end and exits with the job's code", async () => {
    const bg = await s.api('/execute', { project_id: 'clip', command: 'echo one; sleep 0.5; echo two >&2; exit 5', background: true });
    expect(bg.status).to.equal(200);
    const r = await cli(['tail', bg.body.job_id], env);
    expect(r).to.include({ code: 5, stdout: 'one\n', stderr: 'two\n' });
    const gone = await cli(['tail', '00000000-0000-4000-8000-000000000000'], env);
    expect(gone.code).to.equal(1);
    expect(gone.stderr).to.match(/^toolhost: no command job/);
  });

  it('saves, checkpoints and lists checkpoints, projects and status', async () => {
    await cli(['exec', 'clip', '--', 'echo changed > hello.txt'], env);
    const saved = await cli(['save', 'clip'], env);
    expect(saved.code, saved.stderr).to.equal(0);
    expect(saved.stdout).to.match(/^saved clip as checkpoint cp_/);
    const cp = await cli(['checkpoint', 'clip', '--label', 'from the cli'], env);
    expect(cp.code, cp.stderr).to.equal(0);
    const id = cp.stdout.trim();
    expect(id).to.match(/^cp_[a-z0-9]+$/);
    const list = await cli(['checkpoints', 'clip'], env);
    expect(list.stdout).to.include(`${id}  `).and.include('"from the cli"');

    const projects = await cli(['projects'], env);
    expect(projects.stdout)
      .to.match(/^PROJECT +STATE/)
      .and.match(/\nclip +cached/);
    const json = await cli(['projects', '--json'], env);
    expect(JSON.parse(json.stdout).map((p: { project_id: string }) => p.project_id)).to.include('clip');

    const status = await cli(['status'], env);
    expect(status.code).to.equal(0);
    expect(status.stdout)
      .to.match(/^toolhost at http:\/\/127\.0\.0\.1:\d+: ok\n/)
      .and.match(/containment: sandbox/);
    expect(JSON.parse((await cli(['status', '--json'], env)).stdout)).to.include({ status: 'ok', role: 'all' });
    const reload = await cli(['reload'], env);
    expect(reload).to.include({ code: 0 });
  });

  it('finds the token in the data dir, and exits 1 with the server message for a wrong one', async () => {
    const viaFile = await cli(['projects', '--data-dir', s.dataDir], { TOOLHOST_URL: s.url });
    expect(viaFile.code, viaFile.stderr).to.equal(0);

    const wrong = 'w'.repeat(32);
    const expected = (await s.api('/projects', undefined, { token: wrong })).body.error.message as string;
    for (const how of [
      { args: [], env: { ...env, TOOLHOST_TOKEN: wrong } },
      { args: ['--token', wrong], env },
    ]) {
      const r = await cli(['projects', ...how.args], how.env);
      expect(r).to.include({ code: 1, stdout: '', stderr: `toolhost: ${expected}\n` });
    }
    const none = await cli(['projects', '--data-dir', tmp], { TOOLHOST_URL: s.url });
    expect(none.code).to.equal(1);
    expect(none.stderr).to.match(/bearer token.*no token was found/);

    const down = await cli(['status', '--url', 'http://127.0.0.1:9'], env);
    expect(down.code).to.equal(1);
    expect(down.stderr).to.match(/^toolhost: cannot reach toolhost at http:\/\/127\.0\.0\.1:9/);
  });

  it('exits 2 with the usage on stderr for bad usage', async () => {
    const cases = [
      [],
      ['frobnicate'],
      ['push', 'only-one'],
      ['status', 'extra'],
      ['projects', '--bogus'],
      ['projects', '--label', 'x'],
      ['exec', 'clip'],
      ['exec', 'clip', '--'],
      ['exec', 'clip', '--timeout', 'soon', '--', 'true'],
      ['exec', 'clip', '--env', 'NOEQUALS', '--', 'true'],
      ['save', 'clip', '--', 'x'],
      ['status', '--url', 'not a url'],
    ];
    for (const args of cases) {
      const r = await cli(args, env);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stdout, args.join(' ')).to.equal('');
      expect(r.stderr, args.join(' ')).to.match(/^toolhost: .+\n\nUsage: toolhost/);
    }
    const help = await cli(['help']);
    expect(help).to.include({ code: 0, stderr: '' });
    expect(help.stdout).to.match(/^Usage: toolhost/);
    expect((await cli(['--help'])).code).to.equal(0);
  });

  it('serves in its own process and stops it through the pidfile', async () => {
    const dataDir = join(tmp, 'served');
    const stopped = await cli(['stop', '--data-dir', dataDir]);
    expect(stopped.code).to.equal(1);
    expect(stopped.stderr).to.match(/^toolhost: no pidfile .*toolhost\.pid/);

    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', BIN, 'serve', '--data-dir', dataDir], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PORT: '0', TOOLHOST_NODE_ID: 'cli-serve' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout! }).on('line', (line) => {
          if (line.includes('"toolhost listening"')) resolve(String(JSON.parse(line).url));
        });
        void exited.then((code) => reject(new Error(`serve exited with ${code} before listening`)));
      });
      const status = await cli(['status', '--json', '--url', url, '--data-dir', dataDir]);
      expect(JSON.parse(status.stdout)).to.include({ status: 'ok', node: 'cli-serve' });

      const stop = await cli(['stop', '--data-dir', dataDir]);
      expect(stop.code, stop.stderr).to.equal(0);
      expect(stop.stdout).to.equal(`stopped ${child.pid}\n`);
      // stop returned once the process was gone.
      expect(alive(child.pid!)).to.equal(false);
      expect(await exited).to.equal(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
