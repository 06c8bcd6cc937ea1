/**
 * file_glob: files by glob, .gitignore respected and .git never listed, newest first, the total counted past
 * max_results, the model text within budgets.listChars; hostile patterns and paths refused.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { fileGlobTool } from '../handlers/file-glob.js';
import { projectOwner } from '../lib/process/owner.js';
import { modelContent } from '../lib/tool.js';
import { failure, HandlerProject } from './helpers/handler-project.js';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';

type Glob = { paths: string[]; total: number; truncated: boolean; timed_out?: boolean };

describe('file_glob', () => {
  let project: HandlerProject;
  before(async () => {
    project = await HandlerProject.create('toolhost-glob-');
    await project.files({
      '.gitignore': 'build/\n*.log\n',
      'src/a.ts': '',
      'src/b.ts': '',
      'src/deep/c.ts': '',
      'src/deep/d.test.ts': '',
      'src/notes.md': '',
      'build/out.ts': '',
      'debug.log': '',
      '.hidden/e.ts': '',
      '.git/HEAD.ts': '',
      'many/': '',
    });
    // Newest first: set every mtime explicitly, c newest, a oldest.
    const times: Record<string, number> = { 'src/a.ts': 1000, 'src/b.ts': 3000, 'src/deep/c.ts': 5000, 'src/deep/d.test.ts': 2000, '.hidden/e.ts': 4000 };
    for (const [rel, t] of Object.entries(times)) await utimes(join(project.root, rel), t, t);
    for (let i = 0; i < 300; i++) await writeFile(join(project.root, 'many', `f${String(i).padStart(3, '0')}.txt`), '');
    const owner = projectOwner(project.config, 'p');
    if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, project.root]);
  });
  after(() => project.remove());

  async function glob(req: Record<string, unknown>, config = project.config): Promise<{ out: Glob; text: string }> {
    const input = fileGlobTool.input.parse({ project_id: 'p', ...req });
    const out = await fileGlobTool.job.handler(input, { ...project.ctx(), config });
    expect(fileGlobTool.output.safeParse(out).success, 'answers as its output schema says').to.equal(true);
    const first = modelContent(fileGlobTool, out, input, config)[0];
    if (first?.type !== 'text') throw new Error('expected text');
    return { out, text: first.text };
  }

  it('lists matching files newest first, skipping what .gitignore excludes and .git', async () => {
    const { out, text } = await glob({ pattern: '*.ts' });
    expect(out).to.deep.equal({ paths: ['src/deep/c.ts', '.hidden/e.ts', 'src/b.ts', 'src/deep/d.test.ts', 'src/a.ts'], total: 5, truncated: false });
    expect(text).to.equal(out.paths.join('\n'));
  });

  it('keeps non-ASCII names whole however rg splits its output into reads', async () => {
    // 1,500 names of 200 bytes: rg's output spans many reads, and some read ends inside a two-byte "ü".
    const names = Array.from({ length: 1500 }, (_, i) => `${'ü'.repeat(95)}${String(i).padStart(4, '0')}.uml`);
    await mkdir(join(project.root, 'umlauts'));
    for (const n of names) await writeFile(join(project.root, 'umlauts', n), '');
    const owner = projectOwner(project.config, 'p');
    if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, join(project.root, 'umlauts')]);
    const { out } = await glob({ pattern: '*.uml', max_results: 2000 });
    expect(out.total).to.equal(1500);
    expect(out.paths.filter((p) => p.includes('\uFFFD'))).to.deep.equal([]);
    expect(new Set(out.paths)).to.deep.equal(new Set(names.map((n) => `umlauts/${n}`)));
  });

  it('anchors a pattern with a slash at the project root, and narrows to path', async () => {
    expect((await glob({ pattern: 'src/deep/*.ts' })).out.paths).to.deep.equal(['src/deep/c.ts', 'src/deep/d.test.ts']);
    expect((await glob({ pattern: '**/*.test.ts' })).out.paths).to.deep.equal(['src/deep/d.test.ts']);
    expect((await glob({ pattern: '*.ts', path: 'src/deep' })).out.paths).to.deep.equal(['src/deep/c.ts', 'src/deep/d.test.ts']);
    // A folder .gitignore excludes, named as path, is listed.
    expect((await glob({ pattern: '*', path: 'build' })).out.paths).to.deep.equal(['build/out.ts']);
  });

  it('returns budgets.globResults paths by default, counts them all, and says how to see the rest', async () => {
    const { out, text } = await glob({ pattern: 'many/*.txt' });
    expect(out.paths).to.have.length(project.config.budgets.globResults);
    expect(out).to.include({ total: 300, truncated: true });
    const lines = text.split('\n');
    expect(lines.slice(0, -1)).to.deep.equal(out.paths);
    expect(lines.at(-1)).to.equal(`[200 more; narrow the pattern or pass max_results (up to ${project.config.search.maxResults})]`);
    const small = await glob({ pattern: 'many/*.txt', max_results: 300 }, { ...project.config, budgets: { ...project.config.budgets, listChars: 500 } });
    expect(small.text.length).to.be.at.most(500);
    const shown = small.text.split('\n').length - 1;
    expect(small.text.split('\n').at(-1)).to.equal(`[${300 - shown} more; narrow the pattern or pass max_results (up to ${project.config.search.maxResults})]`);
  });

  it('says so when nothing matches', async () => {
    const { out, text } = await glob({ pattern: '*.rs' });
    expect(out).to.deep.equal({ paths: [], total: 0, truncated: false });
    expect(text).to.equal('[no files match "*.rs"]');
  });

  it('refuses patterns and paths that leave the project, a bad glob, and a file as path', async () => {
    for (const pattern of ['/etc/*', '../*', 'src/../../*', '!/etc/passwd']) {
      const err = await failure(glob({ pattern }));
      expect(err.code, pattern).to.equal('path_outside_project');
    }
    for (const path of ['..', '/etc', '../../tmp']) expect((await failure(glob({ pattern: '*', path }))).code, path).to.equal('path_outside_project');
    const bad = await failure(glob({ pattern: 'src/{a' }));
    expect(bad.code).to.equal('bad_request');
    expect(bad.message).to.include('not a valid glob');
    expect((await failure(glob({ pattern: '*', path: 'src/a.ts' }))).code).to.equal('not_a_directory');
    expect((await failure(glob({ pattern: '*', path: '.git' }))).code).to.equal('bad_request');
  });

  describe('over HTTP', () => {
    let s: TestServer;
    let outside: string;
    before(async () => {
      s = await startServer();
      outside = await tempDir('toolhost-glob-outside-');
      await writeFile(join(outside, 'secret.ts'), 'x');
      expect((await s.putProject('g', { 'src/a.ts': 'a\n', 'README.md': '# r\n' })).status).to.equal(201);
      const root = join(s.dataDir, 'projects', 'g');
      await symlink(outside, join(root, 'escape'));
      await mkdir(join(root, 'inner'));
      await symlink(join(outside, 'secret.ts'), join(root, 'inner', 'link.ts'));
    });
    after(async () => {
      await s?.close();
      execFileSync('rm', ['-rf', outside]);
    });

    it('answers POST /file/glob, never listing what a symlink points at outside', async () => {
      const r = await s.api('/file/glob', { project_id: 'g', pattern: '*.ts' });
      expect(r.status).to.equal(200);
      expect(r.body).to.deep.equal({ paths: ['src/a.ts'], total: 1, truncated: false });
      const out = await s.api('/file/glob', { project_id: 'g', pattern: '*', path: 'escape' });
      expect(out.status).to.equal(400);
      expect(out.body.error.code).to.equal('path_outside_project');
      const bad = await s.api('/file/glob', { project_id: 'g', pattern: '[' });
      expect(bad.status).to.equal(400);
      expect(bad.body.error.code).to.equal('bad_request');
    });
  });
});
