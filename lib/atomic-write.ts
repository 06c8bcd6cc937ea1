/** Atomic file replacement: write a sibling temp file, then rename it over the target. */
import { chmod, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from './errors.js';
import { tempSibling } from './paths.js';

/**
 * Writes `data` to `file` so readers see the old content or the new, never a mix. Parent folders are created;
 * an existing file keeps its mode. Returns whether the file was created.
 */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<{ created: boolean }> {
  let mode: number | undefined;
  try {
    mode = (await stat(file)).mode & 0o7777;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  await mkdir(dirname(file), { recursive: true });
  const tmp = tempSibling(file);
  try {
    await writeFile(tmp, data, { flag: 'wx', mode: 0o644 });
    if (mode !== undefined) await chmod(tmp, mode);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { created: mode === undefined };
}
