import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { type ExtractResult, extractArchive } from '../lib/archive/extract.js';
import { type ArchiveFormat, archiveExtension, detectFormat, sniffFile } from '../lib/archive/format.js';
import type { ArchiveLimits } from '../lib/archive/types.js';
import { ToolhostError } from '../lib/errors.js';
import { exists } from './helpers/probes.js';
import { buildTarGz, type TarSpec } from './helpers/tar-writer.js';
import { buildZip, type ZipEntrySpec, zipDir, zipFile, zipSymlink } from './helpers/zip-writer.js';

const MiB = 1024 * 1024;
const LIMITS: ArchiveLimits = { maxEntries: 1000, maxTotalBytes: 256 * MiB, maxRatio: 200 };

/** The same project in both formats' terms. */
type Spec =
  | { kind: 'file'; name: string; data: string | Buffer; mode?: number }
  | { kind: 'dir'; name: string }
  | { kind: 'symlink'; name: string; target: string };

async function build(format: ArchiveFormat, specs: Spec[]): Promise<Buffer> {
  if (format === 'zip') {
    return buildZip(
      specs.map((s): ZipEntrySpec => {
        if (s.kind === 'file') return zipFile(s.name, s.data, s.mode ?? 0o644);
        if (s.kind === 'dir') return zipDir(s.name);
        return zipSymlink(s.name, s.target);
      }),
    );
  }
  return buildTarGz(
    specs.map((s): TarSpec => {
      if (s.kind === 'file') return { name: s.name, data: s.data, mode: s.mode ?? 0o644 };
      if (s.kind === 'dir') return { name: s.name, type: 'directory', mode: 0o755 };
      return { name: s.name, type: 'symlink', linkname: s.target };
    }),
  );
}

describe('archive extraction', () => {
  let tmp: string;
  let work: string;
  let dest: string;
  let sentinel: string;

  beforeEach(async () => {
    tmp = await realpath(await mkdtemp(join(tmpdir(), 'toolhost-extract-')));
    work = join(tmp, 'work');
    dest = join(work, 'dest');
    sentinel = join(work, 'sentinel');
    await mkdir(sentinel, { recursive: true });
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  async function extract(format: ArchiveFormat, bytes: Buffer, limits: ArchiveLimits = LIMITS): Promise<ExtractResult> {
    const file = join(tmp, `in${archiveExtension(format)}`);
    await writeFile(file, bytes);
    return extractArchive({ file, format, dest, limits });
  }

  /** Asserts the refusal a user sees, that dest is gone and that nothing appeared outside it. */
  async function expectRefusal(run: Promise<unknown>, code: string, names: string[]): Promise<ToolhostError> {
    let caught: unknown;
    try {
      await run;
    } catch (err) {
      caught = err;
    }
    expect(caught, 'extraction should fail').to.be.instanceOf(ToolhostError);
    const err = caught as ToolhostError;
    expect(err.code, err.message).to.equal(code);
    for (const name of names) expect(err.message).to.include(name);
    expect(await exists(dest), 'dest removed').to.equal(false);
    expect(await readdir(work)).to.deep.equal(['sentinel']);
    expect(await readdir(sentinel)).to.deep.equal([]);
    expect((await readdir(tmp)).filter((n) => !n.startsWith('in.'))).to.deep.equal(['work']);
    return err;
  }

  for (const format of ['zip', 'tar.gz'] as const) {
    describe(format, () => {
      it('round-trips a project: contents, nested folders, modes and an inside symlink', async () => {
        const longDir = `src/${'a'.repeat(60)}/${'b'.repeat(60)}`;
        const bytes = await build(format, [
          { kind: 'file', name: 'README.md', data: '# hello\n' },
          { kind: 'dir', name: 'src/' },
          { kind: 'file', name: 'src/index.ts', data: 'export {};\n' },
          { kind: 'file', name: 'src/lib/deep/x.txt', data: 'deep' },
          { kind: 'file', name: `${longDir}/long-name.txt`, data: 'long' },
          { kind: 'file', name: 'bin/run.sh', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
          { kind: 'file', name: 'bin/setuid', data: 'x', mode: 0o4755 },
          { kind: 'file', name: 'private.txt', data: 'p', mode: 0o600 },
          { kind: 'file', name: 'empty.txt', data: '' },
          { kind: 'symlink', name: 'latest', target: 'src/index.ts' },
          { kind: 'symlink', name: 'src/lib/up', target: '../index.ts' },
        ]);
        const result = await extract(format, bytes);

        expect(result.entries).to.equal(11);
        expect(result.bytes).to.equal(8 + 11 + 4 + 4 + 18 + 1 + 1);
        expect((await readdir(dest)).sort()).to.deep.equal(['README.md', 'bin', 'empty.txt', 'latest', 'private.txt', 'src']);
        expect(await readFile(join(dest, 'README.md'), 'utf8')).to.equal('# hello\n');
        expect(await readFile(join(dest, 'src/lib/deep/x.txt'), 'utf8')).to.equal('deep');
        expect(await readFile(join(dest, longDir, 'long-name.txt'), 'utf8')).to.equal('long');
        expect(await readFile(join(dest, 'empty.txt'), 'utf8')).to.equal('');
        expect((await stat(join(dest, 'bin/run.sh'))).mode & 0o7777).to.equal(0o755);
        expect((await stat(join(dest, 'bin/setuid'))).mode & 0o7777).to.equal(0o755);
        expect((await stat(join(dest, 'private.txt'))).mode & 0o7777).to.equal(0o644);
        expect((await stat(join(dest, 'src/lib/deep'))).mode & 0o7777).to.equal(0o755);
        expect(await readlink(join(dest, 'latest'))).to.equal('src/index.ts');
        expect(await readFile(join(dest, 'latest'), 'utf8')).to.equal('export {};\n');
        expect(await readFile(join(dest, 'src/lib/up'), 'utf8')).to.equal('export {};\n');
        expect(await readdir(sentinel)).to.deep.equal([]);
      });

      it('refuses zip-slip names with ".."', async () => {
        const bytes = await build(format, [
          { kind: 'file', name: 'ok.txt', data: 'ok' },
          { kind: 'file', name: '../evil', data: 'pwned' },
        ]);
        const err = await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', ['"../evil"', '".." segment', 'repack the archive']);
        expect(err.details).to.deep.equal({ entry: '../evil' });
      });

      it('refuses ".." deeper in the name', async () => {
        const bytes = await build(format, [{ kind: 'file', name: 'a/b/../../../sentinel/x', data: 'pwned' }]);
        await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', ['a/b/../../../sentinel/x']);
      });

      it('refuses an absolute path', async () => {
        const target = join(sentinel, 'abs.txt');
        const bytes = await build(format, [{ kind: 'file', name: target, data: 'pwned' }]);
        await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', [target, 'absolute']);
      });

      it('refuses a symlink pointing outside, and the file written through it', async () => {
        const bytes = await build(format, [
          { kind: 'symlink', name: 'link', target: '../sentinel' },
          { kind: 'file', name: 'link/pwned.txt', data: 'pwned' },
        ]);
        await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', ['"link"', 'outside']);
      });

      it('refuses an absolute symlink', async () => {
        const bytes = await build(format, [{ kind: 'symlink', name: 'etc', target: '/etc' }]);
        await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', ['"etc"', '/etc']);
      });

      it('refuses writing through a symlink, even one that stays inside', async () => {
        const bytes = await build(format, [
          { kind: 'symlink', name: 'here', target: '.' },
          { kind: 'file', name: 'here/x.txt', data: 'through the link' },
        ]);
        await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', ['"here/x.txt"', 'symlink']);
      });

      it('refuses a symlink chain that climbs out (s -> . then t -> s/..)', async () => {
        const bytes = await build(format, [
          { kind: 'symlink', name: 's', target: '.' },
          { kind: 'symlink', name: 't', target: 's/..' },
        ]);
        await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', ['"t"', 'through other symlinks']);
      });

      it('refuses a dangling symlink whose existing part already climbs out', async () => {
        const bytes = await build(format, [
          { kind: 'symlink', name: 's', target: '.' },
          { kind: 'symlink', name: 't', target: 's/../not-there' },
        ]);
        await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', ['"t"']);
      });

      it('refuses a second entry at the same path', async () => {
        const bytes = await build(format, [
          { kind: 'file', name: 'a.txt', data: 'one' },
          { kind: 'symlink', name: 'a.txt', target: 'b' },
        ]);
        await expectRefusal(extract(format, bytes), 'unsafe_archive_entry', ['"a.txt"', 'duplicate']);
      });

      it('refuses more entries than the limit', async () => {
        const specs: Spec[] = ['a', 'b', 'c', 'd', 'e'].map((n) => ({ kind: 'file', name: `${n}.txt`, data: n }));
        const limits = { ...LIMITS, maxEntries: 3 };
        // A zip declares its count up front, so it is refused before any entry is read.
        const names = format === 'zip' ? ['5 entries', 'limit of 3'] : ['"d.txt"', '3 entries'];
        await expectRefusal(extract(format, await build(format, specs), limits), 'archive_too_large', names);
      });

      it('refuses more bytes than the total limit', async () => {
        const bytes = await build(format, [
          { kind: 'file', name: 'small.txt', data: 'x' },
          { kind: 'file', name: 'big.bin', data: randomBytes(20_000) },
        ]);
        const limits = { ...LIMITS, maxTotalBytes: 10_000 };
        await expectRefusal(extract(format, bytes, limits), 'archive_too_large', ['"big.bin"', '10000 bytes']);
      });

      it('refuses a ratio bomb on the bytes written', async () => {
        const bytes = await build(format, [{ kind: 'file', name: 'zeros.bin', data: Buffer.alloc(40 * MiB) }]);
        expect(bytes.length).to.be.below(100_000);
        const limits = { ...LIMITS, maxTotalBytes: 1024 * MiB, maxRatio: 100 };
        await expectRefusal(extract(format, bytes, limits), 'archive_too_large', ['"zeros.bin"', 'decompression bomb']);
      });

      it('refuses a truncated archive', async () => {
        const bytes = await build(format, [
          { kind: 'file', name: 'a.txt', data: randomBytes(4000) },
          { kind: 'file', name: 'b.txt', data: randomBytes(4000) },
        ]);
        await expectRefusal(extract(format, bytes.subarray(0, bytes.length - 50)), 'bad_archive', ['corrupt']);
      });

      it('refuses bytes that are not an archive', async () => {
        await expectRefusal(extract(format, Buffer.from('this is not an archive at all')), 'bad_archive', ['repack the archive']);
      });

      it('leaves an existing destination alone', async () => {
        await mkdir(dest);
        await writeFile(join(dest, 'keep.txt'), 'keep');
        let caught: unknown;
        try {
          await extract(format, await build(format, [{ kind: 'file', name: 'a.txt', data: 'a' }]));
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(ToolhostError);
        expect(await readdir(dest)).to.deep.equal(['keep.txt']);
      });
    });
  }

  describe('tar.gz only', () => {
    it('keeps hard links to files extracted earlier, and accepts "./" names', async () => {
      const bytes = await buildTarGz([
        { name: './', type: 'directory' },
        { name: './src/a.txt', data: 'shared' },
        { name: './src/b.txt', type: 'link', linkname: './src/a.txt' },
      ]);
      const result = await extract('tar.gz', bytes);
      expect(result).to.deep.equal({ entries: 3, bytes: 6 });
      const [a, b] = await Promise.all([stat(join(dest, 'src/a.txt')), stat(join(dest, 'src/b.txt'))]);
      expect(b.ino).to.equal(a.ino);
      expect(await readFile(join(dest, 'src/b.txt'), 'utf8')).to.equal('shared');
    });

    it('refuses a hard link to /etc/passwd', async () => {
      const bytes = await buildTarGz([{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }]);
      await expectRefusal(extract('tar.gz', bytes), 'unsafe_archive_entry', ['"passwd"', '/etc/passwd']);
    });

    it('refuses a hard link to a path not extracted before it', async () => {
      const bytes = await buildTarGz([
        { name: 'early', type: 'link', linkname: 'late' },
        { name: 'late', data: 'x' },
      ]);
      await expectRefusal(extract('tar.gz', bytes), 'unsafe_archive_entry', ['"early"']);
    });

    for (const type of ['character-device', 'block-device', 'fifo'] as const) {
      it(`refuses a ${type}`, async () => {
        const bytes = await buildTarGz([
          { name: 'ok.txt', data: 'ok' },
          { name: `dev/${type}`, type },
        ]);
        await expectRefusal(extract('tar.gz', bytes), 'unsafe_archive_entry', [`"dev/${type}"`, 'repack the archive without device files']);
      });
    }

    it('names the entry a truncated archive breaks off in', async () => {
      const bytes = await buildTarGz([
        { name: 'a.txt', data: 'a' },
        { name: 'big.bin', data: randomBytes(512 * 1024) },
      ]);
      const cut = bytes.subarray(0, Math.floor(bytes.length * 0.75));
      await expectRefusal(extract('tar.gz', cut), 'bad_archive', ['"big.bin"', 'truncated']);
    });

    it('refuses a backslash in a name', async () => {
      const bytes = await buildTarGz([{ name: '..\\evil', data: 'x' }]);
      await expectRefusal(extract('tar.gz', bytes), 'unsafe_archive_entry', ['backslash']);
    });

    it('stops a gzip of zero blocks that holds no entries', async () => {
      const bytes = gzipSync(Buffer.alloc(16 * MiB));
      const limits = { ...LIMITS, maxRatio: 2 };
      await expectRefusal(extract('tar.gz', bytes, limits), 'archive_too_large', ['decompression bomb']);
    });
  });

  describe('zip only', () => {
    for (const name of ['..\\evil', 'a\0b', 'C:/evil', 'C:\\evil']) {
      it(`refuses the name ${JSON.stringify(name)}`, async () => {
        await expectRefusal(extract('zip', buildZip([zipFile(name, 'x')])), 'unsafe_archive_entry', [JSON.stringify(name)]);
      });
    }

    it('refuses a fifo marked in the external attributes', async () => {
      const bytes = buildZip([{ name: 'pipe', unixMode: 0o010644 }]);
      await expectRefusal(extract('zip', bytes), 'unsafe_archive_entry', ['"pipe"', 'fifo']);
    });

    it('refuses an entry whose content is larger than its declared size', async () => {
      const bytes = buildZip([{ ...zipFile('liar.bin', Buffer.alloc(8 * MiB)), declaredSize: 10 }]);
      await expectRefusal(extract('zip', bytes), 'bad_archive', ['"liar.bin"']);
    });

    it('refuses an entry whose content fails its CRC', async () => {
      const bytes = buildZip([zipFile('a.txt', 'hello world', 0o644, 'store')]);
      const at = bytes.indexOf('hello world');
      bytes[at] = 'j'.charCodeAt(0);
      await expectRefusal(extract('zip', bytes), 'bad_archive', ['"a.txt"', 'CRC']);
    });

    it('extracts an empty zip', async () => {
      expect(await extract('zip', buildZip([]))).to.deep.equal({ entries: 0, bytes: 0 });
      expect(await readdir(dest)).to.deep.equal([]);
    });
  });
});

describe('archive format', () => {
  let tmp: string;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'toolhost-format-'));
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('detects zip, empty zip and gzip by magic bytes', () => {
    expect(detectFormat(Buffer.from([0x50, 0x4b, 0x03, 0x04]))).to.equal('zip');
    expect(detectFormat(buildZip([]))).to.equal('zip');
    expect(detectFormat(gzipSync('x'))).to.equal('tar.gz');
    expect(detectFormat(Buffer.from('PK\x07\x08'))).to.equal(null);
    expect(detectFormat(Buffer.from('hello'))).to.equal(null);
    expect(detectFormat(Buffer.alloc(0))).to.equal(null);
  });

  it('names extensions and sniffs files', async () => {
    expect(archiveExtension('zip')).to.equal('.zip');
    expect(archiveExtension('tar.gz')).to.equal('.tar.gz');
    const zip = join(tmp, 'a');
    const gz = join(tmp, 'b');
    const tiny = join(tmp, 'c');
    await writeFile(zip, buildZip([zipFile('x', 'y')]));
    await writeFile(gz, gzipSync('x'));
    await writeFile(tiny, 'P');
    expect(await sniffFile(zip)).to.equal('zip');
    expect(await sniffFile(gz)).to.equal('tar.gz');
    expect(await sniffFile(tiny)).to.equal(null);
  });
});
