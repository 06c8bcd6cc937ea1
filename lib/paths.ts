/**
 * Confinement of user-supplied paths to a project root. Every file tool resolves its paths here: `..` that
 * climbs out, absolute paths elsewhere, NUL bytes and symlinks that resolve outside the project are refused with
 * `path_outside_project`.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep, dirname, basename, join } from 'node:path';
import { ToolhostError, errnoCode } from './errors.js';

/** True when `child` is `parent` or lies below it (both absolute and normalized). */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && rel.split(sep)[0] !== '..');
}

function outside(userPath: string): ToolhostError {
  return new ToolhostError(
    'path_outside_project',
    `path "${userPath}" is outside the project; use a path relative to the project root, without ".." that climbs out of it`,
    { path: userPath },
  );
}

/**
 * Resolves `userPath` inside the project at `root` (an absolute, real path). The result is the lexical path
 * inside the project; its deepest existing ancestor (or itself) must resolve, through symlinks, inside the
 * project too. A path that does not exist yet is allowed (writes create it).
 *
 * Synchronous on purpose: it runs in pool threads, where a few cached syscalls done directly are far cheaper
 * than queueing them on libuv's small file pool, which every thread of the process shares.
 */
export function resolveInProject(root: string, userPath: string): string {
  if (userPath.includes('\0')) {
    throw new ToolhostError('path_outside_project', 'path contains a NUL byte; remove it', { path: userPath });
  }
  const target = resolve(root, userPath);
  if (!isInside(root, target)) throw outside(userPath);
  // Walk up to the deepest existing ancestor and check where it really is.
  let probe = target;
  for (;;) {
    try {
      const real = realpathSync.native(probe);
      if (!isInside(root, real)) throw outside(userPath);
      return target;
    } catch (err) {
      if (err instanceof ToolhostError) throw err;
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      if (probe === root) return target;
      probe = dirname(probe);
    }
  }
}

/** The path of `abs` relative to `root`, with forward slashes ("." for the root itself). */
export function projectRelative(root: string, abs: string): string {
  const rel = relative(root, abs);
  return rel === '' ? '.' : rel.split(sep).join('/');
}

/** A sibling temp path for atomic replace of `file`. */
export function tempSibling(file: string): string {
  return join(dirname(file), `.${basename(file)}.toolhost-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
}
