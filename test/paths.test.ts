/**
 * Path confinement (lib/paths.ts over lib/safe-fs.ts): every hostile spelling of a path that leaves the project is
 * refused with path_outside_project and a message naming only what the caller sent, while odd but harmless names
 * (unicode look-alikes of "..", names that begin with dots, links that stay inside) still work. Each test checks
 * that no fd into the temp tree was left open.
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ToolhostError } from '../lib/errors.js';
import { isInside, projectRelative, resolveInProject } from '../lib/paths.js';
import { openProjectFile, projectParts, reach, reachFolder, verifyInside } from '../lib/safe-fs.js';

/** The ToolhostError `fn` throws; fails when it returns. */
function refusal(fn: () => unknown, what: string): ToolhostError {
  let result: unknown;
  try {
    result = fn();
  } catch (err) {
    expect(err, what).to.be.instanceOf(ToolhostError);
    return err as ToolhostError;
  }
  return expect.fail(`${what}: expected a refusal, got ${JSON.stringify(result)}`);
}

/** Open fds of this process that point into `dir` (other tests' sockets and pipes come and go on their own). */
function fdsInto(dir: string): string[] {
  const found: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const where = readlinkSync(`/proc/self/fd/${fd}`);
      if (where === dir || where.startsWith(`${dir}/`)) found.push(where);
    } catch {
      // the fd of the listing itself, closed by now
    }
  }
  return found.sort();
}

describe('path confinement', () => {
  /** Holds root (the project), outside, and root + "-evil" (a sibling whose name starts with the root's). */
  let base: string;
  let root: string;
  let outside: string;

  before(() => {
    base = realpathSync(mkdtempSync(join(tmpdir(), 'toolhost-paths-')));
    root = join(base, 'proj');
    outside = join(base, 'outside');
    mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
    mkdirSync(outside);
    mkdirSync(`${root}-evil`);
    writeFileSync(join(root, 'a.txt'), 'inside\n');
    writeFileSync(join(root, 'sub', 'b.txt'), 'inside b\n');
    writeFileSync(join(outside, 'secret'), 'OUTSIDE-SECRET\n');
    writeFileSync(join(`${root}-evil`, 'secret'), 'EVIL-SECRET\n');
    const link = (name: string, target: string): void => symlinkSync(target, join(root, name));
    link('abs-out', outside);
    link('rel-out', '../outside');
    link('root-of-fs', '/');
    link('etc', '/etc');
    link('evil-sibling', `${root}-evil`);
    link('sub/climb', '../../outside');
    link('sub/deeper/climb-far', '../../../../../../../../..');
    link('chain-1', 'chain-2');
    link('chain-2', 'sub/chain-3');
    link('sub/chain-3', outside);
    link('dangling-out', '/nonexistent-toolhost-target/x');
    link('in', 'sub');
    link('in-abs', join(root, 'sub'));
    link('in-up-and-back', 'sub/../sub/deeper');
    link('dangling-in', 'not-yet');
    link('loop-a', 'loop-b');
    link('loop-b', 'loop-a');
    execFileSync('mkfifo', [join(root, 'fifo')]);
  });
  after(() => rmSync(base, { recursive: true, force: true }));
  afterEach(() => {
    expect(fdsInto(base), 'fds left open').to.deep.equal([]);
  });

  describe('resolveInProject', () => {
    it('resolves paths inside the project lexically, existing or not', () => {
      const cases: Array<[string, string]> = [
        ['a.txt', 'a.txt'],
        ['.', ''],
        ['', ''],
        ['./sub//b.txt', 'sub/b.txt'],
        ['sub/deeper/../b.txt', 'sub/b.txt'],
        ['not/yet/there.txt', 'not/yet/there.txt'],
        ['a.txt/under-a-file', 'a.txt/under-a-file'],
      ];
      for (const [asked, rel] of cases) expect(resolveInProject(root, asked), asked).to.equal(join(root, rel));
      expect(resolveInProject(root, join(root, 'sub')), 'an absolute path inside').to.equal(join(root, 'sub'));
    });

    it('refuses ".." that climbs out, however it is spelled', () => {
      for (const p of [
        '..',
        '../',
        '../proj-evil',
        '../outside/secret',
        'sub/../../outside',
        'sub/deeper/../../..',
        './..',
        `${'../'.repeat(50)}etc/passwd`,
        `${'a/'.repeat(300)}${'../'.repeat(301)}x`,
      ]) {
        const err = refusal(() => resolveInProject(root, p), p);
        expect(err.code, p).to.equal('path_outside_project');
      }
    });

    it("refuses absolute paths elsewhere, a sibling whose name starts with the root's included", () => {
      for (const p of ['/', '/etc/passwd', outside, `${root}-evil`, `${root}-evil/secret`, `${root}/../outside`, base]) {
        expect(refusal(() => resolveInProject(root, p), p).code, p).to.equal('path_outside_project');
      }
    });

    it('refuses a NUL byte anywhere in the path', () => {
      for (const p of ['\0', 'a.txt\0', 'a\0/../../etc', 'sub/\0b.txt']) {
        expect(refusal(() => resolveInProject(root, p), JSON.stringify(p)).code).to.equal('path_outside_project');
      }
    });

    it('refuses a path through any symlink that leads out, naming only the path it was given', () => {
      for (const p of [
        'abs-out',
        'abs-out/secret',
        'rel-out/secret',
        'root-of-fs',
        'etc/passwd',
        'evil-sibling/secret',
        'sub/climb/secret',
        'sub/deeper/climb-far',
        'chain-1/secret',
        'dangling-out',
        'in/climb/secret',
        'in/../rel-out',
      ]) {
        const err = refusal(() => resolveInProject(root, p), p);
        expect(err.code, p).to.equal('path_outside_project');
        expect(err.message, p).to.include(p).and.not.include(base);
      }
    });

    it('allows symlinks that stay inside, and returns the path as asked rather than the link target', () => {
      for (const p of ['in/b.txt', 'in-abs/b.txt', 'in-up-and-back', 'in/deeper/new.txt', 'dangling-in', 'sub/deeper/../climb/..']) {
        expect(resolveInProject(root, p), p).to.equal(join(root, p));
      }
    });

    it('refuses a symlink loop with bad_request', () => {
      expect(refusal(() => resolveInProject(root, 'loop-a/x'), 'loop').code).to.equal('bad_request');
    });

    it('refuses a name longer than the file system allows with bad_request, without naming server paths', () => {
      const long = `sub/${'n'.repeat(300)}`;
      const err = refusal(() => resolveInProject(root, long), 'long name');
      expect(err.code).to.equal('bad_request');
      expect(err.message).to.not.include(base);
      // A long path of short names is only a path: nothing on it exists, so it is allowed.
      const deep = Array.from({ length: 2000 }, () => 'd').join('/');
      expect(resolveInProject(root, deep)).to.equal(join(root, deep));
    });

    it('treats unicode look-alikes of "." and "/" as plain names inside the project', () => {
      // one-dot leaders, fullwidth full stops, division slash, fraction slash, RTL override, NFC and NFD é
      for (const name of [
        '\u2024\u2024',
        '\uff0e\uff0e',
        '\u2025',
        'a\u2215..\u2215etc',
        '\u2044..\u2044',
        '\u202e..',
        'caf\u00e9',
        'cafe\u0301',
        '日本語/ファイル.txt',
      ]) {
        expect(resolveInProject(root, name), name).to.equal(join(root, name));
        expect(resolveInProject(root, `sub/${name}`), name).to.equal(join(root, 'sub', name));
      }
    });

    // A name that merely begins with two dots ("..data", as Kubernetes volume mounts make, or "...") is not "..".
    it('allows names that begin with two dots but are not ".."', () => {
      writeFileSync(join(root, '..data'), 'k8s\n');
      for (const p of ['..data', '...', '..foo/bar', 'sub/..hidden']) expect(resolveInProject(root, p), p).to.equal(join(root, p));
      expect(isInside(root, join(root, '..data'))).to.equal(true);
    });
  });

  describe('isInside and projectParts', () => {
    it('compares whole path components, not string prefixes', () => {
      expect(isInside(root, root)).to.equal(true);
      expect(isInside(root, join(root, 'a', 'b'))).to.equal(true);
      expect(isInside(root, `${root}-evil`)).to.equal(false);
      expect(isInside(root, `${root}x/a`)).to.equal(false);
      expect(isInside(root, base)).to.equal(false);
      expect(isInside(root, '/')).to.equal(false);
      expect(isInside('/', '/anything/at/all')).to.equal(true);
    });

    it('splits a normalized path into names and refuses what climbs out', () => {
      expect(projectParts(root, './sub//deeper/./x/../y')).to.deep.equal(['sub', 'deeper', 'y']);
      expect(projectParts(root, '.')).to.deep.equal([]);
      expect(projectParts(root, join(root, 'a.txt'))).to.deep.equal(['a.txt']);
      for (const p of ['..', 'a/../..', '/etc', 'x\0y']) expect(refusal(() => projectParts(root, p), JSON.stringify(p)).code).to.equal('path_outside_project');
    });

    it('projectRelative names the root "." and uses forward slashes', () => {
      expect(projectRelative(root, root)).to.equal('.');
      expect(projectRelative(root, join(root, 'sub', 'b.txt'))).to.equal('sub/b.txt');
    });
  });

  describe('opening through the walk', () => {
    it('reads a file through a link inside, reporting where it really is', () => {
      const f = openProjectFile(root, 'in/b.txt');
      try {
        expect([f.shown, f.rel]).to.deep.equal(['in/b.txt', 'sub/b.txt']);
        expect(readFileSync(f.fd, 'utf8')).to.equal('inside b\n');
      } finally {
        closeSync(f.fd);
      }
    });

    it('never opens what a link out points to, nor a FIFO, nor a folder as a file', () => {
      expect(refusal(() => openProjectFile(root, 'rel-out/secret'), 'rel-out').code).to.equal('path_outside_project');
      expect(refusal(() => openProjectFile(root, 'evil-sibling/secret'), 'evil').code).to.equal('path_outside_project');
      // A blocking open of a FIFO with no writer would hang this test; the walk opens it with O_PATH only.
      expect(refusal(() => openProjectFile(root, 'fifo'), 'fifo').code).to.equal('not_a_regular_file');
      expect(refusal(() => openProjectFile(root, 'sub'), 'folder').code).to.equal('is_a_directory');
      expect(refusal(() => openProjectFile(root, 'missing.txt'), 'missing').code).to.equal('file_not_found');
      expect(refusal(() => reachFolder(root, 'a.txt'), 'file as folder').code).to.equal('not_a_directory');
    });

    it('creates missing folders only inside the project, never through a dangling link', () => {
      const made = reach(root, 'made/on/the/way/file.txt', { create: { owner: null } });
      try {
        expect(made.rel).to.equal('made/on/the/way/file.txt');
        expect(made.fd).to.equal(undefined);
      } finally {
        made.close();
      }
      expect(readdirSync(join(root, 'made', 'on', 'the'))).to.deep.equal(['way']);
      expect(refusal(() => reach(root, 'dangling-in/x/file.txt', { create: { owner: null } }), 'dangling').code).to.equal('not_a_directory');
      expect(refusal(() => reach(root, 'abs-out/new/file.txt', { create: { owner: null } }), 'out').code).to.equal('path_outside_project');
      expect(readdirSync(outside)).to.deep.equal(['secret']);
      expect(readdirSync(root)).to.not.include('not-yet');
    });

    it('verifyInside refuses an fd that lies outside the project', () => {
      const fd = openSync(outside, 'r');
      try {
        expect(refusal(() => verifyInside(root, fd, 'x'), 'outside fd').code).to.equal('path_outside_project');
      } finally {
        closeSync(fd);
      }
      const inner = openSync(join(root, 'sub'), 'r');
      try {
        verifyInside(root, inner, 'sub');
      } finally {
        closeSync(inner);
      }
    });
  });
});
