/**
 * The order of a search's answer: rg searches on several threads and files come back in any order, yet every answer
 * lists what `rg --sort=path` lists first (the same cut at max_results on every run), with the same totals, and so
 * do the long lines and the unreadable files it names. Checked against rg --sort=path run on the same tree.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rgPath } from '@vscode/ripgrep';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { searchTool } from '../handlers/search.js';
import { projectOwner } from '../lib/process/owner.js';
import { resolveSandbox } from '../lib/process/sandbox.js';
import { comparePaths, PathOrderedTop } from '../lib/search/path-order.js';
import { COUNT_CAP, type SearchResult } from '../lib/search/types.js';
import { HandlerProject } from './helpers/handler-project.js';

/** mulberry32: a seeded PRNG, so every run plants the same tree. */
class Prng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  }
}

describe('search: path order (path-order.ts)', () => {
  const b = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s));

  it('orders paths name by name, by their bytes, as rg --sort=path walks', () => {
    const sorted = ['.h/x', 'B/x', 'a/b/x', 'a/b.x', 'a/x', 'a b', 'a-c/x', 'a.c', 'a\\x', 'z', 'é/x', 'Ａ', '😀'];
    const shuffled = [...sorted].reverse();
    shuffled.push(shuffled.shift()!);
    expect(
      shuffled
        .map(b)
        .sort(comparePaths)
        .map((k) => k.toString('utf8')),
    ).to.deep.equal(sorted);
    // Not UTF-8: the bytes decide, though both names decode to the same text.
    expect(comparePaths(b([0x61, 0xfe]), b([0x61, 0xff]))).to.be.below(0);
    expect(comparePaths(b('a'), b('a'))).to.equal(0);
    expect(comparePaths(b('a/b'), b('a'))).to.be.above(0);
  });

  it('keeps the first items in path order of files added in any order, holding fewer than twice the limit', () => {
    const prng = new Prng(11);
    for (let round = 0; round < 200; round++) {
      const limit = prng.int(30);
      const files = Array.from({ length: prng.int(60) }, (_, i) => ({
        key: b(`d${prng.int(5)}/f${String(i).padStart(3, '0')}`),
        count: prng.int(6),
      }));
      const expected = [...files]
        .sort((x, y) => comparePaths(x.key, y.key))
        .flatMap((f) => Array.from({ length: f.count }, (_, line) => `${f.key}:${line}`))
        .slice(0, limit);
      const top = new PathOrderedTop<string>(limit);
      for (let i = files.length - 1; i > 0; i--) {
        const j = prng.int(i + 1);
        [files[i], files[j]] = [files[j]!, files[i]!];
      }
      for (const f of files) {
        const room = top.room(f.key);
        expect(room).to.be.within(0, limit);
        // A file keeps its first lines, up to the room it was given: the rest cannot be among the first `limit`.
        top.add(
          f.key,
          Array.from({ length: Math.min(f.count, room) }, (_, line) => `${f.key}:${line}`),
        );
      }
      expect(top.items(), `round ${round}`).to.deep.equal(expected);
    }
  });
});

for (const sandbox of ['bwrap', 'none'] as const)
  describe(`search: answers in path order (sandbox ${sandbox})`, function () {
    this.timeout(120_000);
    let project: HandlerProject;
    let root: string;
    let config: Config;
    const configWith = (overrides: Record<string, unknown> = {}): Config =>
      loadConfig({ overrides: { dataDir: join(project.outer, 'data'), ...overrides, commands: { sandbox: sandbox === 'bwrap' ? 'auto' : 'none' } } });

    before(function () {
      if (sandbox === 'bwrap' && resolveSandbox('auto').mode !== 'bwrap') this.skip(); // bubblewrap is not installed
    });

    beforeEach(async () => {
      project = await HandlerProject.create('toolhost-search-order-');
      root = project.root;
      config = configWith();
    });

    afterEach(() => {
      execFileSync('rm', ['-rf', project.outer]); // deeper than PATH_MAX in one test
    });

    function run(req: Record<string, unknown>): Promise<SearchResult> {
      const parsed = searchTool.input.parse({ project_id: 'p', ...req });
      const owner = sandbox === 'none' ? projectOwner(config, 'p') : null;
      if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, root]);
      return searchTool.job.handler(parsed, { ...project.ctx(), config });
    }

    /** Every line matching `needle` as rg --sort=path lists them: `path:line`, and its file's name as bytes (hex). */
    function sortedRg(extra: string[] = []): { at: string; file: string }[] {
      const out = execFileSync(
        rgPath,
        ['--no-config', '--sort=path', '--hidden', '--null', '-n', '--no-heading', '--with-filename', ...extra, '-F', '-e', 'needle', '.'],
        {
          cwd: root,
          maxBuffer: 64 * 2 ** 20,
        },
      );
      const lines: { at: string; file: string }[] = [];
      for (let from = 0, end = out.indexOf(10); end !== -1; from = end + 1, end = out.indexOf(10, from)) {
        const nul = out.indexOf(0, from);
        const path = out.subarray(from + 2, nul); // less "./"
        const line = out.subarray(nul + 1, out.indexOf(58, nul)).toString('latin1');
        lines.push({ at: `${path.toString('utf8')}:${line}`, file: path.toString('hex') });
      }
      return lines;
    }

    const where = (r: SearchResult): string[] => r.matches.map((m) => `${m.path}:${m.line}`);

    /** Files whose names rg orders differently from a string sort, a few matching lines each, at random lines. */
    function plantTree(files: number): void {
      const prng = new Prng(5);
      const names = ['a', 'a b', 'a-c', 'a.c', 'B', 'é', 'Ａ', '😀', 'x/y', '.hidden'];
      for (let i = 0; i < files; i++) {
        const dir = join(root, names[prng.int(names.length)]!, `d${prng.int(7)}`);
        mkdirSync(dir, { recursive: true });
        const lines = Array.from({ length: 40 }, (_, n) => `line ${n}`);
        for (let k = prng.int(5) + 1; k > 0; k--) lines[prng.int(lines.length)] = 'a needle here';
        writeFileSync(join(dir, `f${i % 13}-${i}.txt`), `${lines.join('\n')}\n`);
      }
      // Two names that are not UTF-8 and read the same once decoded: their bytes order them (their lines tell them apart).
      writeFileSync(Buffer.concat([Buffer.from(`${root}/a/n`), Buffer.from([0xff])]), 'needle\n');
      writeFileSync(Buffer.concat([Buffer.from(`${root}/a/n`), Buffer.from([0xfe])]), 'x\nneedle\n');
    }

    it('lists what rg --sort=path lists first, the same on every run, with the same totals', async () => {
      plantTree(600);
      const rgLines = sortedRg();
      const expected = rgLines.map((l) => l.at);
      expect(expected.length).to.be.above(1000);
      for (const max of [1, 7, 100, 2000]) {
        for (let i = 0; i < 3; i++) {
          const r = await run({ pattern: 'needle', max_results: max });
          expect(where(r), `max_results ${max}, run ${i}`).to.deep.equal(expected.slice(0, max));
          expect(r).to.include({ total_matches: expected.length, total_exact: true, truncated: expected.length > max });
        }
      }
      const withContext = await run({ pattern: 'needle', max_results: 50, context_lines: 2 });
      expect(where(withContext)).to.deep.equal(expected.slice(0, 50));
      // Files in order, each once: two names that decode alike are two files.
      const files: { path: string; matches: number }[] = [];
      rgLines.forEach(({ at, file }, i) => {
        if (i > 0 && rgLines[i - 1]!.file === file) files[files.length - 1]!.matches++;
        else files.push({ path: at.slice(0, at.lastIndexOf(':')), matches: 1 });
      });
      const listed = await run({ pattern: 'needle', output: 'files', max_results: 9 });
      expect(listed.files).to.deep.equal(files.slice(0, 9));
      expect(listed).to.include({ total_files: files.length, truncated: true });
    });

    it(`lists the first matches in path order when it stops counting at ${COUNT_CAP}`, async () => {
      const perFile = 401;
      const files = Math.ceil(COUNT_CAP / perFile) + 3;
      for (let i = 0; i < files; i++) {
        mkdirSync(join(root, `m${i % 9}`), { recursive: true });
        writeFileSync(join(root, `m${i % 9}`, `f${i}.txt`), 'needle\n'.repeat(perFile));
      }
      const expected = sortedRg()
        .slice(0, 300)
        .map((l) => l.at);
      for (let i = 0; i < 2; i++) {
        const r = await run({ pattern: 'needle', max_results: 300 });
        expect(where(r)).to.deep.equal(expected);
        expect(r).to.include({ total_matches: COUNT_CAP, total_exact: false, truncated: true, complete: false });
      }
    });

    it('names the first long lines and unreadable folders in path order', async () => {
      config = configWith({ search: { maxLineBytes: 100 } });
      const prng = new Prng(9);
      for (let i = 0; i < 45; i++) {
        const dir = join(root, `l${prng.int(4)}`);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `f${i}.txt`), `short\n${'x'.repeat(200)} needle\n`);
      }
      const longOnes = execFileSync(rgPath, ['--no-config', '--sort=path', '-l', 'needle', '.'], { cwd: root })
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((p) => p.slice(2));
      // Deeper than PATH_MAX: rg cannot open the innermost folders by name (ENAMETOOLONG), even as root.
      for (const top of ['zz', 'aa', 'mm']) {
        execFileSync('bash', [
          '-c',
          'mkdir "$1" && cd "$1" && n=$(printf "d%.0s" $(seq 250)) && for i in $(seq 18); do mkdir $n && cd $n; done',
          'x',
          join(root, top),
        ]);
      }
      for (let i = 0; i < 3; i++) {
        const r = await run({ pattern: 'needle' });
        expect(r.skipped_long_lines).to.equal(45);
        expect(r.long_lines!.map((l) => `${l.path}:${l.line}`)).to.deep.equal(longOnes.slice(0, 20).map((p) => `${p}:2`));
        expect(r.errors!.map((e) => e.slice(0, 3))).to.deep.equal(['aa/', 'mm/', 'zz/']);
        expect(r.note).to.match(/could not read 3 file\(s\)/);
      }
    });
  });
