/**
 * file_read sized for a model: the default window of budgets.readLines lines, the way on (next_start_line and the
 * closing line's exact call), lines cut at budgets.lineChars, and the model's text within budgets.readChars.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { fileReadTool } from '../handlers/file-read.js';
import { modelContent } from '../lib/tool.js';
import { failure, HandlerProject } from './helpers/handler-project.js';

type Text = {
  content: string;
  total_lines: number;
  start_line: number;
  end_line: number;
  truncated: boolean;
  next_start_line: number | null;
  cut_lines?: number[];
};

describe('file_read budgets', () => {
  let project: HandlerProject;
  before(async () => {
    project = await HandlerProject.create('toolhost-read-budget-');
  });
  after(() => project.remove());

  async function read(req: Record<string, unknown>, config: Config = project.config): Promise<{ out: Text; text: string }> {
    const input = fileReadTool.input.parse({ project_id: 'p', ...req });
    const out = await fileReadTool.job.handler(input, { ...project.ctx(), config });
    expect(fileReadTool.output.safeParse(out).success, 'answers as its output schema says').to.equal(true);
    const model = modelContent(fileReadTool, out, input, config);
    expect(model).to.have.length(1);
    const first = model[0];
    if (first?.type !== 'text') throw new Error('expected text');
    return { out: out as Text, text: first.text };
  }

  it('reads a 50,000-line file in windows of budgets.readLines lines, each saying how to go on, to its end', async () => {
    const n = 50_000;
    await writeFile(join(project.root, 'big.txt'), `${Array.from({ length: n }, (_, i) => `line ${i + 1}`).join('\n')}\n`);
    const { readLines, readChars } = project.config.budgets;
    let start: number | null = 1;
    let reads = 0;
    let seen = 0;
    while (start !== null) {
      const { out, text } = await read(start === 1 ? { path: 'big.txt' } : { path: 'big.txt', start_line: start });
      reads++;
      expect(out.start_line).to.equal(start);
      expect(out.total_lines).to.equal(n);
      expect(out.end_line - out.start_line + 1).to.equal(Math.min(readLines, n - start + 1));
      expect(out.content.split('\n')[0]).to.equal(`line ${start}`);
      expect(text.length).to.be.at.most(readChars);
      const lines = text.split('\n');
      expect(lines[0]).to.equal(`${String(start).padStart(6)}\tline ${start}`);
      expect(lines.at(-2)).to.equal(`${String(out.end_line).padStart(6)}\tline ${out.end_line}`);
      if (out.next_start_line === null) {
        expect(out.end_line).to.equal(n);
        expect(out.truncated).to.equal(false);
        expect(lines.at(-1)).to.equal(`[lines ${start}-${n} of ${n}; end of file]`);
      } else {
        expect(out.next_start_line).to.equal(out.end_line + 1);
        expect(out.truncated).to.equal(true);
        // The closing line's call is the one this loop makes next.
        expect(lines.at(-1)).to.include(`file_read {"path":"big.txt","start_line":${out.next_start_line}}`);
        expect(lines.at(-1)).to.include(`of ${n}`);
      }
      seen += out.end_line - out.start_line + 1;
      start = out.next_start_line;
    }
    expect(seen).to.equal(n);
    expect(reads).to.equal(Math.ceil(n / readLines));
  });

  it('returns the start of a 5 MB single-line file within budget, cut and saying how to see the rest', async () => {
    await writeFile(join(project.root, 'app.min.js'), 'var a=1;'.repeat(5 * 1024 * 128));
    const { out, text } = await read({ path: 'app.min.js' });
    const { lineChars, readChars } = project.config.budgets;
    expect(out.content).to.equal('var a=1;'.repeat(lineChars / 8));
    expect(out).to.include({ total_lines: 1, end_line: 1, next_start_line: null });
    expect(out.cut_lines).to.deep.equal([1]);
    expect(text.length).to.be.at.most(readChars);
    expect(text.split('\n')[0]).to.match(/ …\[cut\]$/);
    expect(text).to.include(`cut -c ${lineChars + 1}-`);
  });

  it('cuts at budgets.readChars on a line end, counting the numbers the model sees', async () => {
    const config = loadConfig({ overrides: { budgets: { readChars: 2000 } } });
    await writeFile(join(project.root, 'short.txt'), 'x\n'.repeat(1000));
    const { out, text } = await read({ path: 'short.txt' }, config);
    expect(text.length).to.be.at.most(2000);
    expect(out.truncated).to.equal(true);
    expect(out.content).to.equal('x\n'.repeat(out.end_line));
    expect(out.next_start_line).to.equal(out.end_line + 1);
    expect(text).to.include(`file_read {"path":"short.txt","start_line":${out.end_line + 1}}`);
  });

  it('cuts every long line of a window and keeps within budget however many there are', async () => {
    const { lineChars, readChars } = project.config.budgets;
    await writeFile(join(project.root, 'wide.txt'), `${'é'.repeat(lineChars + 10)}\n`.repeat(200));
    const { out, text } = await read({ path: 'wide.txt' });
    expect(text.length).to.be.at.most(readChars);
    expect(out.truncated).to.equal(true);
    expect(out.cut_lines).to.deep.equal(Array.from({ length: out.end_line }, (_, i) => i + 1));
    expect(out.content.split('\n')[0]).to.equal('é'.repeat(lineChars));
    expect(text.match(/…\[cut\]/g)?.length).to.equal(out.end_line + 1); // each line, and the closing line naming the mark
  });

  it('numbers content with line_numbers: true; keeps a range and a last line without LF', async () => {
    await writeFile(join(project.root, 'nolf.txt'), 'a\r\nb\nc');
    const { out } = await read({ path: 'nolf.txt', start_line: 2, line_numbers: true });
    expect(out.content).to.equal('     2\tb\n     3\tc\n');
    const raw = await read({ path: 'nolf.txt', end_line: 1 });
    expect(raw.out).to.include({ content: 'a\r\n', end_line: 1, truncated: false, next_start_line: 2 });
    expect(raw.text).to.equal('     1\ta\n[lines 1-1 of 3; 2 more: file_read {"path":"nolf.txt","start_line":2}]');
  });

  it('refuses a start past the end, saying how long the file is', async () => {
    await writeFile(join(project.root, 'two.txt'), 'a\nb\n');
    const err = await failure(read({ path: 'two.txt', start_line: 3 }));
    expect(err.code).to.equal('line_out_of_range');
    expect(err.message).to.include('has 2 lines');
  });
});
