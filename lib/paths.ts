/**
 * Confinement of user-supplied paths to a project root, for callers that need a path string (a command's cwd, the
 * folder a search starts in): `..` that climbs out, absolute paths elsewhere, NUL bytes and symlinks that resolve
 * outside the project are refused with `path_outside_project`. The file tools themselves never use a path string
 * after the check: they work through the open fds of lib/safe-fs.ts, which this module is a thin layer over.
 */
import { relative, resolve, sep } from 'node:path';
import { isInside, reach, withFileErrors } from './safe-fs.js';

export { isInside };

/**
 * Resolves `userPath` inside the project at `root` (an absolute, real path). The result is the lexical path
 * inside the project; the path is walked as far as it exists, one name at a time through open folders, and every
 * symlink on it must stay inside the project (a symlink pointing outside is refused without being followed). A
 * path that does not exist yet is allowed (writes create it).
 *
 * The answer is a path, so it is only as good as the moment it was checked: a caller that must not be redirected
 * by a later swap opens what it needs with lib/safe-fs.ts instead.
 *
 * Synchronous on purpose: it runs in pool threads, where a few syscalls done directly are far cheaper than
 * queueing them on libuv's small file pool, which every thread of the process shares.
 */
export function resolveInProject(root: string, userPath: string): string {
  withFileErrors(root, userPath, () => reach(root, userPath, { lenient: true }).close());
  return resolve(root, userPath);
}

/** The path of `abs` relative to `root`, with forward slashes ("." for the root itself). */
export function projectRelative(root: string, abs: string): string {
  const rel = relative(root, abs);
  return rel === '' ? '.' : rel.split(sep).join('/');
}
