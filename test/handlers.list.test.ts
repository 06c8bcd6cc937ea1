import { symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import type { z } from 'zod';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { fileListTool } from '../handlers/file-list.js';
import { modelContent } from '../lib/tool.js';
import { failure, HandlerProject } from './helpers/handler-project.js';

describe('handlers/file-list', () => {
  let project: HandlerProject;
  let outer: string;
  let root: string;
  let config: Config;

  beforeEach(async () => {
    project = await HandlerProject.create('toolhost-list-');
    ({ outer, root, config } = project);
  });

  afterEach(() => project.remove());

  const files = (tree: Record<string, string>): Promise<void> => project.files(tree);

  type ListResult = z.infer<typeof fileListTool.output>;

  function run(req: Record<string, unknown> = {}, signal = new AbortController().signal): Promise<ListResult> {
    // Through the schema, as the HTTP front does, so defaults are the real ones.
    const parsed = fileListTool.input.parse({ project_id: 'p', ...req });
    return fileListTool.job.handler(parsed, { ...project.ctx({ signal }), config });
  }

  const paths = (r: ListResult): string[] => r.entries.map((e) => e.path);

  it('lists down to depth levels, in tree order, with types and sizes', async () => {
    await files({ 'b.txt': 'hello', 'a/x.txt': '1234567', 'a/deep/z.txt': 'z', 'a.md': '', 'A.txt': 'A', 'empty/': '' });
    const one = await run({ depth: 1 });
    expect(one.path).to.equal('.');
    expect(one.entries).to.deep.equal([
      { path: 'A.txt', type: 'file', size: 1 },
      { path: 'a', type: 'dir', size: 0 },
      { path: 'a.md', type: 'file', size: 0 },
      { path: 'b.txt', type: 'file', size: 5 },
      { path: 'empty', type: 'dir', size: 0 },
    ]);
    expect(one.truncated).to.equal(false);
    expect(paths(await run())).to.deep.equal(['A.txt', 'a', 'a/deep', 'a/x.txt', 'a.md', 'b.txt', 'empty']);
    expect(paths(await run({ depth: 3 }))).to.deep.equal(['A.txt', 'a', 'a/deep', 'a/deep/z.txt', 'a/x.txt', 'a.md', 'b.txt', 'empty']);
  });

  it('lists a subfolder with project-relative paths', async () => {
    await files({ 'src/lib/a.ts': 'a', 'src/b.ts': 'bb', 'other.txt': '' });
    const r = await run({ path: 'src/', depth: 5 });
    expect(r.path).to.equal('src');
    expect(r.entries).to.deep.equal([
      { path: 'src/b.ts', type: 'file', size: 2 },
      { path: 'src/lib', type: 'dir', size: 0 },
      { path: 'src/lib/a.ts', type: 'file', size: 1 },
    ]);
  });

  it('clamps depth to list.maxDepth', async () => {
    await files({ 'a/b/c/d.txt': '' });
    config = loadConfig({ overrides: { list: { maxDepth: 2 } } });
    expect(paths(await run({ depth: 10 }))).to.deep.equal(['a', 'a/b']);
  });

  it('skips .git and what .gitignore files exclude, each relative to its own folder (no .git needed)', async () => {
    await files({
      '.gitignore': 'node_modules/\n*.log\n/dist\n',
      'app.log': '',
      'dist/bundle.js': '',
      'node_modules/dep/index.js': '',
      'src/.gitignore': 'generated/\n!important.log\n/local.ts\n',
      'src/important.log': '',
      'src/debug.log': '',
      'src/generated/types.ts': '',
      'src/local.ts': '',
      'src/main.ts': '',
      'src/sub/local.ts': '',
      'src/sub/dist/keep.js': '',
      'lib/generated/x.ts': '',
    });
    expect(paths(await run({ depth: 5 }))).to.deep.equal([
      '.gitignore',
      'lib',
      'lib/generated',
      'lib/generated/x.ts',
      'src',
      'src/.gitignore',
      'src/important.log',
      'src/main.ts',
      'src/sub',
      'src/sub/dist',
      'src/sub/dist/keep.js',
      'src/sub/local.ts',
    ]);
    // The rules of the folders above still apply when listing a subfolder.
    expect(paths(await run({ path: 'src', depth: 1 }))).to.deep.equal(['src/.gitignore', 'src/important.log', 'src/main.ts', 'src/sub']);
  });

  it('lists a named ignored folder whole, but for .git', async () => {
    await files({
      '.gitignore': 'node_modules/\n*.log\n',
      'node_modules/dep/index.js': '',
      'node_modules/dep/debug.log': '',
      'node_modules/dep/.git/HEAD': '',
    });
    expect(paths(await run())).to.deep.equal(['.gitignore']);
    expect(paths(await run({ path: 'node_modules/dep' }))).to.deep.equal(['node_modules/dep/debug.log', 'node_modules/dep/index.js']);
  });

  it('never lists .git, with or without .gitignore', async () => {
    await files({ '.git/HEAD': 'ref\n', '.git/objects/ab': '', 'vendor/mod/.git': 'gitdir: x\n', '.github/ci.yml': '' });
    expect(paths(await run({ depth: 3 }))).to.deep.equal(['.github', '.github/ci.yml', 'vendor', 'vendor/mod']);
  });

  it('lists everything with include_ignored: true', async () => {
    await files({ '.gitignore': '*.log\nbuild/\n', 'a.log': '', 'build/out.js': '', '.git/HEAD': '', 'src.ts': '' });
    expect(paths(await run({ include_ignored: true }))).to.deep.equal(['.git', '.git/HEAD', '.gitignore', 'a.log', 'build', 'build/out.js', 'src.ts']);
  });

  it('does not apply .gitignore files above the project root', async () => {
    await writeFile(join(outer, '.gitignore'), 'project/\n*.txt\n');
    await files({ 'a.txt': '' });
    expect(paths(await run())).to.deep.equal(['a.txt']);
  });

  it('lists symlinks as symlinks and does not follow them', async () => {
    await files({ 'real/inside.txt': 'x', 'file.txt': 'abc' });
    await symlink('real', join(root, 'link-dir'));
    await symlink('file.txt', join(root, 'link-file'));
    await symlink(outer, join(root, 'escape'));
    await symlink('missing', join(root, 'dangling'));
    expect((await run({ depth: 3 })).entries).to.deep.equal([
      { path: 'dangling', type: 'symlink', size: 0 },
      { path: 'escape', type: 'symlink', size: 0 },
      { path: 'file.txt', type: 'file', size: 3 },
      { path: 'link-dir', type: 'symlink', size: 0 },
      { path: 'link-file', type: 'symlink', size: 0 },
      { path: 'real', type: 'dir', size: 0 },
      { path: 'real/inside.txt', type: 'file', size: 1 },
    ]);
    expect((await failure(run({ path: 'escape' }))).code).to.equal('path_outside_project');
  });

  it('refuses a file with not_a_directory, a missing path with file_not_found, and paths outside the project', async () => {
    await files({ 'a.txt': 'x' });
    expect((await failure(run({ path: 'a.txt' }))).code).to.equal('not_a_directory');
    expect((await failure(run({ path: 'nope' }))).code).to.equal('file_not_found');
    expect((await failure(run({ path: '../' }))).code).to.equal('path_outside_project');
    expect((await failure(run({ path: '..' }))).code).to.equal('path_outside_project');
    expect((await failure(run({ path: outer }))).code).to.equal('path_outside_project');
  });

  it('stops at list.maxEntries with truncated: true, keeping the shallow levels whole', async () => {
    config = loadConfig({ overrides: { list: { maxEntries: 5 } } });
    await files({ 'a/1': '', 'a/2': '', 'a/3': '', 'b/1': '', c: '', d: '' });
    const r = await run({ depth: 2 });
    expect(r.truncated).to.equal(true);
    expect(paths(r)).to.deep.equal(['a', 'a/1', 'b', 'c', 'd']);
    const exact = await run({ depth: 1 });
    expect(exact.truncated).to.equal(false);
    expect(paths(exact)).to.deep.equal(['a', 'b', 'c', 'd']);
  });

  it('shows a model a compact tree within budgets.listChars, with one line on what was left out', async () => {
    await files({ 'src/app.ts': 'x'.repeat(5000), 'src/lib/util.ts': 'u', 'README.md': '# r\n', 'empty/': '' });
    await symlink('src/app.ts', join(root, 'link'));
    const text = async (req: Record<string, unknown>, c: Config): Promise<string> => {
      const input = fileListTool.input.parse({ project_id: 'p', ...req });
      const out = await fileListTool.job.handler(input, { ...project.ctx(), config: c });
      const first = modelContent(fileListTool, out, input, c)[0];
      return first?.type === 'text' ? first.text : '';
    };
    expect(await text({ depth: 3 }, config)).to.equal(
      ['./', '  README.md 4', '  empty/', '  link@', '  src/', '    app.ts 4.9K', '    lib/', '      util.ts 1'].join('\n'),
    );
    expect(await text({ path: 'empty' }, config)).to.equal('empty/\n(empty)');
    // A tight budget: whole lines, then the one closing line naming a subfolder to list.
    const tight = await text({ depth: 3 }, loadConfig({ overrides: { budgets: { listChars: 150 } } }));
    expect(tight.length).to.be.at.most(150);
    const lines = tight.split('\n');
    expect(lines.length).to.be.greaterThan(2);
    expect(lines.at(-1)).to.match(/^\[\d+ entries not shown; list a subfolder, e\.g\. file_list \{"path":"[^"]+"\}, or pass a smaller depth\]$/);
    // Cut by list.maxEntries: the count says there are more.
    const capped = await text({ depth: 3 }, loadConfig({ overrides: { list: { maxEntries: 2 } } }));
    expect(capped.split('\n').at(-1)).to.match(/^\[0\+ entries not shown; list a subfolder/);
  });

  it('rejects when the job is already cancelled', async () => {
    const controller = new AbortController();
    controller.abort();
    expect((await failure(run({}, controller.signal))).message).to.match(/cancelled/);
  });
});
