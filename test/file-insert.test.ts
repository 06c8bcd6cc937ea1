import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';

describe('file_insert', () => {
  let s: TestServer;
  let root: string;
  const content = async (name: string): Promise<string> => readFile(join(root, name), 'utf8');
  const insert = (path: string, insert_line: number, text: string) => s.api('/file/insert', { project_id: 'i', path, insert_line, text });

  before(async () => {
    s = await startServer();
    const put = await s.putProject('i', {
      'five.txt': 'one\ntwo\nthree\nfour\nfive\n',
      'nolf.txt': 'a\nb',
      'crlf.txt': 'alpha\r\nbeta\r\n',
      'empty.txt': '',
    });
    expect(put.status).to.equal(201);
    root = join(s.dataDir, 'projects', 'i');
  });
  after(async () => s?.close());

  it('inserts before the first line at 0, and answers the numbered lines around it', async () => {
    const r = await insert('five.txt', 0, 'zero');
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(await content('five.txt')).to.equal('zero\none\ntwo\nthree\nfour\nfive\n');
    expect(r.body).to.deep.equal({
      path: 'five.txt',
      first_line: 1,
      lines_inserted: 1,
      total_lines: 6,
      snippets: [{ start_line: 1, end_line: 4, text: '     1\tzero\n     2\tone\n     3\ttwo\n     4\tthree' }],
      snippets_cut: 0,
    });
  });

  it('inserts several lines after a middle line', async () => {
    const r = await insert('five.txt', 3, 'two-a\ntwo-b\n');
    expect(r.status).to.equal(200);
    expect(await content('five.txt')).to.equal('zero\none\ntwo\ntwo-a\ntwo-b\nthree\nfour\nfive\n');
    expect(r.body).to.include({ first_line: 4, lines_inserted: 2, total_lines: 8 });
    expect(r.body.snippets[0]).to.include({ start_line: 1, end_line: 8 });
  });

  it('appends after the last line, also to a file without a final line break', async () => {
    expect((await insert('five.txt', 8, 'six')).status).to.equal(200);
    expect(await content('five.txt')).to.match(/five\nsix\n$/);
    const r = await insert('nolf.txt', 2, 'c');
    expect(r.status).to.equal(200);
    // The file had no final line break and keeps none.
    expect(await content('nolf.txt')).to.equal('a\nb\nc');
    expect(r.body).to.include({ first_line: 3, lines_inserted: 1, total_lines: 3 });
  });

  it('inserts into an empty file at 0', async () => {
    const r = await insert('empty.txt', 0, 'first');
    expect(r.status).to.equal(200);
    expect(await content('empty.txt')).to.equal('first\n');
  });

  it('refuses a line past the end, naming the line count, and writes nothing', async () => {
    const before = await content('crlf.txt');
    const r = await insert('crlf.txt', 3, 'x');
    expect(r.status).to.equal(400);
    expect(r.body.error).to.include({ code: 'line_out_of_range', total_lines: 2 });
    expect(r.body.error.message).to.include('has 2 lines; pass 0 to 2');
    expect(await content('crlf.txt')).to.equal(before);
  });

  it('keeps CRLF: inserted lines get CRLF endings', async () => {
    const r = await insert('crlf.txt', 1, 'one\ntwo');
    expect(r.status).to.equal(200);
    expect(await content('crlf.txt')).to.equal('alpha\r\none\r\ntwo\r\nbeta\r\n');
    expect(r.body.snippets[0].text).to.equal('     1\talpha\n     2\tone\n     3\ttwo\n     4\tbeta');
  });

  it('refuses bad input with 400: a negative line, empty text, a missing file is 404', async () => {
    expect((await insert('five.txt', -1, 'x')).status).to.equal(400);
    expect((await insert('five.txt', 1, '')).status).to.equal(400);
    expect((await s.api('/file/insert', { project_id: 'i', path: 'five.txt', insert_line: '1', text: 'x' })).status).to.equal(400);
    const missing = await insert('ghost.txt', 0, 'x');
    expect(missing.status).to.equal(404);
    expect(missing.body.error.code).to.equal('file_not_found');
    const outside = await insert('../../etc/passwd', 0, 'x');
    expect(outside.status).to.equal(400);
    expect(outside.body.error.code).to.equal('path_outside_project');
  });
});
