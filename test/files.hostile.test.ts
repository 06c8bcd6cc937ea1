/**
 * The file tools against a hostile project: its commands plant FIFOs, sockets, devices and symlinks, and swap a
 * folder for a symlink to outside in a loop while the tools run (as root, in pool threads). Every response body is
 * also checked never to name a server path.
 */
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { type ApiResponse, startServer, type TestServer, tempDir } from './helpers/harness.js';
import { FINAL_STATES } from './helpers/jobs.js';

const run = promisify(execFile);
const P = 'hostile';

describe('file tools: hostile project contents', function () {
  this.timeout(120_000);
  let s: TestServer;
  let root: string;
  let outside: string;

  before(async () => {
    // Two pool threads: a blocked thread would show at once.
    s = await startServer({ pool: { maxThreads: 2 } });
    outside = await tempDir('toolhost-outside-');
    await writeFile(join(outside, 'x'), 'OUTSIDE-SECRET\n');
    await writeFile(join(outside, 'outside-only.txt'), 'OUTSIDE-SECRET\n');
    const put = await s.putProject(P, { 'a.txt': 'a\n', 'log.txt': 'START\nEND\n', 'dir/keep.txt': 'keep\n' });
    expect(put.status).to.equal(201);
    root = join(s.dataDir, 'projects', P);
  });
  after(async () => {
    await s?.close({ force: true });
    await rm(outside, { recursive: true, force: true });
  });

  /** Calls the API and fails the test when the body names the data directory (or anything under it). */
  async function call(path: string, body: Record<string, unknown>): Promise<ApiResponse> {
    const r = await s.api(path, { project_id: P, ...body });
    expect(JSON.stringify(r.body), `${path} ${JSON.stringify(body)}`).to.not.include(s.dataDir);
    return r;
  }

  /** Runs a command in the project and expects it to succeed. */
  async function sh(command: string): Promise<void> {
    const r = await call('/execute', { command });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.exit_code, r.body.stderr).to.equal(0);
  }

  function expectError(r: ApiResponse, status: number, code: string, what: string): void {
    expect(r.status, `${what}: ${JSON.stringify(r.body)}`).to.equal(status);
    expect(r.body.error.code, what).to.equal(code);
  }

  async function outsideUntouched(): Promise<void> {
    expect((await readdir(outside)).sort()).to.deep.equal(['outside-only.txt', 'x']);
    expect(await readFile(join(outside, 'x'), 'utf8')).to.equal('OUTSIDE-SECRET\n');
  }

  describe('FIFOs, sockets and devices', () => {
    const specials = ['fifo1', 'fifo2', 'sock', 'fifo-link', 'sub/pipe'];

    before(async () => {
      await sh(
        'mkfifo fifo1 fifo2 && python3 -c \'import socket;s=socket.socket(socket.AF_UNIX);s.bind("sock")\' && ln -s fifo1 fifo-link && mkdir -p sub && mkfifo sub/pipe',
      );
      // A command cannot make device nodes; root can, and a device is what a restored archive or an older
      // privileged step might leave.
      try {
        await run('mknod', [join(root, 'null-dev'), 'c', '1', '3']);
        specials.push('null-dev');
      } catch {
        console.log('      (no device node: mknod is not allowed here)');
      }
    });

    it('refuses read, write and edit of each at once with not_a_regular_file, and replaces none of them', async () => {
      for (const path of specials) {
        expectError(await call('/file/read', { path }), 400, 'not_a_regular_file', `read ${path}`);
        expectError(await call('/file/write', { path, content: 'x' }), 400, 'not_a_regular_file', `write ${path}`);
        expectError(await call('/file/edit', { path, old_str: 'a', new_str: 'b' }), 400, 'not_a_regular_file', `edit ${path}`);
      }
      expect((await lstat(join(root, 'fifo1'))).isFIFO()).to.equal(true);
      expect((await lstat(join(root, 'sock'))).isSocket()).to.equal(true);
      expect((await lstat(join(root, 'fifo-link'))).isSymbolicLink()).to.equal(true);
    });

    it('blocks no thread: many FIFO reads at once, more than the pool has slots, then a normal read', async () => {
      const reads = await Promise.all(Array.from({ length: 24 }, (_, i) => call('/file/read', { path: i % 2 ? 'fifo1' : 'sub/pipe' })));
      for (const r of reads) expectError(r, 400, 'not_a_regular_file', 'concurrent FIFO read');
      const edits = await Promise.all(Array.from({ length: 8 }, () => call('/file/edit', { path: 'fifo2', old_str: 'a', new_str: 'b' })));
      for (const r of edits) expectError(r, 400, 'not_a_regular_file', 'concurrent FIFO edit');
      const ok = await call('/file/read', { path: 'a.txt' });
      expect(ok.status).to.equal(200);
      expect(ok.body.content).to.equal('a\n');
    });

    it('lists a folder holding them, as type "other" (never opened) and the link as a symlink', async () => {
      const r = await call('/file/list', { path: '.', depth: 2 });
      expect(r.status).to.equal(200);
      const byPath = new Map((r.body.entries as { path: string; type: string }[]).map((e) => [e.path, e.type]));
      expect(byPath.get('fifo1')).to.equal('other');
      expect(byPath.get('sock')).to.equal('other');
      expect(byPath.get('sub/pipe')).to.equal('other');
      expect(byPath.get('fifo-link')).to.equal('symlink');
      expect((await call('/file/list', { path: 'fifo1' })).body.error.code).to.equal('not_a_directory');
    });
  });

  describe('symlinks that point outside, dangling links, files used as folders', () => {
    before(async () => {
      await sh(
        [
          `ln -s '${outside}/x' leak`,
          `ln -s '${outside}' od`,
          `ln -s '/nonexistent-${process.pid}/dir' dangling-out`,
          'ln -s missing-folder dangling-in',
          `ln -s '${join(s.dataDir, 'projects')}' data-link`,
          'ln -s loop-b loop-a && ln -s loop-a loop-b',
        ].join(' && '),
      );
    });

    it('refuses each with a 4xx that names only the project path, and writes nothing outside', async () => {
      const cases: [string, Record<string, unknown>, number, string][] = [
        ['/file/read', { path: 'leak' }, 400, 'path_outside_project'],
        ['/file/write', { path: 'leak', content: 'pwned' }, 400, 'path_outside_project'],
        ['/file/edit', { path: 'leak', old_str: 'OUTSIDE', new_str: 'pwned' }, 400, 'path_outside_project'],
        ['/file/write', { path: 'od/new.txt', content: 'pwned' }, 400, 'path_outside_project'],
        ['/file/write', { path: 'od/x', content: 'pwned' }, 400, 'path_outside_project'],
        ['/file/list', { path: 'od' }, 400, 'path_outside_project'],
        ['/file/read', { path: 'od/x' }, 400, 'path_outside_project'],
        ['/file/write', { path: 'dangling-out/x.txt', content: 'x' }, 400, 'path_outside_project'],
        ['/file/write', { path: 'dangling-out/deeper/x.txt', content: 'x' }, 400, 'path_outside_project'],
        ['/file/write', { path: 'dangling-in/x.txt', content: 'x' }, 400, 'not_a_directory'],
        ['/file/write', { path: 'a.txt/x.txt', content: 'x' }, 400, 'not_a_directory'],
        ['/file/write', { path: 'data-link/other/x.txt', content: 'x' }, 400, 'path_outside_project'],
        ['/file/read', { path: 'data-link/hostile/a.txt' }, 400, 'path_outside_project'],
        ['/file/write', { path: 'loop-a', content: 'x' }, 400, 'bad_request'],
        ['/file/read', { path: 'loop-a/x' }, 400, 'bad_request'],
      ];
      for (const [route, body, status, code] of cases) {
        const r = await call(route, body);
        expectError(r, status, code, `${route} ${JSON.stringify(body)}`);
        expect(JSON.stringify(r.body)).to.not.include(outside);
      }
      await outsideUntouched();
      // Nothing was made for the dangling links either.
      expect((await lstat(join(root, 'dangling-in'))).isSymbolicLink()).to.equal(true);
      expect(await readdir(root)).to.not.include('missing-folder');
    });

    it('follows a symlink that stays inside, for a folder on the way and for the file itself', async () => {
      await sh('mkdir -p real/inner && ln -s real/inner via && echo one > real/inner/f.txt && ln -s real/inner/f.txt flink');
      expect((await call('/file/write', { path: 'via/new.txt', content: 'made\n' })).status).to.equal(200);
      expect(await readFile(join(root, 'real/inner/new.txt'), 'utf8')).to.equal('made\n');
      const w = await call('/file/write', { path: 'flink', content: 'two\n' });
      expect(w.body).to.deep.equal({ path: 'real/inner/f.txt', bytes: 4, created: false });
      expect((await lstat(join(root, 'flink'))).isSymbolicLink()).to.equal(true);
      expect((await call('/file/read', { path: 'via/f.txt' })).body.content).to.equal('two\n');
      const list = await call('/file/list', { path: 'via' });
      expect(list.body.entries.map((e: { path: string }) => e.path)).to.deep.equal(['via/f.txt', 'via/new.txt']);
    });
  });

  it('a command swapping a folder for a symlink to outside in a loop never gets a write out, nor outside content back', async () => {
    const loop = [
      `OUT='${outside}'`,
      'while true; do',
      '  rm -rf d.tmp; ln -s "$OUT" d.tmp; rm -rf d; mv -T d.tmp d',
      '  rm -rf r.tmp; mkdir r.tmp; echo inside > r.tmp/x; rm -rf d; mv -T r.tmp d',
      'done',
    ].join('\n');
    const started = await call('/execute', { command: loop, background: true, timeout_s: 120 });
    expect(started.status, JSON.stringify(started.body)).to.equal(200);
    const id = started.body.job_id as string;
    const outcomes = new Map<string, number>();
    const seen = (k: string): void => void outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    try {
      for (let round = 0; round < 40; round++) {
        const batch = await Promise.all([
          ...Array.from({ length: 4 }, (_, i) => call('/file/write', { path: 'd/x', content: `tool ${round}.${i}\n` }).then((r) => ['write', r] as const)),
          ...Array.from({ length: 2 }, (_, i) => call('/file/write', { path: `d/sub${i}/y`, content: 'deep\n' }).then((r) => ['write', r] as const)),
          call('/file/read', { path: 'd/x' }).then((r) => ['read', r] as const),
          call('/file/edit', { path: 'd/x', old_str: 'inside', new_str: 'edited' }).then((r) => ['edit', r] as const),
          call('/file/list', { path: 'd', depth: 2 }).then((r) => ['list', r] as const),
          call('/file/list', { path: '.', depth: 3 }).then((r) => ['list', r] as const),
        ]);
        for (const [op, r] of batch) {
          const key = r.status === 200 ? `${op} 200` : `${op} ${r.body.error?.code}`;
          seen(key);
          expect([200, 400, 404, 409, 422], `${op}: ${JSON.stringify(r.body)}`).to.include(r.status);
          expect(JSON.stringify(r.body)).to.not.include('OUTSIDE-SECRET');
          expect(JSON.stringify(r.body)).to.not.include('outside-only');
          expect(JSON.stringify(r.body)).to.not.include(outside);
        }
      }
    } finally {
      const del = await s.api(`/jobs/${id}`, undefined, { method: 'DELETE' });
      expect(FINAL_STATES, JSON.stringify(del.body)).to.include(del.body.status);
    }
    // Both states happened while the tools ran: some writes landed inside, some were refused as outside.
    const summary = JSON.stringify(Object.fromEntries(outcomes));
    expect(outcomes.get('write 200') ?? 0, summary).to.be.greaterThan(0);
    expect(outcomes.get('write path_outside_project') ?? 0, summary).to.be.greaterThan(0);
    await outsideUntouched();
  });

  it('edits through a symlink and a "dir/../" alias share one lock: 180 concurrent appends, none lost', async () => {
    await sh('ln -s log.txt alias');
    const n = 180;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        call('/file/edit', { path: ['alias', 'dir/../log.txt', './dir//../alias'][i % 3], old_str: 'END\n', new_str: `m${i}\nEND\n` }),
      ),
    );
    expect(results.map((r) => r.status)).to.deep.equal(Array(n).fill(200));
    const final = await readFile(join(root, 'log.txt'), 'utf8');
    const markers = final.split('\n').filter((l) => /^m\d+$/.test(l));
    expect(markers.length).to.equal(n);
    expect(new Set(markers).size).to.equal(n);
    expect(final.startsWith('START\n') && final.endsWith('END\n')).to.equal(true);
    expect((await lstat(join(root, 'alias'))).isSymbolicLink()).to.equal(true);
  });

  it('edits a Latin-1 file as bytes: every byte outside the replaced range stays as it was', async () => {
    const before = Buffer.concat([
      Buffer.from('caf\xe9 au lait\r\n', 'latin1'),
      Buffer.from('na\xefve line\n', 'latin1'),
      Buffer.from('edit me here\n', 'latin1'),
      Buffer.from('r\xe9sum\xe9 \xa9 \xff\n', 'latin1'),
    ]);
    await writeFile(join(root, 'latin1.txt'), before);
    const r = await call('/file/edit', { path: 'latin1.txt', old_str: 'edit me', new_str: 'edited ✓' });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body).to.include({ path: 'latin1.txt', replacements: 1 });
    expect(r.body.lines).to.deep.equal([3]);
    // The snippet is for reading: the undecodable bytes show as U+FFFD there, and only there.
    expect(r.body.snippets).to.have.length(1);
    expect(r.body.snippets[0].text).to.include('     3\tedited ✓ here');
    const at = before.indexOf('edit me');
    const expected = Buffer.concat([before.subarray(0, at), Buffer.from('edited ✓'), before.subarray(at + 'edit me'.length)]);
    expect((await readFile(join(root, 'latin1.txt'))).equals(expected)).to.equal(true);

    // What /file/read shows for the undecodable bytes (U+FFFD) is never in the file: the error says so.
    const miss = await call('/file/edit', { path: 'latin1.txt', old_str: 'caf\uFFFD', new_str: 'cafe' });
    expectError(miss, 422, 'edit_no_match', 'U+FFFD');
    expect(miss.body.error.message).to.include('not valid UTF-8');
    expect((await readFile(join(root, 'latin1.txt'))).equals(expected)).to.equal(true);
  });

  it('gives what it creates to the project owner, and a replaced file keeps its owner and mode', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const w = await call('/file/write', { path: 'owned/deep/new.txt', content: 'n\n' });
    expect(w.status).to.equal(200);
    const file = await stat(join(root, 'owned/deep/new.txt'));
    expect(file.uid).to.not.equal(0);
    // The uid is the one recorded for this project.
    expect(await readFile(join(s.dataDir, 'uids', String(file.uid)), 'utf8')).to.equal(P);
    expect(file.mode & 0o7777).to.equal(0o644);
    for (const dir of ['owned', 'owned/deep']) expect((await stat(join(root, dir))).uid, dir).to.equal(file.uid);

    await mkdir(join(root, 'kept'), { recursive: true });
    await writeFile(join(root, 'kept/root-owned.txt'), 'old\n');
    await chmod(join(root, 'kept/root-owned.txt'), 0o640);
    expect((await call('/file/write', { path: 'kept/root-owned.txt', content: 'new\n' })).status).to.equal(200);
    expect((await call('/file/edit', { path: 'kept/root-owned.txt', old_str: 'new', new_str: 'newer' })).status).to.equal(200);
    const kept = await stat(join(root, 'kept/root-owned.txt'));
    expect([kept.uid, kept.gid, kept.mode & 0o7777]).to.deep.equal([0, 0, 0o640]);
    expect(await readFile(join(root, 'kept/root-owned.txt'), 'utf8')).to.equal('newer\n');
  });

  it('leaves no temp files behind after all of the above', async () => {
    const { stdout } = await run('find', [root, '-name', '*.toolhost-*']);
    expect(stdout).to.equal('');
    await symlink('a.txt', join(root, 'late-link')); // still a plain project afterwards
    expect((await call('/file/read', { path: 'late-link' })).body.content).to.equal('a\n');
  });
});
