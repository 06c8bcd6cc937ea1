/**
 * A local folder as a project archive and back, for pushing and pulling projects: packing and extraction are
 * toolhost's own (lib/archive), so what the client sends is what the server would pack, and what it pulls is
 * extracted with the same refusals (no entry outside the folder, no devices, no links leading out).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { extractArchive } from '../archive/extract.js';
import type { ArchiveFormat } from '../archive/format.js';
import { type PackResult, packTree } from '../archive/pack.js';
import type { ArchiveLimits } from '../archive/types.js';
import { errnoCode } from '../errors.js';
import { ToolhostClientError } from './errors.js';

/**
 * Limits of a pull. The archive comes from the server, but what is in it was written by the project's commands:
 * these bound what it may put on this disk. gzip and deflate expand at most about 1032:1, so the ratio only
 * catches what they cannot produce.
 */
export const PULL_LIMITS: ArchiveLimits = { maxEntries: 1_000_000, maxTotalBytes: 64 * 1024 ** 3, maxRatio: 1100 };

/** A temp folder of this process, removed by `fn`'s end whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'toolhost-client-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Packs folder `dir` into the new archive file `out`, leaving out what matches `exclude` (gitignore patterns). */
export function packFolder(dir: string, out: string, format: ArchiveFormat, exclude: readonly string[] = []): Promise<PackResult> {
  return packTree({ root: resolve(dir), format, out, exclude });
}

/**
 * Whether `dir` can receive a pull: it does not exist, or is an empty folder. Returns a sentence saying why not,
 * or null.
 */
export async function pullTargetProblem(dir: string): Promise<string | null> {
  try {
    const entries = await readdir(dir);
    return entries.length === 0 ? null : `${dir} is not empty; pull into a new or empty folder`;
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') return null;
    if (code === 'ENOTDIR') return `${dir} is a file; pull into a new or empty folder`;
    return `${dir} cannot be read (${code ?? String(err)})`;
  }
}

/**
 * Extracts the archive `file` into `dir`, which must not exist or be empty. It is extracted beside `dir` first
 * and renamed into place, so `dir` is complete or untouched.
 */
export async function extractInto(file: string, format: ArchiveFormat, dir: string, limits: ArchiveLimits = PULL_LIMITS): Promise<void> {
  const target = resolve(dir);
  const problem = await pullTargetProblem(target);
  if (problem) throw new ToolhostClientError('bad_request', 0, problem);
  const aside = join(dirname(target), `.${basename(target)}.pull-${randomBytes(6).toString('hex')}`);
  try {
    await extractArchive({ file, format, dest: aside, limits });
    // An empty folder there is replaced; one that gained entries meanwhile makes the rename fail (ENOTEMPTY).
    await rmdir(target).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
    await rename(aside, target);
  } finally {
    await rm(aside, { recursive: true, force: true });
  }
}
