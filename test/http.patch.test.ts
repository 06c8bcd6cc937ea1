/**
 * POST /file/patch (apply_patch) on a real supervisor and project: recorded patches in both grammars (a Codex
 * envelope, OpenAI apply_patch_call operations), what a refused patch leaves on disk (nothing), hostile paths, the
 * undo of a write that fails midway, and one call through the real MCP SDK client.
 */
import { lstat, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { expect } from 'chai';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';
import { errorJson, mcpClient, resultText, type ToolResult } from './helpers/mcp-client.js';

const APP_PY = 'import sys\n\ndef greet():\n    print("Hi")\n\ndef main():\n    greet()\n    return 0\n';

describe('POST /file/patch (apply_patch)', () => {
  let s: TestServer;
  let outside: string;
  let n = 0;
  /** A fresh project with `files`; returns its id and its folder. */
  async function project(files: Record<string, string | { link: string }>): Promise<{ id: string; dir: string }> {
    const id = `p${++n}`;
    expect((await s.putProject(id, files)).status).to.equal(201);
    return { id, dir: join(s.dataDir, 'projects', id) };
  }
  const patch = (project_id: string, text: string) => s.api('/file/patch', { project_id, patch: text });
  const exists = async (p: string): Promise<boolean> =>
    lstat(p).then(
      () => true,
      () => false,
    );

  before(async () => {
    s = await startServer();
    outside = await tempDir('toolhost-outside-');
    await writeFile(join(outside, 'secret.txt'), 'top secret\n');
  });
  after(async () => {
    await s?.close();
    await rm(outside, { recursive: true, force: true });
  });

  it('applies a multi-file Codex envelope: add, update with two hunks, move, delete', async () => {
    const p = await project({ 'src/app.py': APP_PY, 'old.txt': 'bye\n', 'notes/todo.md': '- a\n- b\n' });
    const r = await patch(
      p.id,
      [
        '*** Begin Patch',
        '*** Add File: docs/hello.md',
        '+# Hello',
        '+world',
        '*** Update File: src/app.py',
        '*** Move to: src/main.py',
        '@@ def greet():',
        '-    print("Hi")',
        '+    print("Hello, world!")',
        '@@ def main():',
        '     greet()',
        '-    return 0',
        '+    return 1',
        '*** Delete File: old.txt',
        '*** Update File: notes/todo.md',
        '@@',
        ' - b',
        '+- c',
        '*** End of File',
        '*** End Patch',
      ].join('\n'),
    );
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body).to.deep.equal({
      files: [
        { path: 'docs/hello.md', action: 'add' },
        { path: 'src/app.py', action: 'move', to: 'src/main.py' },
        { path: 'old.txt', action: 'delete' },
        { path: 'notes/todo.md', action: 'update' },
      ],
      notes: [],
    });
    expect(await readFile(join(p.dir, 'docs/hello.md'), 'utf8')).to.equal('# Hello\nworld\n');
    expect(await readFile(join(p.dir, 'src/main.py'), 'utf8')).to.equal(
      APP_PY.replace('print("Hi")', 'print("Hello, world!")').replace('return 0', 'return 1'),
    );
    expect(await exists(join(p.dir, 'src/app.py'))).to.equal(false);
    expect(await exists(join(p.dir, 'old.txt'))).to.equal(false);
    expect(await readFile(join(p.dir, 'notes/todo.md'), 'utf8')).to.equal('- a\n- b\n- c\n');
  });

  it('applies OpenAI apply_patch_call operations (create_file, update_file, delete_file) in order', async () => {
    const p = await project({ 'shop.py': 'def total(items):\n    return sum(items)\n', 'tmp.log': 'x\n' });
    const r = await s.api('/file/patch', {
      project_id: p.id,
      operations: [
        { type: 'create_file', path: 'lib/tax.py', diff: '+RATE = 0.2\n+' },
        { type: 'update_file', path: 'shop.py', diff: '@@ def total(items):\n-    return sum(items)\n+    return sum(items) * (1 + RATE)\n' },
        { type: 'update_file', path: 'shop.py', diff: '@@\n+from lib.tax import RATE\n def total(items):\n' },
        { type: 'delete_file', path: 'tmp.log' },
      ],
    });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.files).to.deep.equal([
      { path: 'lib/tax.py', action: 'add' },
      { path: 'shop.py', action: 'update' },
      { path: 'tmp.log', action: 'delete' },
    ]);
    expect(await readFile(join(p.dir, 'lib/tax.py'), 'utf8')).to.equal('RATE = 0.2\n');
    expect(await readFile(join(p.dir, 'shop.py'), 'utf8')).to.equal('from lib.tax import RATE\ndef total(items):\n    return sum(items) * (1 + RATE)\n');
  });

  it('answers the model like codex, with a line per fuzz note (POST /tools/apply_patch/call)', async () => {
    const p = await project({ 'q.md': 'He said “stop” — twice.  \nend\n' });
    const r = await s.api('/tools/apply_patch/call', {
      project_id: p.id,
      patch: '*** Begin Patch\n*** Update File: q.md\n@@\n-He said "stop" - twice.\n+He said "go".\n end\n*** End Patch',
    });
    expect(r.status).to.equal(200);
    expect(r.body.is_error).to.equal(false);
    expect(r.body.content).to.equal(
      'Success. Updated the following files:\nM q.md\nNote: q.md: hunk 1 matched at line 1 only by treating Unicode punctuation look-alikes (curly quotes, dashes, non-breaking spaces) as ASCII',
    );
    expect(await readFile(join(p.dir, 'q.md'), 'utf8')).to.equal('He said "go".\nend\n');
  });

  it('writes nothing when a hunk does not apply, and names the file, the hunk and the closest lines', async () => {
    const p = await project({ 'a.txt': 'one\ntwo\n', 'src/app.py': APP_PY });
    const r = await patch(
      p.id,
      '*** Begin Patch\n*** Update File: a.txt\n@@\n one\n-two\n+2\n*** Add File: new.txt\n+x\n*** Update File: src/app.py\n@@ def greet():\n-    print("Hello")\n+    print(1)\n*** End Patch',
    );
    expect(r.status).to.equal(422);
    expect(r.body.error.code).to.equal('patch_failed');
    expect(r.body.error.message).to.include('could not apply hunk 1 to "src/app.py" (patch line 10)');
    expect(r.body.error.message).to.include('     4\t    print("Hi")');
    expect(r.body.error).to.deep.include({ path: 'src/app.py', hunk: 1 });
    expect(await readFile(join(p.dir, 'a.txt'), 'utf8')).to.equal('one\ntwo\n');
    expect(await exists(join(p.dir, 'new.txt'))).to.equal(false);
    expect(await readFile(join(p.dir, 'src/app.py'), 'utf8')).to.equal(APP_PY);
    // Refused before anything was written: the working copy stays clean.
    const info = await s.api(`/projects/${p.id}`);
    expect(info.body.dirty, JSON.stringify(info.body)).to.equal(false);
  });

  it('refuses a pure addition it cannot place instead of appending it (codex #30946)', async () => {
    const p = await project({ 'input.txt': 'line1\nline2\n' });
    const r = await s.api('/file/patch', {
      project_id: p.id,
      operations: [{ type: 'update_file', path: 'input.txt', diff: '@@\n+added line 1\n+added line 2\n' }],
    });
    expect(r.status).to.equal(422);
    expect(r.body.error.code).to.equal('patch_failed');
    expect(r.body.error.message).to.include('not appended to the end');
    expect(await readFile(join(p.dir, 'input.txt'), 'utf8')).to.equal('line1\nline2\n');
  });

  it('refuses malformed input: both or neither form, a bad envelope, a delete with a diff', async () => {
    const p = await project({ 'a.txt': 'a\n' });
    const both = await s.api('/file/patch', {
      project_id: p.id,
      patch: '*** Begin Patch\n*** Delete File: a.txt\n*** End Patch',
      operations: [{ type: 'delete_file', path: 'a.txt' }],
    });
    expect(both.status).to.equal(400);
    expect(both.body.error.message).to.include('exactly one of patch');
    expect((await s.api('/file/patch', { project_id: p.id })).status).to.equal(400);
    const cut = await patch(p.id, '*** Begin Patch\n*** Update File: a.txt\n@@\n-a\n+b\n');
    expect(cut.status).to.equal(422);
    expect(cut.body.error.code).to.equal('patch_invalid');
    expect(cut.body.error.message).to.include('*** End Patch');
    const del = await s.api('/file/patch', { project_id: p.id, operations: [{ type: 'delete_file', path: 'a.txt', diff: '-a' }] });
    expect(del.body.error.code).to.equal('patch_invalid');
    const noDiff = await s.api('/file/patch', { project_id: p.id, operations: [{ type: 'update_file', path: 'a.txt' }] });
    expect(noDiff.body.error.message).to.include('needs a diff');
    expect(await readFile(join(p.dir, 'a.txt'), 'utf8')).to.equal('a\n');
  });

  it('refuses a hostile envelope quickly: a path of 100,000 characters, more operations than allowed', async () => {
    const p = await project({ 'a.txt': 'a\n' });
    const long = await patch(p.id, `*** Begin Patch\n*** Add File: ${'d/'.repeat(50_000)}x\n+x\n*** End Patch`);
    expect(long.status).to.equal(422);
    expect(long.body.error.message).to.include('longer than 4096');
    const spaces = await patch(p.id, `*** Begin Patch\n*** Add File: ${' '.repeat(100_000)}\n*** End Patch`);
    expect(spaces.status).to.be.within(400, 499);
    const many = Array.from({ length: 201 }, (_, i) => `*** Add File: f${i}.txt\n+x`).join('\n');
    const tooMany = await patch(p.id, `*** Begin Patch\n${many}\n*** End Patch`);
    expect(tooMany.body.error.code).to.equal('patch_invalid');
    expect(tooMany.body.error.message).to.include('more than 200');
    expect(await readdir(p.dir)).to.deep.equal(['a.txt']);
  });

  it('updates a file it added in a new folder earlier in the same patch', async () => {
    const p = await project({ 'a.txt': 'a\n' });
    const r = await patch(p.id, '*** Begin Patch\n*** Add File: nd/x.txt\n+one\n*** Update File: nd/x.txt\n@@\n-one\n+two\n*** End Patch');
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(await readFile(join(p.dir, 'nd', 'x.txt'), 'utf8')).to.equal('two\n');
  });

  it('reports a missing file to update or delete, and a folder to delete', async () => {
    const p = await project({ 'dir/foo.txt': 'x\n' });
    expect((await patch(p.id, '*** Begin Patch\n*** Update File: nope.txt\n@@\n-a\n+b\n*** End Patch')).body.error.code).to.equal('file_not_found');
    expect((await patch(p.id, '*** Begin Patch\n*** Delete File: nope.txt\n*** End Patch')).body.error.code).to.equal('file_not_found');
    expect((await patch(p.id, '*** Begin Patch\n*** Delete File: dir\n*** End Patch')).body.error.code).to.equal('is_a_directory');
    expect(await readFile(join(p.dir, 'dir/foo.txt'), 'utf8')).to.equal('x\n');
  });

  describe('hostile paths', () => {
    let p: { id: string; dir: string };
    before(async () => {
      p = await project({ 'a.txt': 'a\n', 'inside-link': { link: 'a.txt' } });
      await symlink(outside, join(p.dir, 'escape'));
      await symlink(join(outside, 'secret.txt'), join(p.dir, 'secret-link'));
    });

    for (const [what, path] of [
      ['..', '../p1/evil.txt'],
      ['an absolute path outside', '/etc/evil.txt'],
      ['a symlinked folder outside', 'escape/evil.txt'],
      ['a NUL byte', 'a\0.txt'],
    ] as const) {
      it(`refuses ${what} in every operation, writing nothing`, async () => {
        for (const text of [
          `*** Begin Patch\n*** Add File: ${path}\n+evil\n*** End Patch`,
          `*** Begin Patch\n*** Update File: a.txt\n@@\n-a\n+b\n*** Add File: ${path}\n+evil\n*** End Patch`,
          `*** Begin Patch\n*** Update File: a.txt\n*** Move to: ${path}\n@@\n-a\n+b\n*** End Patch`,
          `*** Begin Patch\n*** Delete File: ${path}\n*** End Patch`,
        ]) {
          const r = await patch(p.id, text);
          expect(r.body.error?.code, `${text}: ${JSON.stringify(r.body)}`).to.equal('path_outside_project');
        }
        const ops = await s.api('/file/patch', { project_id: p.id, operations: [{ type: 'create_file', path, diff: '+evil' }] });
        expect(ops.body.error.code).to.equal('path_outside_project');
        expect(await readFile(join(p.dir, 'a.txt'), 'utf8')).to.equal('a\n');
      });
    }

    it('never follows a symlink out of the project, and deletes no link target', async () => {
      expect((await patch(p.id, '*** Begin Patch\n*** Update File: secret-link\n@@\n-top secret\n+leaked\n*** End Patch')).body.error.code).to.equal(
        'path_outside_project',
      );
      expect((await patch(p.id, '*** Begin Patch\n*** Delete File: secret-link\n*** End Patch')).body.error.code).to.equal('not_a_regular_file');
      expect((await patch(p.id, '*** Begin Patch\n*** Delete File: inside-link\n*** End Patch')).body.error.code).to.equal('not_a_regular_file');
      expect(await readFile(join(outside, 'secret.txt'), 'utf8')).to.equal('top secret\n');
      expect(await readFile(join(p.dir, 'a.txt'), 'utf8')).to.equal('a\n');
      expect(await exists(join(outside, 'evil.txt'))).to.equal(false);
    });
  });

  it('puts back the files already written when a later write fails (all or nothing)', async () => {
    const p = await project({ 'a.txt': 'a\n', 'b.txt': 'b\n', blocker: 'a file, not a folder\n' });
    // The check cannot see that "blocker" is a file until it creates folders for the new file; by then a.txt is written and b.txt deleted.
    const r = await patch(
      p.id,
      '*** Begin Patch\n*** Update File: a.txt\n@@\n-a\n+A\n*** Delete File: b.txt\n*** Add File: blocker/new.txt\n+x\n*** End Patch',
    );
    expect(r.status).to.equal(400);
    expect(r.body.error.code).to.equal('not_a_directory');
    expect(await readFile(join(p.dir, 'a.txt'), 'utf8')).to.equal('a\n');
    expect(await readFile(join(p.dir, 'b.txt'), 'utf8')).to.equal('b\n');
  });

  it('answers through the real MCP SDK client', async () => {
    const p = await project({ 'm.txt': 'alpha\nbeta\n' });
    const client: Client = await mcpClient(s);
    try {
      const ok = (await client.callTool({
        name: 'apply_patch',
        arguments: { project_id: p.id, operations: [{ type: 'update_file', path: 'm.txt', diff: '@@\n alpha\n-beta\n+gamma\n' }] },
      })) as ToolResult;
      expect(ok.isError ?? false).to.equal(false);
      expect(resultText(ok)).to.equal('Success. Updated the following files:\nM m.txt');
      const bad = (await client.callTool({
        name: 'apply_patch',
        arguments: { project_id: p.id, patch: '*** Begin Patch\n*** Update File: m.txt\n@@\n-delta\n+x\n*** End Patch' },
      })) as ToolResult;
      const body = errorJson(bad);
      expect(body.error.code).to.equal('patch_failed');
      expect(body.error.message).to.include('could not apply hunk 1 to "m.txt"');
    } finally {
      await client.close();
    }
    expect(await readFile(join(p.dir, 'm.txt'), 'utf8')).to.equal('alpha\ngamma\n');
  });
});
