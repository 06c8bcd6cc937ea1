/**
 * Packing while the project's own commands swap what is being packed. A real background process exchanges names
 * (renameat2 RENAME_EXCHANGE, in a tight loop) between the project and a place outside it, while the tree is packed
 * again and again: no pack may ever hold anything from outside, report its size, or block on a FIFO. And a tree
 * deeper than PATH_MAX, which only a walk by fd can reach, neither holds more than one fd per level nor packs.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import { type ArchiveFormat, archiveExtension } from '../lib/archive/format.js';
import { packTree } from '../lib/archive/pack.js';
import { walkTree } from '../lib/archive/tree-walk.js';
import type { ArchiveLimits } from '../lib/archive/types.js';
import { ToolhostError } from '../lib/errors.js';

const run = promisify(execFile);
/** Content of every file outside the project: must never show up in an archive. */
const MARKER = 'OUTSIDE-MARKER';
/** Size of every file outside the project: must never show up in a tree's sizes. */
const OUTSIDE_SIZE = 7777;
/** Names of the files in the swapped folder, the same inside and outside. */
const NAMES = Array.from({ length: 200 }, (_, i) => `f${String(i).padStart(3, '0')}`);
const PACKS = 60;

/** Exchanges each pair of paths (argv: a1 b1 a2 b2 ...) over and over until killed. */
const SWAPPER = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
args = [os.fsencode(a) for a in sys.argv[1:]]
pairs = list(zip(args[0::2], args[1::2]))
print('ready', flush=True)
while True:
    for a, b in pairs:
        if libc.renameat2(-100, a, -100, b, 2) != 0:
            sys.exit('renameat2: ' + os.strerror(ctypes.get_errno()))
`;

/** Files under `dir` this process holds open: the walk must close every folder and file it opens. */
function openUnder(dir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target === dir || target.startsWith(`${dir}/`)) open.push(target);
    } catch {
      // The descriptor readdirSync itself used, closed by now.
    }
  }
  return open;
}

/** How many of this process's fds are open under `dir` (a path past PATH_MAX cannot be read back: counted too). */
function openCount(dir: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target === dir || target.startsWith(`${dir}/`)) count++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENAMETOOLONG') count++;
    }
  }
  return count;
}

/** The file contents of a packed archive, concatenated, as the system's tools read them. */
async function contents(out: string, format: ArchiveFormat): Promise<string> {
  // A tar stream holds the contents as they are; a zip's are deflated, so unzip them.
  if (format === 'tar.gz') return gunzipSync(readFileSync(out)).toString('latin1');
  const { stdout } = await run('unzip', ['-p', out], { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

describe('archive packing of a hostile tree', function () {
  this.timeout(120_000);
  let tmp: string;
  let root: string;
  let outside: string;
  let swapper: ChildProcess | undefined;
  let swapperErr = '';

  beforeEach(async () => {
    tmp = await realpath(await mkdtemp(join(tmpdir(), 'toolhost-pack-race-')));
    root = join(tmp, 'project');
    outside = join(tmp, 'outside');
    await mkdir(join(root, 'd'), { recursive: true });
    await mkdir(outside);
    for (const name of NAMES) {
      await writeFile(join(root, 'd', name), `inside ${name}\n`);
      await writeFile(join(outside, name), `${MARKER} ${name} `.padEnd(OUTSIDE_SIZE, '.'));
    }
    await writeFile(join(root, 'keep.txt'), 'kept\n');
  });

  afterEach(async () => {
    // Still swapping at the end, or the packs did not race anything.
    const stopped = swapper !== undefined && (swapper.exitCode !== null || swapper.signalCode !== null);
    if (swapper !== undefined && !stopped) {
      const exited = new Promise((resolve) => swapper!.once('exit', resolve));
      swapper.kill('SIGKILL');
      await exited;
    }
    swapper = undefined;
    const open = openUnder(tmp);
    await rm(tmp, { recursive: true, force: true });
    expect(stopped, `the swapper stopped by itself: ${swapperErr}`).to.equal(false);
    expect(open, 'files left open').to.deep.equal([]);
  });

  /** Starts the swapper on `pairs` (paths exchanged with each other) and waits until it runs. */
  async function swap(pairs: [string, string][]): Promise<void> {
    const child = spawn('python3', ['-c', SWAPPER, ...pairs.flat()], { stdio: ['ignore', 'pipe', 'pipe'] });
    swapper = child;
    swapperErr = '';
    child.stderr!.on('data', (chunk: Buffer) => (swapperErr += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the swapper exited (${code}) before it started: ${swapperErr}`)));
    });
    child.removeAllListeners('exit');
  }

  /** Packs the project `PACKS` times, in turn in both formats, handing the file contents of each archive to `check`. */
  async function packRepeatedly(check: (packed: string, n: number) => void): Promise<void> {
    for (let n = 0; n < PACKS; n++) {
      const format: ArchiveFormat = n % 2 === 0 ? 'tar.gz' : 'zip';
      const out = join(tmp, `out-${n}${archiveExtension(format)}`);
      await packTree({ root, format, out, exclude: [] });
      check(await contents(out, format), n);
      await rm(out);
    }
  }

  it('never packs the files of an outside folder swapped in for a folder of the project', async () => {
    // d and a symlink to the outside folder change places all the time; the walk lists d, then opens its files.
    await symlink(outside, join(tmp, 'd.lnk'));
    await swap([[join(root, 'd'), join(tmp, 'd.lnk')]]);
    let packedInside = 0;
    await packRepeatedly((packed, n) => {
      expect(packed.includes(MARKER), `pack ${n} holds a file from outside the project`).to.equal(false);
      expect(packed, `pack ${n}`).to.include('kept\n');
      if (packed.includes('inside f199')) packedInside++;
    });
    // The folder itself is still packed whenever the walk met it as a folder.
    expect(packedInside).to.be.greaterThan(0);
  });

  it('never reports the sizes of an outside folder swapped in for a folder of the project', async () => {
    await symlink(outside, join(tmp, 'd.lnk'));
    await swap([[join(root, 'd'), join(tmp, 'd.lnk')]]);
    for (let n = 0; n < PACKS; n++) {
      for (const entry of walkTree(root, [])) {
        if (entry.kind === 'file') expect(entry.size, `walk ${n}: ${entry.name}`).to.not.equal(OUTSIDE_SIZE);
      }
    }
  });

  it('never blocks on a FIFO, nor follows a symlink or a folder, swapped in for a file', async () => {
    await writeFile(join(root, 'p.txt'), 'plain p\n');
    await writeFile(join(root, 'q.txt'), 'plain q\n');
    await writeFile(join(root, 'r.txt'), 'plain r\n');
    await run('mkfifo', [join(tmp, 'fifo')]);
    await symlink(join(outside, 'f000'), join(tmp, 'file.lnk'));
    // A folder moved into the project is project content while it is there; the walk must not trip over it.
    await mkdir(join(tmp, 'folder'));
    await writeFile(join(tmp, 'folder', 'inner.txt'), 'folder inner\n');
    await swap([
      [join(root, 'p.txt'), join(tmp, 'fifo')],
      [join(root, 'q.txt'), join(tmp, 'file.lnk')],
      [join(root, 'r.txt'), join(tmp, 'folder')],
    ]);
    const seen = { p: 0, q: 0, r: 0, folder: 0 };
    // A pack that blocked on the FIFO would never return: the test's timeout is the assertion.
    await packRepeatedly((packed, n) => {
      expect(packed.includes(MARKER), `pack ${n} holds a file from outside the project`).to.equal(false);
      if (packed.includes('plain p\n')) seen.p++;
      if (packed.includes('plain q\n')) seen.q++;
      if (packed.includes('plain r\n')) seen.r++;
      if (packed.includes('folder inner\n')) seen.folder++;
    });
    expect(seen.p + seen.q + seen.r + seen.folder, 'the swapped files were packed whenever the walk met them as files').to.be.greaterThan(0);
  });

  it('holds one folder open per level, and enters no folder whose path is too long to extract again', async () => {
    // 25 levels of 200-byte names: level 21 passes PATH_MAX (4096), which only a walk by fd could go below.
    const level = (k: number): string => `L${String(k).padStart(2, '0')}`.padEnd(200, 'x');
    await run('python3', [
      '-c',
      'import os,sys\nos.chdir(sys.argv[1])\nfor n in sys.argv[2:]:\n  os.mkdir(n); os.chdir(n)\nopen("deep.txt","w").write("deep")',
      root,
      ...Array.from({ length: 25 }, (_, k) => level(k + 1)),
    ]);
    try {
      let mostOpen = 0;
      let deepest = 0;
      for (const entry of walkTree(root, [])) {
        mostOpen = Math.max(mostOpen, openCount(tmp));
        if (entry.name.startsWith('L')) deepest = Math.max(deepest, entry.name.split('/').length);
      }
      expect(deepest, 'deepest folder reported').to.equal(21);
      // The root and one folder per level down to 21.
      expect(mostOpen).to.be.at.most(22);
      const tooLong = Array.from({ length: 21 }, (_, k) => level(k + 1)).join('/');
      const packed = await packTree({ root, format: 'tar.gz', out: join(tmp, 'deep.tar.gz'), exclude: [] });
      expect(packed.skipped).to.deep.equal([{ name: tooLong, kind: 'dir', reason: 'its path is longer than 4095 bytes' }]);
      const limits: ArchiveLimits = { maxEntries: 200_000, maxTotalBytes: 8_589_934_592, maxRatio: 200 };
      let caught: unknown;
      try {
        await packTree({ root, format: 'zip', out: join(tmp, 'deep.zip'), exclude: [], limits });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(ToolhostError);
      expect((caught as ToolhostError).code).to.equal('unsafe_archive_entry');
      expect((caught as ToolhostError).message).to.include('longer than 4095 bytes');
    } finally {
      // Node's own recursive removal goes by path and stops at PATH_MAX; rm walks by fd.
      await run('rm', ['-rf', root]);
    }
  });
});
