/**
 * search sized for a model: budgets.searchResults matches by default with the total counted past them, output
 * "files", and the model's text (grep-style lines) within budgets.listChars with one closing line.
 */
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { searchTool } from '../handlers/search.js';
import { projectOwner } from '../lib/process/owner.js';
import type { SearchResult } from '../lib/search/types.js';
import { modelContent } from '../lib/tool.js';
import { HandlerProject } from './helpers/handler-project.js';

describe('search budgets', () => {
  let project: HandlerProject;
  before(async () => {
    project = await HandlerProject.create('toolhost-search-budget-');
    const files: Record<string, string> = {};
    // 10,000 matching lines in 20 files, each long enough that 50 of them do not fit a small budget.
    for (let f = 0; f < 20; f++) {
      files[`src/f${String(f).padStart(2, '0')}.txt`] = Array.from({ length: 500 }, (_, i) => `needle ${f}:${i} ${'.'.repeat(40)}`).join('\n');
    }
    files['ctx.txt'] = 'a\nhit 1\nb\nhit 2\nhit 3\nc\nd\ne\nhit 4\nf\n';
    await project.files(files);
    const owner = projectOwner(project.config, 'p');
    if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, project.root]);
  });
  after(() => project.remove());

  async function search(req: Record<string, unknown>, config = project.config): Promise<{ out: SearchResult; text: string }> {
    const input = searchTool.input.parse({ project_id: 'p', ...req });
    const out = await searchTool.job.handler(input, { ...project.ctx(), config });
    expect(searchTool.output.safeParse(out).success, 'answers as its output schema says').to.equal(true);
    const model = modelContent(searchTool, out, input, config);
    expect(model).to.have.length(1);
    const first = model[0];
    if (first?.type !== 'text') throw new Error('expected text');
    return { out, text: first.text };
  }

  it('returns budgets.searchResults of 10,000 matches, counts them all, and the model text keeps within budget', async () => {
    const { out, text } = await search({ pattern: 'needle', path: 'src' });
    expect(out.matches).to.have.length(project.config.budgets.searchResults);
    expect(out).to.include({ total_matches: 10_000, total_files: 20, total_exact: true, truncated: true, complete: false });
    expect(text.length).to.be.at.most(project.config.budgets.listChars);
    const lines = text.split('\n');
    expect(lines).to.have.length(51);
    // Whole lines, as the files hold them.
    for (const [i, line] of lines.slice(0, 50).entries()) expect(line).to.equal(`src/f00.txt:${i + 1}: needle 0:${i} ${'.'.repeat(40)}`);
    expect(lines[50]).to.equal(
      '[10000 matching lines in 20 files; 50 shown: to see the rest, narrow it with path or glob, or pass max_results ' +
        `(up to ${project.config.search.maxResults}), or pass output: "files" to list the files]`,
    );
  });

  it('cuts the model text between matches at budgets.listChars, saying how many it shows', async () => {
    const config = { ...project.config, budgets: { ...project.config.budgets, listChars: 1000 } };
    const { out, text } = await search({ pattern: 'needle', path: 'src' }, config);
    expect(out.matches).to.have.length(50);
    expect(text.length).to.be.at.most(1000);
    const lines = text.split('\n');
    const shown = lines.length - 1;
    expect(shown).to.be.within(1, 49);
    for (const line of lines.slice(0, -1)) expect(line).to.match(/^src\/f00\.txt:\d+: needle 0:\d+ \.{40}$/);
    expect(lines.at(-1)).to.include(`10000 matching lines in 20 files; ${shown} shown`);
  });

  it('lists only the files with output "files", with their counts, in path order', async () => {
    const { out, text } = await search({ pattern: 'needle', output: 'files', max_results: 5 });
    expect(out.matches).to.deep.equal([]);
    expect(out.files).to.deep.equal(Array.from({ length: 5 }, (_, f) => ({ path: `src/f0${f}.txt`, matches: 500 })));
    expect(out).to.include({ total_matches: 10_000, total_files: 20, truncated: true });
    expect(text.split('\n')).to.deep.equal([
      ...Array.from({ length: 5 }, (_, f) => `src/f0${f}.txt:500`),
      `[20 files, 10000 matching lines; 5 files listed: to see the rest, narrow it with path or glob, or pass max_results (up to ${project.config.search.maxResults})]`,
    ]);
  });

  it('shows context grep-style, each line once, groups apart by --', async () => {
    const { out, text } = await search({ pattern: 'hit', path: 'ctx.txt', context_lines: 1 });
    expect(out.total_matches).to.equal(4);
    expect(text).to.equal(
      [
        'ctx.txt-1- a',
        'ctx.txt:2: hit 1',
        'ctx.txt-3- b',
        'ctx.txt:4: hit 2',
        'ctx.txt:5: hit 3',
        'ctx.txt-6- c',
        '--',
        'ctx.txt-8- e',
        'ctx.txt:9: hit 4',
        'ctx.txt-10- f',
        '[4 matching lines in 1 files]',
      ].join('\n'),
    );
  });

  it('says so when nothing matches', async () => {
    const { out, text } = await search({ pattern: 'absent-everywhere' });
    expect(out).to.include({ total_matches: 0, truncated: false, complete: true });
    expect(text).to.equal('[no matches]');
  });
});
