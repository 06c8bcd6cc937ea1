/**
 * The search target (the project root or the request's `path`), opened before anything is searched, and the
 * opened object checked: a name swapped for a symlink after a check by name would win a race, the object behind
 * an fd cannot be swapped.
 */
import { closeSync, fstatSync, lstatSync, openSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { errnoCode, ToolhostError } from '../errors.js';
import { GitignoreRules } from '../gitignore.js';
import { isInside, projectRelative, resolveInProject } from '../paths.js';

/** Linux's O_PATH (x86-64 and arm64): an fd naming an object without opening it, so a FIFO cannot block. */
const O_PATH = 0o10000000;

/** The search target, opened: `fd` is an O_PATH descriptor of the very object that was checked. */
export interface OpenTarget {
  fd: number;
  /** Project-relative real path of the target ("." for the root). */
  rel: string;
  isDir: boolean;
}

/**
 * Opens the target and checks the opened object: inside the project (by the kernel's own name for the fd, so a
 * symlink swapped in after any earlier check is caught), not in .git, a folder or a regular file. A FIFO, socket
 * or device is refused: rg would block reading it. The caller closes `fd`.
 */
export function openTarget(root: string, userPath: string): OpenTarget {
  resolveInProject(root, userPath); // the lexical and NUL checks, with their errors
  const gitRefused = (): ToolhostError =>
    new ToolhostError('bad_request', 'search never looks inside .git; search a folder of the working tree, or run git commands with execute', {
      path: userPath,
    });
  if (projectRelative(root, resolve(root, userPath)).split('/').includes('.git')) throw gitRefused();
  let fd: number;
  try {
    fd = openSync(resolve(root, userPath), O_PATH);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') {
      throw new ToolhostError(
        'file_not_found',
        `"${userPath}" does not exist${code === 'ELOOP' ? ' (a loop of symlinks)' : ''}; search "." or list the project to find the right path`,
        { path: userPath },
      );
    }
    throw err;
  }
  try {
    const real = readlinkSync(`/proc/self/fd/${fd}`);
    if (real.endsWith(' (deleted)')) {
      throw new ToolhostError('file_not_found', `"${userPath}" was deleted while the search started; search again`, { path: userPath });
    }
    if (!isInside(root, real)) {
      throw new ToolhostError(
        'path_outside_project',
        `path "${userPath}" is outside the project (it is, or passes through, a link out of it); search a folder or file inside the project`,
        { path: userPath },
      );
    }
    const rel = projectRelative(root, real);
    if (rel.split('/').includes('.git')) throw gitRefused();
    const st = fstatSync(fd);
    if (!st.isDirectory() && !st.isFile()) {
      throw new ToolhostError(
        'not_a_regular_file',
        `"${userPath}" is not a regular file or folder (a FIFO, socket or device); search its folder, or inspect it with execute`,
        { path: userPath },
      );
    }
    return { fd, rel, isDir: st.isDirectory() };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Whether the root has a .gitignore rg can be given (a symlink or FIFO there is git's business, not rg's). */
export function rootGitignoreIsFile(root: string): boolean {
  try {
    return lstatSync(join(root, '.gitignore')).isFile();
  } catch {
    return false;
  }
}

/**
 * Which ignore rules apply below `target`: rg's ignore file (rg-launch.ts) and the rules MatchFilter applies again.
 * A folder .gitignore excludes, named as path, is searched whole (as file.list lists it): no rules; a file named
 * as path is searched whatever .gitignore says.
 */
export async function ignoreScope(root: string, target: OpenTarget): Promise<{ rules: GitignoreRules | null; ignoreFile: 'walk' | 'root' | null }> {
  const rules = new GitignoreRules(root);
  if (target.isDir && target.rel !== '.' && (await rules.ignores(target.rel, true))) return { rules: null, ignoreFile: null };
  return { rules, ignoreFile: target.rel === '.' || !target.isDir || !rootGitignoreIsFile(root) ? 'walk' : 'root' };
}
