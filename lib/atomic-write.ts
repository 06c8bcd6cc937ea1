/** Atomic file replacement: write a sibling temp file, then rename it over the target. */
import { chmodSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { errnoCode } from './errors.js';
import { tempSibling } from './paths.js';

/**
 * Writes `data` to `file` so readers see the old content or the new, never a mix. Parent folders are created;
 * an existing file keeps its mode. Returns whether the file was created.
 *
 * Synchronous: it runs in pool threads, where direct syscalls beat queueing on libuv's shared file pool.
 */
export function writeFileAtomic(file: string, data: string | Buffer): { created: boolean } {
  let mode: number | undefined;
  try {
    mode = statSync(file).mode & 0o7777;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  mkdirSync(dirname(file), { recursive: true });
  const tmp = tempSibling(file);
  try {
    writeFileSync(tmp, data, { flag: 'wx', mode: 0o644 });
    if (mode !== undefined) chmodSync(tmp, mode);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return { created: mode === undefined };
}
