import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { fileEditTool } from '../handlers/file-edit.js';
import { startServer, type TestServer } from './helpers/harness.js';

const LINES = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);

describe('file_edit with several edits', () => {
  let s: TestServer;
  let root: string;
  const dirty = async (): Promise<boolean> => (await s.api('/projects/m')).body.dirty;
  const file = (name: string): Promise<Buffer> => readFile(join(root, name));

  beforeEach(async () => {
    s = await startServer();
    const put = await s.putProject('m', { 'a.txt': `${LINES.join('\n')}\n`, 'crlf.txt': 'one\r\ntwo\r\nthree\r\n' });
    expect(put.status).to.equal(201);
    root = join(s.dataDir, 'projects', 'm');
    expect(await dirty()).to.equal(false);
  });
  afterEach(async () => s?.close());

  it('applies edits in order, each to what the previous left, and numbers every changed region', async () => {
    const r = await s.api('/file/edit', {
      project_id: 'm',
      path: 'a.txt',
      edits: [
        { old_str: 'line 2\n', new_str: 'line 2\nline 2b\n' },
        { old_str: 'line 2b', new_str: 'second' },
        { old_str: 'line 25', new_str: 'XXV' },
      ],
    });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    const expected = [...LINES.slice(0, 2), 'second', ...LINES.slice(2)].map((l) => (l === 'line 25' ? 'XXV' : l));
    expect((await file('a.txt')).toString()).to.equal(`${expected.join('\n')}\n`);
    expect(r.body.replacements).to.equal(3);
    expect(r.body.lines).to.deep.equal([2, 3, 26]);
    const numbered = (from: number, to: number) =>
      expected
        .slice(from - 1, to)
        .map((l, i) => `${String(from + i).padStart(6)}\t${l}`)
        .join('\n');
    expect(r.body.snippets).to.deep.equal([
      { start_line: 1, end_line: 6, text: numbered(1, 6) },
      { start_line: 23, end_line: 29, text: numbered(23, 29) },
    ]);
    expect(r.body.snippets_cut).to.equal(0);
    expect(await dirty()).to.equal(true);
  });

  it('writes nothing when one edit fails, names it, and leaves the project clean', async () => {
    const before = await file('a.txt');
    const r = await s.api('/file/edit', {
      project_id: 'm',
      path: 'a.txt',
      edits: [
        { old_str: 'line 1\n', new_str: 'first\n' },
        { old_str: 'line 3\n', new_str: 'third\n' },
        { old_str: 'lime 7', new_str: 'seventh' },
      ],
    });
    expect(r.status).to.equal(422);
    expect(r.body.error.code).to.equal('edit_no_match');
    expect(r.body.error.edit_index).to.equal(2);
    expect(r.body.error.message).to.match(/^edits\[2\]: old_str was not found/);
    expect(r.body.error.message).to.include('7: "line 7"');
    expect((await file('a.txt')).equals(before)).to.equal(true);
    expect(await dirty()).to.equal(false);
  });

  it('names a count mismatch of a later edit with the lines of the text the earlier ones left', async () => {
    const r = await s.api('/file/edit', {
      project_id: 'm',
      path: 'a.txt',
      edits: [
        { old_str: 'line 4\n', new_str: 'dup\n' },
        { old_str: 'line 5\n', new_str: 'dup\n' },
        { old_str: 'dup', new_str: 'x' },
      ],
    });
    expect(r.status).to.equal(422);
    expect(r.body.error).to.include({ code: 'edit_count_mismatch', edit_index: 2, matches: 2 });
    expect(r.body.error.lines).to.deep.equal([4, 5]);
    expect(r.body.error.message).to.include('edits[0..1]');
  });

  it('refuses a no-op edit before it runs: the copy stays clean', async () => {
    const single = await s.api('/file/edit', { project_id: 'm', path: 'a.txt', old_str: 'line 1', new_str: 'line 1' });
    expect(single.status).to.equal(422);
    expect(single.body.error.code).to.equal('edit_no_op');
    const multi = await s.api('/file/edit', {
      project_id: 'm',
      path: 'a.txt',
      edits: [
        { old_str: 'line 1', new_str: 'one' },
        { old_str: 'line 2', new_str: 'line 2' },
      ],
    });
    expect(multi.status).to.equal(422);
    expect(multi.body.error).to.include({ code: 'edit_no_op', edit_index: 1 });
    expect(multi.body.error.message).to.include('edits[1]');
    expect(await dirty()).to.equal(false);
  });

  it('refuses edits that cancel out, writing nothing', async () => {
    const before = await file('a.txt');
    const r = await s.api('/file/edit', {
      project_id: 'm',
      path: 'a.txt',
      edits: [
        { old_str: 'line 9\n', new_str: 'nine\n' },
        { old_str: 'nine\n', new_str: 'line 9\n' },
      ],
    });
    expect(r.status).to.equal(422);
    expect(r.body.error.code).to.equal('edit_no_op');
    expect((await file('a.txt')).equals(before)).to.equal(true);
  });

  it('keeps CRLF through several edits', async () => {
    const r = await s.api('/file/edit', {
      project_id: 'm',
      path: 'crlf.txt',
      edits: [
        { old_str: 'one\ntwo', new_str: 'ONE\nTWO\n2b' },
        { old_str: 'three', new_str: 'THREE' },
      ],
    });
    expect(r.status).to.equal(200);
    expect((await file('crlf.txt')).toString()).to.equal('ONE\r\nTWO\r\n2b\r\nTHREE\r\n');
    expect(r.body.snippets[0].text).to.equal('     1\tONE\n     2\tTWO\n     3\t2b\n     4\tTHREE');
  });

  it("cuts a snippet's long line at budgets.lineChars with file_read's mark", async () => {
    const long = 'y'.repeat(5000);
    const r = await s.api('/file/edit', { project_id: 'm', path: 'a.txt', old_str: 'line 1\n', new_str: `${long}\n` });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.snippets[0].text.split('\n')[0]).to.equal(`     1\t${'y'.repeat(2000)} …[cut]`);
    expect((await file('a.txt')).toString().startsWith(`${long}\n`), 'the file keeps the whole line').to.equal(true);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ['neither form', {}, 'send old_str and new_str'],
    ['both forms', { old_str: 'line 1', new_str: 'x', edits: [{ old_str: 'line 2', new_str: 'y' }] }, 'not both'],
    ['old_str without new_str', { old_str: 'line 1' }, 'send old_str and new_str'],
    ['an empty edits list', { edits: [] }, 'edits'],
    ['too many edits', { edits: Array.from({ length: 101 }, (_, i) => ({ old_str: `line ${i}`, new_str: 'x' })) }, 'edits'],
    ['an unknown field in an edit', { edits: [{ old_str: 'line 1', new_str: 'x', extra: 1 }] }, 'extra'],
  ];
  for (const [what, fields, says] of bad) {
    it(`refuses ${what} with 400, saying what to send`, async () => {
      const r = await s.api('/file/edit', { project_id: 'm', path: 'a.txt', ...fields });
      expect(r.status, JSON.stringify(r.body)).to.equal(400);
      expect(r.body.error.message).to.include(says);
      expect(await dirty()).to.equal(false);
    });
  }

  it('gives a model the snippets within the output budget, saying how to read what was cut', () => {
    const config = loadConfig({ overrides: { budgets: { outputChars: 60 } } });
    const snippets = [1, 20, 40].map((n) => ({ start_line: n, end_line: n + 2, text: `${String(n).padStart(6)}\t${'x'.repeat(40)}` }));
    const out = { path: 'a.txt', replacements: 3, lines: [1, 20, 40], snippets, snippets_cut: 0 };
    const [content] = fileEditTool.toModel!(out, fileEditTool.input.parse({ project_id: 'm', path: 'a.txt', old_str: 'a', new_str: 'b' }), config);
    const text = content?.type === 'text' ? content.text : '';
    expect(text).to.match(/^Edited a.txt: 3 replacements \(lines 1, 20, 40\)\.\n/);
    expect(text).to.include(snippets[0]!.text);
    expect(text).not.to.include(snippets[1]!.text);
    expect(text.trimEnd().split('\n').at(-1)).to.equal('[2 more changed regions not shown; read them with file_read {path: "a.txt", start_line: 20}]');
  });
});
