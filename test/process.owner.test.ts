/** Per-project owners: uid claims, and handing a tree over without a swapped symlink leading the root walk out. */
import { spawn } from 'node:child_process';
import { lstatSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { chownTree, projectOwner } from '../lib/process/owner.js';

const isRoot = process.getuid?.() === 0;

describe('process: project owners', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'th-owner-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('gives each project one uid for good, and different projects different uids', function () {
    if (!isRoot) this.skip();
    const s = { dataDir: dir, commands: { uidBase: 1_500_000_000, uidCount: 3 } };
    const a = projectOwner(s, 'a')!;
    const b = projectOwner(s, 'b')!;
    const c = projectOwner(s, 'c')!;
    expect(new Set([a.uid, b.uid, c.uid]).size).to.equal(3);
    expect(projectOwner(s, 'a')).to.deep.equal(a);
    expect(() => projectOwner(s, 'd')).to.throw(/uidCount/);
  });

  it('never chowns what a folder swapped for a symlink points at, however often the swap happens', async function () {
    if (!isRoot) this.skip();
    this.timeout(60_000);
    const outside = join(dir, 'outside');
    const tree = join(dir, 'tree');
    await mkdir(outside);
    // The outside folder holds files named like the project's: a walk that lists d, then follows names through a
    // d swapped for the link meanwhile, chowns them.
    await mkdir(join(tree, 'd'), { recursive: true });
    for (let i = 0; i < 200; i++) {
      await writeFile(join(tree, 'd', `f${i}`), 'x');
      await writeFile(join(outside, `f${i}`), 'root only\n');
    }
    // A hostile command's loop: d flips between the real folder and a link to `outside` (renameat2 EXCHANGE).
    const swapper = spawn(
      'python3',
      [
        '-c',
        [
          'import ctypes, os, sys',
          'libc = ctypes.CDLL(None, use_errno=True)',
          `os.symlink(${JSON.stringify(outside)}, ".d.lnk")`,
          'while True: libc.renameat2(-100, b"d", -100, b".d.lnk", 2)',
        ].join('\n'),
      ],
      { cwd: tree, stdio: 'ignore' },
    );
    try {
      // The swapper is running once d has been a symlink (python may take a while to start).
      const deadline = Date.now() + 20_000;
      let swapping = false;
      while (!swapping && Date.now() < deadline) {
        swapping = lstatSync(join(tree, 'd')).isSymbolicLink();
        if (!swapping) await new Promise((r) => setTimeout(r, 10));
      }
      expect(swapping, 'the swapper never ran').to.equal(true);
      const owner = { uid: 1_500_000_123, gid: 1_500_000_123 };
      for (let i = 0; i < 100; i++) {
        chownTree(tree, owner);
        for (let f = 0; f < 200; f++) expect(statSync(join(outside, `f${f}`)).uid, `round ${i}, f${f}`).to.equal(0);
        expect(statSync(outside).uid, `round ${i}`).to.equal(0);
      }
      expect(statSync(tree).uid).to.equal(owner.uid);
      expect(statSync(tree).mode & 0o777).to.equal(0o700);
    } finally {
      swapper.kill('SIGKILL');
    }
  });
});
