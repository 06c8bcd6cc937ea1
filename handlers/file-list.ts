/**
 * The `file.list` tool: the tree under a project folder, a few levels deep, as git would show it (without `.git`
 * and what .gitignore files exclude, unless asked). Symlinks are listed, never followed.
 *
 * Also home of {@link GitignoreRules}, the project's .gitignore semantics, which `search` reuses so that both
 * tools agree on what is ignored.
 */
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ToolhostError, cancelled, errnoCode } from '../lib/errors.js';
import { GitignoreRules } from '../lib/gitignore.js';
import { projectRelative, resolveInProject } from '../lib/paths.js';
import type { ListRequest } from '../lib/schemas.js';
import type { Handler, HandlerContext } from './context.js';

/** What `file.list` returns. */
export interface ListResult {
  /** The listed folder, project-relative ("." for the root). */
  path: string;
  /**
   * Entries in tree order: siblings alphabetically (by UTF-16 code unit, so "B" before "a"), a folder's contents
   * right after the folder. `path` is project-relative with forward slashes; `size` is the byte size of a file, 0
   * for anything else.
   */
  entries: { path: string; type: 'file' | 'dir' | 'symlink' | 'other'; size: number }[];
  /** True when more entries existed than `list.maxEntries`; the deepest level is the one cut short. */
  truncated: boolean;
}

type Entry = ListResult['entries'][number];

function typeOf(d: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): Entry['type'] {
  if (d.isSymbolicLink()) return 'symlink';
  if (d.isDirectory()) return 'dir';
  if (d.isFile()) return 'file';
  return 'other';
}

/** Orders paths as a tree: by segment, so a folder's contents come right after it and before its next sibling. */
function compareTreeOrder(a: string, b: string): number {
  const sa = a.split('/');
  const sb = b.split('/');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const x = sa[i]!;
    const y = sb[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return sa.length - sb.length;
}

async function statFolder(abs: string, userPath: string): Promise<void> {
  let st;
  try {
    st = statSync(abs);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new ToolhostError('file_not_found', `"${userPath}" does not exist; list "." to see what is there`, {
        path: userPath,
      });
    }
    throw err;
  }
  if (!st.isDirectory()) {
    throw new ToolhostError('not_a_directory', `"${userPath}" is a file, not a folder; read it with file.read`, {
      path: userPath,
    });
  }
}

/**
 * Lists the folder `req.path` down to `req.depth` levels (1: its direct children), clamped to `list.maxDepth`.
 * The walk is breadth-first, so when `list.maxEntries` cuts it short the shallow levels are complete and the
 * deepest one is partial; the result is then sorted into tree order. A folder that .gitignore excludes (say
 * node_modules/some-dep), when named as `path`, is listed whole but for .git: its contents are what was asked for.
 */
export const fileList: Handler<ListRequest, ListResult> = async (req, ctx: HandlerContext) => {
  const { root, config, signal } = ctx;
  if (signal.aborted) throw cancelled(signal, 'the listing');
  const abs = await resolveInProject(root, req.path);
  await statFolder(abs, req.path);
  const base = projectRelative(root, abs);
  const depth = Math.min(req.depth, config.list.maxDepth);
  const maxEntries = config.list.maxEntries;
  let rules = req.include_ignored ? null : new GitignoreRules(root);
  if (rules && base !== '.' && (await rules.ignores(base, true))) rules = null;
  const skipGit = !req.include_ignored;

  const entries: Entry[] = [];
  let truncated = false;
  let level: string[] = [base];
  for (let d = 1; d <= depth && level.length > 0 && !truncated; d++) {
    const next: string[] = [];
    for (const dir of level) {
      if (signal.aborted) throw cancelled(signal, 'the listing');
      const children = await listChildren(root, dir, dir === base, skipGit, rules);
      for (const child of children) {
        if (entries.length >= maxEntries) {
          truncated = true;
          break;
        }
        entries.push(child);
        if (child.type === 'dir' && d < depth) next.push(child.path);
      }
      if (truncated) break;
    }
    level = next;
  }
  await fillSizes(root, entries);
  entries.sort((a, b) => compareTreeOrder(a.path, b.path));
  return { path: base, entries, truncated };
};

/** The entries of one folder that survive the ignore rules, sorted by name, sizes still 0. */
async function listChildren(
  root: string,
  dir: string,
  isTop: boolean,
  skipGit: boolean,
  rules: GitignoreRules | null,
): Promise<Entry[]> {
  let dirents;
  try {
    dirents = readdirSync(dir === '.' ? root : join(root, dir), { withFileTypes: true });
  } catch (err) {
    // The top folder was just checked; a subfolder that vanished or cannot be read is left out, not fatal.
    if (isTop) throw err;
    return [];
  }
  dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const kept: Entry[] = [];
  for (const d of dirents) {
    const rel = dir === '.' ? d.name : `${dir}/${d.name}`;
    const type = typeOf(d);
    if (skipGit && d.name === '.git') continue;
    if (rules && (await rules.ignores(rel, type === 'dir'))) continue;
    kept.push({ path: rel, type, size: 0 });
  }
  return kept;
}

/** Stats the files among `entries`, a bounded number at a time, and records their sizes. */
async function fillSizes(root: string, entries: Entry[]): Promise<void> {
  const files = entries.filter((e) => e.type === 'file');
  const BATCH = 64;
  for (let i = 0; i < files.length; i += BATCH) {
    await Promise.all(
      files.slice(i, i + BATCH).map(async (e) => {
        try {
          e.size = lstatSync(join(root, e.path)).size;
        } catch {
          // Deleted between readdir and lstat: keep the entry with size 0 rather than fail the listing.
        }
      }),
    );
  }
}
