import { readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';

describe('file tools', () => {
  let s: TestServer;
  let root: string;
  let outside: string;

  before(async () => {
    s = await startServer({ files: { maxReadBytes: 64 } });
    outside = await tempDir('toolhost-outside-');
    await writeFile(join(outside, 'secret.txt'), 'top secret\n');
    const put = await s.putProject('f', {
      'five.txt': 'one\ntwo\nthree\nfour\nfive\n',
      'nolf.txt': 'a\nb',
      'crlf.txt': 'alpha\r\nbeta\r\ngamma\r\n',
      'dup.txt': 'x = 1\ny = 2\nx = 1\nz = 3\nx = 1\n',
      'code.py': 'def handler(event):\n    return event\n',
      'dir/inner.txt': 'inner\n',
      'inside-link': { link: 'five.txt' },
    });
    expect(put.status).to.equal(201);
    root = join(s.dataDir, 'projects', 'f');
    await symlink(outside, join(root, 'escape'));
    await writeFile(join(root, 'bin.dat'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]));
  });
  after(async () => {
    await s?.close();
    await rm(outside, { recursive: true, force: true });
  });

  describe('POST /file/read', () => {
    it('returns content with line counts', async () => {
      const r = await s.api('/file/read', { project_id: 'f', path: 'five.txt' });
      expect(r.status).to.equal(200);
      expect(r.body).to.deep.equal({
        path: 'five.txt',
        content: 'one\ntwo\nthree\nfour\nfive\n',
        total_lines: 5,
        start_line: 1,
        end_line: 5,
        truncated: false,
        next_start_line: null,
      });
    });

    it('returns a line range', async () => {
      const r = await s.api('/file/read', { project_id: 'f', path: 'five.txt', start_line: 2, end_line: 3 });
      expect(r.body).to.include({ content: 'two\nthree\n', total_lines: 5, start_line: 2, end_line: 3 });
    });

    it('counts a last line without a newline', async () => {
      const r = await s.api('/file/read', { project_id: 'f', path: 'nolf.txt' });
      expect(r.body).to.include({ content: 'a\nb', total_lines: 2, end_line: 2 });
    });

    it('cuts at files.maxReadBytes on a line end and says where to continue', async () => {
      await s.api('/file/write', { project_id: 'f', path: 'long.txt', content: Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n') });
      const r = await s.api('/file/read', { project_id: 'f', path: 'long.txt' });
      expect(r.body.truncated).to.equal(true);
      expect(r.body.content.length).to.be.at.most(64);
      expect(r.body.content.endsWith('\n')).to.equal(true);
      expect(r.body.end_line).to.equal(r.body.content.split('\n').length - 1);
      expect(r.body.next_start_line).to.equal(r.body.end_line + 1);
      const next = await s.api('/file/read', { project_id: 'f', path: 'long.txt', start_line: r.body.next_start_line });
      expect(next.body.content.startsWith(`line ${r.body.end_line + 1}\n`)).to.equal(true);
    });

    it('refuses binary files', async () => {
      const r = await s.api('/file/read', { project_id: 'f', path: 'bin.dat' });
      expect(r.status).to.equal(415);
      expect(r.body.error.code).to.equal('binary_file');
    });

    it('reports a missing file, a folder and a range past the end', async () => {
      expect((await s.api('/file/read', { project_id: 'f', path: 'nope.txt' })).body.error.code).to.equal('file_not_found');
      expect((await s.api('/file/read', { project_id: 'f', path: 'dir' })).body.error.code).to.equal('is_a_directory');
      const past = await s.api('/file/read', { project_id: 'f', path: 'five.txt', start_line: 9 });
      expect(past.status).to.equal(400);
      expect(past.body.error.message).to.include('has 5 lines');
      const back = await s.api('/file/read', { project_id: 'f', path: 'five.txt', start_line: 3, end_line: 2 });
      expect(back.body.error.code).to.equal('line_out_of_range');
    });

    it('follows a symlink that stays inside the project', async () => {
      const r = await s.api('/file/read', { project_id: 'f', path: 'inside-link', end_line: 1 });
      expect(r.body.content).to.equal('one\n');
    });
  });

  describe('path confinement', () => {
    const escapes = ['../../etc/passwd', '/etc/passwd', 'dir/../../x', 'escape/secret.txt', 'a\u0000b'];
    for (const path of escapes) {
      it(`refuses ${JSON.stringify(path)} for read, write, edit and list`, async () => {
        for (const [route, extra] of [
          ['/file/read', {}],
          ['/file/write', { content: 'pwned' }],
          ['/file/edit', { old_str: 'top', new_str: 'pwned' }],
          ['/file/list', {}],
        ] as const) {
          const r = await s.api(route, { project_id: 'f', path, ...extra });
          expect(r.status, `${route} ${path}`).to.equal(400);
          expect(r.body.error.code).to.equal('path_outside_project');
        }
        expect(await readFile(join(outside, 'secret.txt'), 'utf8')).to.equal('top secret\n');
        expect(await readdir(outside)).to.deep.equal(['secret.txt']);
      });
    }

    it('accepts an absolute path that lies inside the project', async () => {
      const r = await s.api('/file/read', { project_id: 'f', path: join(root, 'five.txt'), end_line: 1 });
      expect(r.body.content).to.equal('one\n');
    });
  });

  describe('POST /file/write', () => {
    it('creates parent folders and reports creation', async () => {
      const r = await s.api('/file/write', { project_id: 'f', path: 'new/deep/file.txt', content: 'héllo\n' });
      expect(r.status).to.equal(200);
      expect(r.body).to.deep.equal({ path: 'new/deep/file.txt', bytes: 7, created: true });
      expect(await readFile(join(root, 'new/deep/file.txt'), 'utf8')).to.equal('héllo\n');
      const again = await s.api('/file/write', { project_id: 'f', path: 'new/deep/file.txt', content: 'x' });
      expect(again.body.created).to.equal(false);
    });

    it('leaves no temp files behind', async () => {
      await s.api('/file/write', { project_id: 'f', path: 'atomic.txt', content: 'a'.repeat(10000) });
      expect((await readdir(root)).filter((n) => n.includes('toolhost'))).to.deep.equal([]);
    });

    it('writes through an inside symlink to its target, keeping the link', async () => {
      await s.api('/file/write', { project_id: 'f', path: 'link-target.txt', content: 'old' });
      await symlink('link-target.txt', join(root, 'link2'));
      await s.api('/file/write', { project_id: 'f', path: 'link2', content: 'new' });
      expect(await readFile(join(root, 'link-target.txt'), 'utf8')).to.equal('new');
    });

    it('refuses to write over a folder', async () => {
      const r = await s.api('/file/write', { project_id: 'f', path: 'dir', content: 'x' });
      expect(r.status).to.equal(400);
      expect(r.body.error.code).to.equal('is_a_directory');
    });
  });

  describe('POST /file/edit', () => {
    it('replaces one exact match', async () => {
      const r = await s.api('/file/edit', { project_id: 'f', path: 'code.py', old_str: 'return event', new_str: 'return {"ok": event}' });
      expect(r.status).to.equal(200);
      expect(r.body).to.deep.equal({
        path: 'code.py',
        replacements: 1,
        lines: [2],
        snippets: [{ start_line: 1, end_line: 2, text: '     1\tdef handler(event):\n     2\t    return {"ok": event}' }],
        snippets_cut: 0,
      });
      expect(await readFile(join(root, 'code.py'), 'utf8')).to.equal('def handler(event):\n    return {"ok": event}\n');
    });

    it('refuses when the count differs, naming the lines, and writes nothing', async () => {
      const before = await readFile(join(root, 'dup.txt'), 'utf8');
      const r = await s.api('/file/edit', { project_id: 'f', path: 'dup.txt', old_str: 'x = 1', new_str: 'x = 2' });
      expect(r.status).to.equal(422);
      expect(r.body.error.code).to.equal('edit_count_mismatch');
      expect(r.body.error.lines).to.deep.equal([1, 3, 5]);
      expect(r.body.error.message).to.include('matched 3 times (lines 1, 3, 5)');
      expect(r.body.error.message).to.include('expected_replacements: 3');
      expect(await readFile(join(root, 'dup.txt'), 'utf8')).to.equal(before);
    });

    it('replaces every match when expected_replacements says so', async () => {
      const r = await s.api('/file/edit', { project_id: 'f', path: 'dup.txt', old_str: 'x = 1', new_str: 'x = 10', expected_replacements: 3 });
      expect(r.body).to.include({ path: 'dup.txt', replacements: 3, snippets_cut: 0 });
      expect(r.body.lines).to.deep.equal([1, 3, 5]);
      // Three regions whose context overlaps: one snippet of the whole file.
      expect(r.body.snippets.map((x: { start_line: number; end_line: number }) => [x.start_line, x.end_line])).to.deep.equal([[1, 5]]);
      expect(await readFile(join(root, 'dup.txt'), 'utf8')).to.equal('x = 10\ny = 2\nx = 10\nz = 3\nx = 10\n');
    });

    it('on no match names the closest lines', async () => {
      const r = await s.api('/file/edit', { project_id: 'f', path: 'code.py', old_str: 'def handlr(evnt):', new_str: 'x' });
      expect(r.status).to.equal(422);
      expect(r.body.error.code).to.equal('edit_no_match');
      expect(r.body.error.closest[0]).to.deep.equal({ line: 1, text: 'def handler(event):' });
      expect(r.body.error.message).to.include('1: "def handler(event):"');
    });

    it('says when only whitespace differs', async () => {
      const r = await s.api('/file/edit', { project_id: 'f', path: 'code.py', old_str: 'def handler(event):\n  return', new_str: 'x' });
      expect(r.body.error.code).to.equal('edit_no_match');
      expect(r.body.error.message).to.include('whitespace');
    });

    it('keeps CRLF line endings when old_str and new_str use LF', async () => {
      const r = await s.api('/file/edit', { project_id: 'f', path: 'crlf.txt', old_str: 'alpha\nbeta', new_str: 'ALPHA\nBETA\nextra' });
      expect(r.status).to.equal(200);
      expect(await readFile(join(root, 'crlf.txt'), 'utf8')).to.equal('ALPHA\r\nBETA\r\nextra\r\ngamma\r\n');
    });

    it('never loses an update under concurrent edits of one file', async () => {
      const n = 25;
      const lines = Array.from({ length: n }, (_, i) => `slot ${i}: empty`);
      await s.api('/file/write', { project_id: 'f', path: 'race.txt', content: `${lines.join('\n')}\n` });
      const results = await Promise.all(
        // Spelled three ways: the lock must be per file, not per string.
        lines.map((_, i) =>
          s.api('/file/edit', {
            project_id: 'f',
            path: ['race.txt', './race.txt', 'dir/../race.txt'][i % 3],
            old_str: `slot ${i}: empty`,
            new_str: `slot ${i}: done`,
          }),
        ),
      );
      expect(results.map((r) => r.status)).to.deep.equal(Array(n).fill(200));
      const final = await readFile(join(root, 'race.txt'), 'utf8');
      expect(final).to.equal(`${lines.map((l) => l.replace('empty', 'done')).join('\n')}\n`);
    });

    it('reports a missing file', async () => {
      const r = await s.api('/file/edit', { project_id: 'f', path: 'ghost.txt', old_str: 'a', new_str: 'b' });
      expect(r.status).to.equal(404);
    });
  });

  describe('POST /file/list and /search over HTTP', () => {
    it('lists entries with type and size', async () => {
      const r = await s.api('/file/list', { project_id: 'f', path: 'dir' });
      expect(r.status).to.equal(200);
      expect(r.body.entries).to.deep.equal([{ path: 'dir/inner.txt', type: 'file', size: 6 }]);
    });

    it('searches with context', async () => {
      const r = await s.api('/search', { project_id: 'f', pattern: 'three', context_lines: 1, glob: 'five.txt' });
      expect(r.status).to.equal(200);
      expect(r.body.matches).to.deep.equal([{ path: 'five.txt', line: 3, column: 1, text: 'three', before: ['two'], after: ['four'] }]);
      expect(r.body.truncated).to.equal(false);
    });
  });
});
