import { execFileSync } from 'node:child_process';
import { readdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { searchTool } from '../handlers/search.js';
import { projectOwner } from '../lib/process/owner.js';
import { resolveSandbox } from '../lib/process/sandbox.js';
import { MAX_LINE_CHARS, type SearchResult } from '../lib/search/types.js';
import type { HandlerContext } from '../lib/tool.js';
import { failure, HandlerProject } from './helpers/handler-project.js';

// Every test runs with rg in the bubblewrap sandbox (when installed) and without one (rg gets the target as fd 3).
for (const sandbox of ['bwrap', 'none'] as const)
  describe(`handlers/search (sandbox ${sandbox})`, () => {
    let project: HandlerProject;
    let outer: string;
    let root: string;
    let config: Config;
    /** The configuration of this suite's sandbox, with `overrides`. */
    const configWith = (overrides: Record<string, unknown> = {}): Config =>
      loadConfig({ overrides: { dataDir: join(outer, 'data'), ...overrides, commands: { sandbox: sandbox === 'bwrap' ? 'auto' : 'none' } } });

    before(function () {
      if (sandbox === 'bwrap' && resolveSandbox('auto').mode !== 'bwrap') this.skip(); // bubblewrap is not installed
    });

    beforeEach(async () => {
      project = await HandlerProject.create('toolhost-search-');
      ({ outer, root } = project);
      config = configWith();
    });

    afterEach(async () => {
      // A handler returns only once rg has exited: none may be left running.
      const leaked = await rgDescendants();
      // rm -rf, not fs.rm: one test leaves a tree deeper than PATH_MAX.
      execFileSync('rm', ['-rf', outer]);
      expect(leaked, 'rg processes left running').to.deep.equal([]);
    });

    const files = (tree: Record<string, string>, base = root): Promise<void> => project.files(tree, base);
    const ctx = (overrides: Partial<HandlerContext> = {}): HandlerContext => ({ ...project.ctx(overrides), config: overrides.config ?? config });

    function run(req: Record<string, unknown>, c: HandlerContext = ctx()): Promise<SearchResult> {
      // Through the schema, as the HTTP front does, so defaults are the real ones.
      const parsed = searchTool.input.parse({ project_id: 'p', ...req });
      // Without a sandbox rg runs as the project's uid (when the tests run as root): the project must be its.
      const owner = sandbox === 'none' ? projectOwner(c.config, c.projectId) : null;
      if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, root]);
      return searchTool.job.handler(parsed, c);
    }

    const where = (r: SearchResult): string[] => r.matches.map((m) => `${m.path}:${m.line}`);

    it('treats the pattern as literal text by default, and as a regex with regex: true', async () => {
      await files({ 'a.txt': 'call f(x) here\ncall fxxx) here\n' });
      const literal = await run({ pattern: 'f(x)' });
      expect(where(literal)).to.deep.equal(['a.txt:1']);
      expect(literal.matches[0]).to.include({ column: 6, text: 'call f(x) here' });
      const regex = await run({ pattern: 'f.x+\\)', regex: true });
      expect(where(regex)).to.deep.equal(['a.txt:1', 'a.txt:2']);
      expect(regex.truncated).to.equal(false);
      expect(regex).not.to.have.property('timed_out');
    });

    it('matches case-insensitively with case_sensitive: false', async () => {
      await files({ 'a.txt': 'Hello\nhello\nHELLO\nhelo\n' });
      expect(where(await run({ pattern: 'hello' }))).to.deep.equal(['a.txt:2']);
      expect(where(await run({ pattern: 'hello', case_sensitive: false }))).to.deep.equal(['a.txt:1', 'a.txt:2', 'a.txt:3']);
    });

    it('returns paths relative to the project with forward slashes, in path order', async () => {
      await files({ 'b.txt': 'needle\n', 'a/deep/c.txt': 'needle\n', 'a/b.txt': 'needle\n' });
      expect(where(await run({ pattern: 'needle' }))).to.deep.equal(['a/b.txt:1', 'a/deep/c.txt:1', 'b.txt:1']);
      expect(where(await run({ pattern: 'needle', path: 'a/deep' }))).to.deep.equal(['a/deep/c.txt:1']);
      expect(where(await run({ pattern: 'needle', path: './a/../b.txt' }))).to.deep.equal(['b.txt:1']);
    });

    it('counts columns in characters, not bytes', async () => {
      await files({ 'u.txt': 'héllo wörld 🎉 needle\n' });
      const [m] = (await run({ pattern: 'needle' })).matches;
      expect(m).to.include({ line: 1, column: 15, text: 'héllo wörld 🎉 needle' });
    });

    it('cuts very long lines, keeping the match in view', async () => {
      await files({ 'min.js': `${'x'.repeat(3000)}needle${'y'.repeat(3000)}\n`, 'head.js': `needle${'z'.repeat(3000)}\n` });
      const r = await run({ pattern: 'needle' });
      const head = r.matches.find((m) => m.path === 'head.js')!;
      expect(head.column).to.equal(1);
      expect(head.text).to.equal(`needle${'z'.repeat(MAX_LINE_CHARS - 6)}…`);
      const min = r.matches.find((m) => m.path === 'min.js')!;
      expect(min.column).to.equal(3001);
      expect(min.text.startsWith('…')).to.equal(true);
      expect(min.text.endsWith('…')).to.equal(true);
      expect(min.text).to.include('needle');
      expect(Array.from(min.text)).to.have.length(MAX_LINE_CHARS + 2);
    });

    it('limits the search to files matching glob, without reaching into ignored folders', async () => {
      await files({
        '.gitignore': 'node_modules/\n*.log\n',
        'src/a.ts': 'needle\n',
        'src/b.md': 'needle\n',
        'src/node_modules/dep/index.ts': 'needle\n',
        'src/debug.log': 'needle\n',
        'test/c.ts': 'needle\n',
      });
      expect(where(await run({ pattern: 'needle', glob: '*.ts' }))).to.deep.equal(['src/a.ts:1', 'test/c.ts:1']);
      // rg's own globs override .gitignore ("src/**" would search src/node_modules and *.log): it must not show.
      expect(where(await run({ pattern: 'needle', glob: 'src/**' }))).to.deep.equal(['src/a.ts:1', 'src/b.md:1']);
      expect(where(await run({ pattern: 'needle', glob: '!*.md' }))).to.deep.equal(['src/a.ts:1', 'test/c.ts:1']);
      // Globs are matched against project-relative paths, whatever folder is searched.
      expect(where(await run({ pattern: 'needle', path: 'src', glob: 'src/*.ts' }))).to.deep.equal(['src/a.ts:1']);
      expect(where(await run({ pattern: 'needle', path: 'src', glob: '!src/b.md' }))).to.deep.equal(['src/a.ts:1']);
      expect(where(await run({ pattern: 'needle', path: 'src', glob: 'test/**' }))).to.deep.equal([]);
      expect(where(await run({ pattern: 'needle', path: 'src', glob: '**/*.md' }))).to.deep.equal(['src/b.md:1']);
    });

    it('gives each match its context lines, sharing lines between adjacent matches', async () => {
      const lines = ['l1', 'l2 hit', 'l3', 'l4 hit', 'l5 hit', 'l6', 'l7', 'l8', 'l9', 'l10 hit'];
      await files({ 'c.txt': `${lines.join('\n')}\n` });
      const r = await run({ pattern: 'hit', context_lines: 2 });
      expect(r.matches.map((m) => ({ line: m.line, before: m.before, after: m.after }))).to.deep.equal([
        { line: 2, before: ['l1'], after: ['l3', 'l4 hit'] },
        { line: 4, before: ['l2 hit', 'l3'], after: ['l5 hit', 'l6'] },
        { line: 5, before: ['l3', 'l4 hit'], after: ['l6', 'l7'] },
        { line: 10, before: ['l8', 'l9'], after: [] },
      ]);
      const none = await run({ pattern: 'hit' });
      expect(none.matches.every((m) => m.before.length === 0 && m.after.length === 0)).to.equal(true);
    });

    it('does not carry context across files', async () => {
      await files({ 'a.txt': 'x\nhit\n', 'b.txt': 'hit\ny\n' });
      const r = await run({ pattern: 'hit', context_lines: 3 });
      expect(r.matches.map((m) => [m.path, m.before, m.after])).to.deep.equal([
        ['a.txt', ['x'], []],
        ['b.txt', [], ['y']],
      ]);
    });

    it('stops listing at max_results with truncated: true but counts them all, and clamps max_results to search.maxResults', async () => {
      await files({ 'a.txt': 'hit\n'.repeat(50), 'b.txt': 'hit\n'.repeat(50) });
      const r = await run({ pattern: 'hit', max_results: 3 });
      expect(where(r)).to.deep.equal(['a.txt:1', 'a.txt:2', 'a.txt:3']);
      expect(r.truncated).to.equal(true);
      expect(r).to.include({ complete: false, total_matches: 100, total_files: 2, total_exact: true });
      expect(r.incomplete_reasons).to.deep.equal(['max_results']);
      expect(r.note).to.match(/the first 3 matching lines \(100 in all\)/);
      const all = await run({ pattern: 'hit', max_results: 1000 });
      expect(all.matches).to.have.length(100);
      expect(all.truncated).to.equal(false);
      expect(all.complete).to.equal(true);
      config = configWith({ search: { maxResults: 7 } });
      const clamped = await run({ pattern: 'hit', max_results: 1000 });
      expect(clamped.matches).to.have.length(7);
      expect(clamped.truncated).to.equal(true);
    });

    it('completes the after-context of the last match before stopping', async () => {
      await files({ 'a.txt': 'hit\nctx1\nctx2\nhit\n' });
      const r = await run({ pattern: 'hit', max_results: 1, context_lines: 2 });
      expect(r.matches).to.have.length(1);
      expect(r.matches[0]!.after).to.deep.equal(['ctx1', 'ctx2']);
      expect(r.truncated).to.equal(true);
    });

    for (const withGit of [false, true]) {
      it(`respects .gitignore files, root and nested (${withGit ? 'with' : 'without'} a .git folder)`, async () => {
        await files({
          '.gitignore': 'build/\n*.tmp\n',
          'src/.gitignore': 'generated.ts\n!keep.tmp\n',
          'src/a.ts': 'needle\n',
          'src/generated.ts': 'needle\n',
          'src/keep.tmp': 'needle\n',
          'src/x.tmp': 'needle\n',
          'build/out.js': 'needle\n',
          'lib/generated.ts': 'needle\n',
        });
        if (withGit) await files({ '.git/HEAD': 'ref: refs/heads/main\n' });
        const expected = ['lib/generated.ts:1', 'src/a.ts:1', 'src/keep.tmp:1'];
        expect(where(await run({ pattern: 'needle' }))).to.deep.equal(expected);
        // Searching a subfolder still applies the .gitignore files above it.
        expect(where(await run({ pattern: 'needle', path: 'src' }))).to.deep.equal(['src/a.ts:1', 'src/keep.tmp:1']);
      });
    }

    it('searches a named ignored folder whole, and a named ignored file', async () => {
      await files({
        '.gitignore': 'node_modules/\n*.log\n',
        'node_modules/dep/index.js': 'needle\n',
        'node_modules/dep/debug.log': 'needle\n',
        'node_modules/dep/.git/config': 'needle\n',
        'src/a.log': 'needle\n',
      });
      expect(where(await run({ pattern: 'needle' }))).to.deep.equal([]);
      expect(where(await run({ pattern: 'needle', path: 'node_modules/dep' }))).to.deep.equal(['node_modules/dep/debug.log:1', 'node_modules/dep/index.js:1']);
      expect(where(await run({ pattern: 'needle', path: 'src/a.log' }))).to.deep.equal(['src/a.log:1']);
    });

    it('ignores .gitignore files above the project root', async () => {
      await writeFile(join(outer, '.gitignore'), 'project/\n*.txt\nsrc/\n');
      await files({ 'src/a.txt': 'needle\n' });
      expect(where(await run({ pattern: 'needle' }))).to.deep.equal(['src/a.txt:1']);
      expect(where(await run({ pattern: 'needle', path: 'src' }))).to.deep.equal(['src/a.txt:1']);
    });

    it('searches hidden files but never .git', async () => {
      await files({
        '.env.example': 'needle\n',
        '.git/config': 'needle\n',
        '.git/refs/heads/main': 'needle\n',
        'vendor/sub/.git': 'gitdir: needle\n',
      });
      expect(where(await run({ pattern: 'needle' }))).to.deep.equal(['.env.example:1']);
      expect(where(await run({ pattern: 'needle', glob: '**' }))).to.deep.equal(['.env.example:1']);
      expect((await failure(run({ pattern: 'needle', path: '.git' }))).code).to.equal('bad_request');
      expect((await failure(run({ pattern: 'needle', path: '.git/config' }))).code).to.equal('bad_request');
    });

    it('returns no matches (not an error) when nothing matches', async () => {
      await files({ 'a.txt': 'nothing here\n' });
      expect(await run({ pattern: 'absent' })).to.deep.equal({
        matches: [],
        total_matches: 0,
        total_files: 0,
        total_exact: true,
        truncated: false,
        complete: true,
      });
    });

    it('rejects an invalid regex with invalid_regex, the reason and a hint', async () => {
      await files({ 'a.txt': 'a(b\n' });
      const err = await failure(run({ pattern: 'a(b', regex: true }));
      expect(err.code).to.equal('invalid_regex');
      expect(err.message).to.match(/unclosed group/);
      expect(err.message).to.match(/regex: false/);
      // The same text as a literal is fine.
      expect(where(await run({ pattern: 'a(b' }))).to.deep.equal(['a.txt:1']);
    });

    it('rejects an invalid glob with bad_request', async () => {
      await files({ 'a.txt': 'x\n' });
      const err = await failure(run({ pattern: 'x', glob: '[' }));
      expect(err.code).to.equal('bad_request');
      expect(err.message).to.include('glob');
    });

    it('rejects a pattern with a line break', async () => {
      expect((await failure(run({ pattern: 'a\nb' }))).code).to.equal('bad_request');
    });

    it('refuses paths outside the project and reports missing ones', async () => {
      await writeFile(join(outer, 'secret.txt'), 'needle\n');
      expect((await failure(run({ pattern: 'needle', path: '../' }))).code).to.equal('path_outside_project');
      expect((await failure(run({ pattern: 'needle', path: '../secret.txt' }))).code).to.equal('path_outside_project');
      expect((await failure(run({ pattern: 'needle', path: outer }))).code).to.equal('path_outside_project');
      expect((await failure(run({ pattern: 'needle', path: 'missing' }))).code).to.equal('file_not_found');
    });

    it('treats a pattern starting with "-" as a pattern, not a flag', async () => {
      await files({ 'a.txt': '--version\n' });
      expect(where(await run({ pattern: '--version' }))).to.deep.equal(['a.txt:1']);
    });

    /** A 50 GiB sparse file: rg reads it for many seconds (it is all NUL, so nothing matches) and holds no memory. */
    async function endless(name: string): Promise<void> {
      await writeFile(join(root, name), '');
      await truncate(join(root, name), 50 * 2 ** 30);
    }

    it('stops rg at search.timeoutS and returns timed_out: true, complete: false', async () => {
      await endless('huge.bin');
      config = configWith({ search: { timeoutS: 1 } });
      const r = await run({ pattern: 'needle', path: 'huge.bin' });
      expect(r).to.deep.include({ matches: [], truncated: false, timed_out: true, complete: false, incomplete_reasons: ['timed_out'] });
      expect(r.note).to.match(/search\.timeoutS/);
    });

    it('runs rg with an empty environment, under search.maxMemoryBytes, without core dumps, as the project uid', async () => {
      await endless('huge.bin');
      config = configWith({ search: { maxMemoryBytes: 300 * 2 ** 20 } });
      const controller = new AbortController();
      const pending = run({ pattern: 'needle', path: 'huge.bin' }, ctx({ signal: controller.signal }));
      try {
        let pids: number[] = [];
        for (let i = 0; i < 200 && pids.length === 0; i++) {
          await new Promise((r) => setTimeout(r, 25));
          pids = await rgDescendants();
        }
        expect(pids).to.have.length(1);
        const environ = (await readFile(`/proc/${pids[0]}/environ`, 'utf8')).split('\0').filter(Boolean);
        // bwrap sets PWD to the folder it enters, whatever the environment was.
        expect(environ, 'the environment of rg').to.deep.equal(sandbox === 'bwrap' ? [`PWD=${root}`] : []);
        const limits = await readFile(`/proc/${pids[0]}/limits`, 'utf8');
        expect(limits).to.match(new RegExp(`Max address space\\s+${300 * 2 ** 20}\\s+${300 * 2 ** 20}\\s`));
        expect(limits).to.match(/Max core file size\s+0\s/);
        // rg runs as the project's uid (when toolhost is root), as the project's commands do.
        const owner = projectOwner(config, 'p');
        const uid = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pids[0]}/status`, 'utf8'))![1];
        expect(Number(uid)).to.equal(owner?.uid ?? process.getuid!());
      } finally {
        controller.abort();
        await pending.catch(() => {});
      }
    });

    it('kills rg and rejects when the job is cancelled', async () => {
      await endless('huge.bin');
      const controller = new AbortController();
      const pending = run({ pattern: 'needle', path: 'huge.bin' }, ctx({ signal: controller.signal }));
      setTimeout(() => controller.abort(), 50);
      expect((await failure(pending)).message).to.match(/cancelled/);
      controller.abort();
      expect((await failure(run({ pattern: 'x' }, ctx({ signal: controller.signal })))).message).to.match(/cancelled/);
    });

    it('counts matching lines longer than search.maxLineBytes instead of returning them', async () => {
      config = configWith({ search: { maxLineBytes: 1000 } });
      const long = `${'x'.repeat(1500)} needle ${'y'.repeat(1500)}`;
      await files({
        'a.txt': `needle one\n${long}\n${'z'.repeat(2000)}\nneedle four\n`,
        'b.txt': `${long}\n`,
      });
      const r = await run({ pattern: 'needle', context_lines: 1 });
      expect(r.matches.map((m) => ({ at: `${m.path}:${m.line}`, before: m.before, after: m.after }))).to.deep.equal([
        { at: 'a.txt:1', before: [], after: ['[Omitted long matching line]'] },
        { at: 'a.txt:4', before: ['[Omitted long context line]'], after: [] },
      ]);
      expect(r).to.deep.include({
        truncated: false,
        complete: false,
        incomplete_reasons: ['long_lines'],
        skipped_long_lines: 2,
        long_lines: [
          { path: 'a.txt', line: 2 },
          { path: 'b.txt', line: 1 },
        ],
      });
      expect(r.note).to.match(/2 matching line\(s\) longer than 1000 bytes \(search\.maxLineBytes\)/);
      // A line at the limit is an ordinary match.
      config = configWith({ search: { maxLineBytes: long.length + 1 } });
      expect(await run({ pattern: 'needle', path: 'b.txt' })).to.deep.include({ complete: true, truncated: false });
    });

    it('says which files it could not read, and that the answer is incomplete', async () => {
      await files({ 'top.txt': 'needle\n' });
      // Deeper than PATH_MAX: rg cannot open the innermost folders by name (ENAMETOOLONG), even as root.
      execFileSync('bash', [
        '-c',
        'cd "$1" && n=$(printf "d%.0s" $(seq 250)) && for i in $(seq 18); do mkdir $n && cd $n; done && echo needle > f.txt',
        'x',
        root,
      ]);
      const r = await run({ pattern: 'needle' });
      expect(where(r)).to.deep.equal(['top.txt:1']);
      expect(r).to.deep.include({ complete: false, incomplete_reasons: ['unreadable_files'] });
      expect(r.errors).to.have.length(1);
      expect(r.errors![0]).to.match(/^d+…d+: Filename too long \(os error 36\)$/);
      expect(r.note).to.match(/could not read 1 file\(s\) or folder\(s\)/);
    });

    it('refuses a FIFO named as path, and passes over FIFOs in the tree', async () => {
      await files({ 'a.txt': 'needle\n', 'sub/b.txt': 'needle\n' });
      execFileSync('mkfifo', [join(root, 'stuck'), join(root, 'sub/pipe')]);
      await symlink('stuck', join(root, 'to-fifo'));
      for (const path of ['stuck', 'sub/pipe', 'to-fifo']) {
        const err = await failure(run({ pattern: 'needle', path }));
        expect(err.code).to.equal('not_a_regular_file');
        expect(err.message).to.match(/FIFO/);
      }
      expect(await run({ pattern: 'needle' })).to.deep.include({ complete: true });
      expect(where(await run({ pattern: 'needle' }))).to.deep.equal(['a.txt:1', 'sub/b.txt:1']);
    });

    it('stops at search.timeoutS (and says so) when a .gitignore is a FIFO, which rg opens and blocks on', async () => {
      await files({ 'a.txt': 'needle\n', 'sub/b.txt': 'needle\n' });
      execFileSync('mkfifo', [join(root, 'sub/.gitignore')]);
      config = configWith({ search: { timeoutS: 1 } });
      const r = await run({ pattern: 'needle' });
      expect(r).to.deep.include({ timed_out: true, complete: false, incomplete_reasons: ['timed_out'] });
    });

    it('follows a symlink named as path only inside the project, and reports real paths', async () => {
      await files({ 'src/a.txt': 'needle\n' });
      await writeFile(join(outer, 'secret.txt'), 'needle\n');
      await symlink('src', join(root, 'lnk'));
      await symlink(outer, join(root, 'out'));
      await symlink(join(outer, 'secret.txt'), join(root, 'secret-link'));
      expect(where(await run({ pattern: 'needle', path: 'lnk' }))).to.deep.equal(['src/a.txt:1']);
      for (const path of ['out', 'out/secret.txt', 'secret-link']) {
        expect((await failure(run({ pattern: 'needle', path }))).code).to.equal('path_outside_project');
      }
      // Symlinks met while walking are not followed.
      expect(where(await run({ pattern: 'needle' }))).to.deep.equal(['src/a.txt:1']);
    });
  });

/** Pids of rg processes started by this process, however deep (bash, then bwrap, then rg). */
async function rgDescendants(): Promise<number[]> {
  const parents = new Map<number, number>();
  const rgs: number[] = [];
  for (const name of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'latin1');
      const close = stat.lastIndexOf(')');
      const [state, ppid] = stat.slice(close + 2).split(' ');
      if (state === 'Z') continue;
      parents.set(Number(name), Number(ppid));
      if (stat.slice(stat.indexOf('(') + 1, close) === 'rg') rgs.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return rgs.filter((pid) => {
    for (let p = parents.get(pid); p !== undefined && p > 1; p = parents.get(p)) if (p === process.pid) return true;
    return false;
  });
}
