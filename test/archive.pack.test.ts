import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { extractArchive } from '../lib/archive/extract.js';
import { type ArchiveFormat, archiveExtension, sniffFile } from '../lib/archive/format.js';
import { type PackResult, packTree } from '../lib/archive/pack.js';
import { walkTree } from '../lib/archive/tree-walk.js';
import type { ArchiveLimits } from '../lib/archive/types.js';
import { ToolhostError } from '../lib/errors.js';
import { exists } from './helpers/probes.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** The `archive` section of config/default.json. */
const LIMITS: ArchiveLimits = { maxEntries: 200_000, maxTotalBytes: 8_589_934_592, maxRatio: 200 };
const FORMATS = ['zip', 'tar.gz'] as const;

const LONG_DIR = `src/${'a'.repeat(60)}/${'b'.repeat(60)}`;
const LONG_FILE = `src/${'p'.repeat(150)}.txt`;
/** A modification time a round trip must keep (whole seconds, as both formats store it). */
const MTIME = new Date('2021-06-15T12:34:57Z');

/** Content of a compressible text file of about `bytes` bytes. */
function text(bytes: number): string {
  const lines: string[] = [];
  for (let i = 0, size = 0; size < bytes; i++) {
    const line = `line ${i} of ${i % 97} in the ${i % 13}th block: ${'x'.repeat(i % 40)}\n`;
    lines.push(line);
    size += line.length;
  }
  return lines.join('');
}

/** Writes `files` (name to content; a name ending in "/" is a folder) under `root`. */
async function files(root: string, tree: Record<string, string | Buffer>): Promise<void> {
  for (const [name, data] of Object.entries(tree)) {
    const abs = join(root, name);
    if (name.endsWith('/')) {
      await mkdir(abs, { recursive: true });
      continue;
    }
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, data);
  }
}

/** A project with every kind of entry the packer has to get right. */
async function buildProject(root: string): Promise<void> {
  await files(root, {
    'README.md': '# hello\n',
    'src/index.ts': 'export {};\n',
    'src/lib/deep/x.txt': 'deep',
    [`${LONG_DIR}/long-name.txt`]: 'long',
    [LONG_FILE]: 'longer than any ustar field',
    'docs/café ☕.md': 'unicode',
    'bin/run.sh': '#!/bin/sh\necho hi\n',
    'private.txt': 'p',
    'empty.txt': '',
    'empty-dir/': '',
    'nested-empty/inner/': '',
    '.git/HEAD': 'ref: refs/heads/main\n',
    '.git/objects/': '',
    'data/random.bin': randomBytes(2.5 * MiB),
    'data/text.txt': text(3 * MiB),
  });
  await chmod(join(root, 'bin/run.sh'), 0o755);
  await chmod(join(root, 'private.txt'), 0o600);
  await utimes(join(root, 'README.md'), MTIME, MTIME);
  await symlink('src/index.ts', join(root, 'latest'));
  await symlink('../index.ts', join(root, 'src/lib/up'));
  await symlink('does-not-exist-yet', join(root, 'dangling'));
  await symlink(`${LONG_DIR}/long-name.txt`, join(root, 'deep-link'));
  await run('mkfifo', [join(root, 'pipe')]);
}

/**
 * What a user compares between two trees, by path: kind, content hash or link target, and the permission bits
 * (`exact`) or only whether it is executable (`exec`: what our extractor keeps). Fifos and sockets are left out.
 */
async function snapshot(root: string, modes: 'exact' | 'exec'): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(root, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(root, path));
      if (st.isDirectory()) {
        out[path] = 'dir';
        await walk(path);
      } else if (st.isSymbolicLink()) {
        out[path] = `link -> ${await readlink(join(root, path))}`;
      } else if (st.isFile()) {
        const mode = modes === 'exact' ? (st.mode & 0o7777).toString(8) : (st.mode & 0o111) !== 0 ? 'exec' : 'plain';
        out[path] = `file ${mode} ${createHash('sha256')
          .update(await readFile(join(root, path)))
          .digest('hex')}`;
      }
    }
  };
  await walk('');
  return out;
}

/** Files under `dir` this process holds open: a pack must close every one it opens, on success and failure. */
function openUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(`${dir}/`)) open.push(target);
    } catch {
      // The descriptor readdirSync itself used, closed by now.
    }
  }
  return open;
}

describe('archive packing', () => {
  let tmp: string;
  let root: string;
  beforeEach(async () => {
    tmp = await realpath(await mkdtemp(join(tmpdir(), 'toolhost-pack-')));
    root = join(tmp, 'project');
    await mkdir(root);
  });

  afterEach(async () => {
    const open = openUnder(tmp);
    await rm(tmp, { recursive: true, force: true });
    expect(open, 'files left open').to.deep.equal([]);
  });

  function pack(format: ArchiveFormat, exclude: readonly string[] = [], out = join(tmp, `out${archiveExtension(format)}`)): Promise<PackResult> {
    return packTree({ root, format, out, exclude });
  }

  /** Asserts the rejection a caller sees, and that `out` is not there. */
  async function expectFailure(run: Promise<unknown>, code: string, words: string[], out: string): Promise<void> {
    let caught: unknown;
    try {
      await run;
    } catch (err) {
      caught = err;
    }
    expect(caught, 'packing should fail').to.be.instanceOf(ToolhostError);
    const err = caught as ToolhostError;
    expect(err.code, err.message).to.equal(code);
    for (const word of words) expect(err.message).to.include(word);
    expect(await exists(out), 'out removed').to.equal(false);
  }

  for (const format of FORMATS) {
    describe(format, () => {
      const out = (): string => join(tmp, `out${archiveExtension(format)}`);

      it('round-trips a project through our extractor: contents, exec bits, symlinks, empty folders, .git', async () => {
        await buildProject(root);
        const packed = await pack(format);
        expect(await sniffFile(out())).to.equal(format);

        const dest = join(tmp, 'extracted');
        const extracted = await extractArchive({ file: out(), format, dest, limits: LIMITS });
        expect(extracted).to.deep.equal({ entries: packed.entries, bytes: packed.bytes });
        const expected = await snapshot(root, 'exec');
        expect(Object.keys(expected)).to.include.members(['empty-dir', 'nested-empty/inner', '.git/HEAD', '.git/objects', 'dangling', 'deep-link']);
        expect(await snapshot(dest, 'exec')).to.deep.equal(expected);
        expect(await exists(join(dest, 'pipe')), 'fifo left out').to.equal(false);
        expect(packed.entries).to.equal(Object.keys(expected).length);
        expect(packed.archiveBytes).to.equal((await lstat(out())).size);
        // The text compresses; the random megabytes are stored, not grown.
        expect(packed.archiveBytes).to.be.below(packed.bytes - 2 * MiB);
        expect(packed.archiveBytes).to.be.above(2.5 * MiB);
      });

      it(`round-trips a project through the system's ${format === 'zip' ? 'unzip' : 'tar'}: exact modes and times`, async () => {
        await buildProject(root);
        await pack(format);
        const dest = join(tmp, 'system');
        await mkdir(dest);
        if (format === 'zip') {
          await run('unzip', ['-tq', out()]);
          await run('unzip', ['-q', out()], { cwd: dest });
        } else {
          await run('gzip', ['-t', out()]);
          await run('tar', ['xzf', out(), '-C', dest]);
        }
        expect(await snapshot(dest, 'exact')).to.deep.equal(await snapshot(root, 'exact'));
        expect((await lstat(join(dest, 'bin/run.sh'))).mode & 0o777).to.equal(0o755);
        expect((await lstat(join(dest, 'README.md'))).mtime.getTime()).to.equal(MTIME.getTime());
      });

      it('writes entries in sorted order, each folder before its contents', async () => {
        await files(root, { 'b.txt': 'b', 'a.txt': 'a', 'a/z.txt': 'z', 'a/b/c.txt': 'c', 'A/': '' });
        await pack(format);
        const listing = format === 'zip' ? await run('unzip', ['-Z1', out()]) : await run('tar', ['tzf', out()]);
        expect(listing.stdout.trim().split('\n')).to.deep.equal(['A/', 'a/', 'a/b/', 'a/b/c.txt', 'a/z.txt', 'a.txt', 'b.txt']);
      });

      it('leaves out what the exclude patterns match, a folder pattern with all it holds', async () => {
        await files(root, {
          'node_modules/pkg/index.js': 'x',
          'node_modules/pkg/deep/more.js': 'x',
          'src/node_modules/inner.js': 'x',
          'src/app.ts': 'app',
          'debug.log': 'noise',
          'logs/keep.log': 'kept by a negation',
          build: 'a file named like a folder pattern',
          'lib/build/gen.js': 'x',
          'out/x.js': 'x',
          '.git/HEAD': 'ref',
        });
        const packed = await pack(format, ['node_modules/', '*.log', '!keep.log', 'out/', 'build/']);
        const dest = join(tmp, 'extracted');
        await extractArchive({ file: out(), format, dest, limits: LIMITS });
        expect(Object.keys(await snapshot(dest, 'exec')).sort()).to.deep.equal([
          '.git',
          '.git/HEAD',
          'build',
          'lib',
          'logs',
          'logs/keep.log',
          'src',
          'src/app.ts',
        ]);
        expect(packed.entries).to.equal(8);
      });

      it('keeps .git by default and leaves it out when asked', async () => {
        await files(root, { '.git/HEAD': 'ref', 'a.txt': 'a' });
        const kept = await pack(format, [], join(tmp, `kept${archiveExtension(format)}`));
        const left = await pack(format, ['.git'], join(tmp, `left${archiveExtension(format)}`));
        expect(kept.entries).to.equal(3);
        expect(left.entries).to.equal(1);
      });

      it('streams a file larger than 32 MiB, and turns the event loop over while packing', async () => {
        // 33 different copies of a megabyte of text: compressible, and every chunk differs from the last.
        const block = text(MiB);
        const big = Buffer.concat(Array.from({ length: 33 }, (_, i) => Buffer.from(`copy ${i}\n${block}`)));
        await files(root, { 'big.txt': big });
        let finished = false;
        const packing = pack(format).then((r) => {
          finished = true;
          return r;
        });
        const ranDuring = await new Promise<boolean>((settle) => setTimeout(() => settle(!finished), 0));
        const packed = await packing;
        expect(ranDuring, 'a timer ran while the pack was still going').to.equal(true);
        expect(packed.bytes).to.equal(big.length);
        expect(packed.archiveBytes).to.be.below(big.length / 4);
        const dest = join(tmp, 'extracted');
        await extractArchive({ file: out(), format, dest, limits: LIMITS });
        expect((await readFile(join(dest, 'big.txt'))).equals(big), 'content survives').to.equal(true);
      });

      it('packs an empty folder into an archive that extracts to nothing', async () => {
        const packed = await pack(format);
        expect(packed).to.include({ entries: 0, bytes: 0 });
        const dest = join(tmp, 'extracted');
        expect(await extractArchive({ file: out(), format, dest, limits: LIMITS })).to.deep.equal({ entries: 0, bytes: 0 });
        expect(await readdir(dest)).to.deep.equal([]);
      });

      it('with limits, refuses what extraction would refuse or lose, and removes out; without them packs it', async () => {
        await writeFile(join(root, 'zeros.bin'), Buffer.alloc(4 * 1024 * 1024));
        const tight = { ...LIMITS, maxRatio: 10 };
        await expectFailure(
          packTree({ root, format, out: out(), exclude: [], limits: tight }),
          'archive_too_large',
          ['archive.maxRatio', 'store.exclude'],
          out(),
        );
        await expectFailure(
          packTree({ root, format, out: out(), exclude: [], limits: { ...LIMITS, maxEntries: 0 } }),
          'archive_too_large',
          ['archive.maxEntries'],
          out(),
        );
        await rm(join(root, 'zeros.bin'));
        await writeFile(join(root, 'back\\slash.txt'), 'x');
        await expectFailure(
          packTree({ root, format, out: out(), exclude: [], limits: LIMITS }),
          'unsafe_archive_entry',
          ['back\\slash.txt', 'backslash'],
          out(),
        );
        expect((await pack(format)).skipped.map((e) => e.name)).to.deep.equal(['back\\slash.txt']);
      });

      it('fails when the root does not exist, and removes out', async () => {
        await rm(root, { recursive: true });
        await expectFailure(pack(format), 'internal', [root, 'ENOENT'], out());
      });

      it('fails when the project folder is removed while it is packed, and removes out', async () => {
        await files(root, { 'a.txt': text(8 * MiB) });
        let removedDuring = false;
        const packing = pack(format);
        // Runs at the pack's first turn of the event loop, in the middle of the file.
        setTimeout(() => {
          rmSync(root, { recursive: true });
          removedDuring = true;
        }, 0);
        await expectFailure(packing, 'internal', [root], out());
        expect(removedDuring).to.equal(true);
      });

      it('fails when the root is a file, and removes out', async () => {
        await rm(root, { recursive: true });
        await writeFile(root, 'not a folder');
        await expectFailure(pack(format), 'internal', [root, 'not a folder'], out());
      });

      it('refuses an existing out and leaves it alone', async () => {
        await files(root, { 'a.txt': 'a' });
        await writeFile(out(), 'keep me');
        let caught: unknown;
        try {
          await pack(format);
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(ToolhostError);
        expect((caught as ToolhostError).message).to.include('already exists');
        expect(await readFile(out(), 'utf8')).to.equal('keep me');
      });
    });
  }

  it('zip: stores what deflate would not shrink and deflates the rest', async () => {
    await files(root, { 'random.bin': randomBytes(3 * MiB), 'text.txt': text(3 * MiB), 'tiny.txt': 'x' });
    await pack('zip');
    const { stdout } = await run('unzip', ['-v', join(tmp, 'out.zip')]);
    const method = (name: string): string | undefined =>
      stdout
        .split('\n')
        .find((l) => l.trim().endsWith(` ${name}`))
        ?.trim()
        .split(/\s+/)[1];
    expect(method('random.bin')).to.equal('Stored');
    expect(method('text.txt')).to.match(/^Defl/);
    expect(method('tiny.txt')).to.equal('Stored');
  });

  it('zip: writes zip64 records for more than 65535 entries', async function () {
    this.timeout(120_000);
    for (let d = 0; d < 64; d++) {
      await mkdir(join(root, `d${d}`));
      for (let i = 0; i < 1025; i++) writeFileSync(join(root, `d${d}`, `f${i}`), '');
    }
    const packed = await pack('zip');
    expect(packed.entries).to.equal(64 * 1025 + 64);
    const bytes = await readFile(join(tmp, 'out.zip'));
    expect(bytes.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'zip64 end of central directory record').to.equal(true);
    // unzip checks the entry count of the end records against the directory it reads.
    await run('unzip', ['-tq', join(tmp, 'out.zip')]);
    const { stdout } = await run('unzip', ['-l', join(tmp, 'out.zip')], { maxBuffer: 64 * MiB });
    expect(stdout.trim().split('\n').at(-1)).to.match(new RegExp(`\\s${packed.entries} files$`));
  });

  describe('walkTree', () => {
    it('skips files and folders removed while the walk is under way', async () => {
      await files(root, { 'a/1.txt': '1', 'a/2.txt': '2', 'a/3.txt': '3', 'b/inner/x.txt': 'x', 'c.txt': 'c' });
      const seen: string[] = [];
      for (const entry of walkTree(root, [])) {
        seen.push(entry.name);
        if (entry.name === 'a/1.txt') {
          // Listed already (a's names were read when the walk entered it), gone before they are looked at.
          await rm(join(root, 'a/2.txt'));
          await rm(join(root, 'b'), { recursive: true });
          await rm(join(root, 'c.txt'));
        }
      }
      expect(seen).to.deep.equal(['a', 'a/1.txt', 'a/3.txt']);
    });

    it('skips a folder removed after it was reported, before it was listed', async () => {
      await files(root, { 'a/x/1.txt': '1', 'b.txt': 'b' });
      const seen: string[] = [];
      for (const entry of walkTree(root, [])) {
        seen.push(entry.name);
        if (entry.name === 'a/x') await rm(join(root, 'a/x'), { recursive: true });
      }
      expect(seen).to.deep.equal(['a', 'a/x', 'b.txt']);
    });

    it('fails when the root itself is missing', () => {
      expect(() => [...walkTree(join(tmp, 'missing'), [])]).to.throw(ToolhostError, 'ENOENT');
    });

    it('reports symlinks with their target and never follows them', async () => {
      await files(root, { 'real/file.txt': 'f' });
      await symlink('real', join(root, 'alias'));
      await symlink('/etc', join(root, 'etc'));
      const entries = [...walkTree(root, [])].map((e) => (e.kind === 'symlink' ? `symlink ${e.name} -> ${e.target}` : `${e.kind} ${e.name}`));
      expect(entries).to.deep.equal(['symlink alias -> real', 'symlink etc -> /etc', 'dir real', 'file real/file.txt']);
    });
  });
});
