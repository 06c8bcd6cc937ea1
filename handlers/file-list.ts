/**
 * The `file.list` tool: the tree under a project folder, a few levels deep, as git would show it (without `.git`
 * and what .gitignore files exclude, unless asked). Symlinks are listed, never followed. The folder is opened and
 * checked once (lib/safe-fs.ts); every subfolder is then opened through the one above it with O_NOFOLLOW, so a
 * folder swapped for a symlink meanwhile is never entered, and a FIFO or socket is listed (type "other"), never
 * opened.
 *
 * Also home of {@link GitignoreRules}, the project's .gitignore semantics, which `search` reuses so that both
 * tools agree on what is ignored.
 */
import { type Dirent, lstatSync, readdirSync } from 'node:fs';
import { z } from 'zod';
import { cancelled } from '../lib/errors.js';
import { fileError } from '../lib/file-errors.js';
import { FolderCursor } from '../lib/folder-cursor.js';
import { GitignoreRules } from '../lib/gitignore.js';
import { fitEntries } from '../lib/model-lines.js';
import { fdPath, fileErrorFor, reachFolder } from '../lib/safe-fs.js';
import { projectId, relPath } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';

const listRequest = z.strictObject({
  project_id: projectId,
  path: relPath.default('.'),
  depth: z.number().int().positive().default(2).describe('How many directory levels to descend.'),
  include_ignored: z.boolean().default(false).describe('Also list .git and what .gitignore excludes.'),
});
type ListRequest = z.infer<typeof listRequest>;

const listResult = z.strictObject({
  path: z.string().describe('The listed folder, project-relative ("." for the root).'),
  entries: z
    .array(z.strictObject({ path: z.string(), type: z.enum(['file', 'dir', 'symlink', 'other']), size: z.number().int() }))
    .describe(
      'Entries in tree order: siblings alphabetically (by UTF-16 code unit, so "B" before "a"), a folder\'s contents ' +
        'right after the folder. `path` is project-relative with forward slashes; `size` is the byte size of a file, 0 ' +
        'for anything else.',
    ),
  truncated: z.boolean().describe('True when more entries existed than list.maxEntries; the deepest level is the one cut short.'),
});
type ListResult = z.infer<typeof listResult>;

/** The file_list tool. */
export const fileListTool = jobTool({
  name: 'file_list',
  title: 'List files',
  route: { method: 'POST', path: '/file/list' },
  input: listRequest,
  output: listResult,
  readOnly: true,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'not_a_directory'],
  describe: ({ list }) =>
    'List the files and folders under a folder of the project (default its root) with their types and sizes, ' +
    `depth-first in tree order, down to depth levels (default 2, at most ${list.maxDepth}). .git and what the ` +
    "project's .gitignore files exclude are skipped unless include_ignored. Symlinks are listed, not followed. " +
    `At most ${list.maxEntries} entries, then truncated: true: list a subfolder to see the rest.`,
  limits: (req, { list }) => (req.depth > list.maxDepth ? `depth ${req.depth} exceeds list.maxDepth (${list.maxDepth}); list a subfolder instead` : undefined),
  examples: [{ project_id: 'demo', path: 'src', depth: 1 }],
  toModel: (out, input, config) => [{ type: 'text', text: listModel(out, input.depth, config.budgets.listChars) }],
  job: { type: 'file.list', lane: 'files', mutates: false, handler: fileList },
});

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

/**
 * Lists the folder `req.path` down to `req.depth` levels (1: its direct children), clamped to `list.maxDepth`.
 * The walk is breadth-first, so when `list.maxEntries` cuts it short the shallow levels are complete and the
 * deepest one is partial; the result is then sorted into tree order. A folder that .gitignore excludes (say
 * node_modules/some-dep), when named as `path`, is listed whole but for .git: its contents are what was asked for.
 */
async function fileList(req: ListRequest, ctx: HandlerContext): Promise<ListResult> {
  const { root, signal } = ctx;
  if (signal.aborted) throw cancelled(signal, 'the listing');
  let top: ReturnType<typeof reachFolder>;
  try {
    top = reachFolder(root, req.path);
  } catch (err) {
    // System errors name server paths; what the caller sees names the project-relative path only.
    throw fileErrorFor(root, req.path, err);
  }
  const cursor = new FolderCursor(top.fd!);
  try {
    return await list(req, ctx, top.shown, cursor);
  } finally {
    cursor.close();
    top.close();
  }
}

/** The breadth-first walk below the open folder `cursor` starts at, which the caller named `base`. */
async function list(req: ListRequest, ctx: HandlerContext, base: string, cursor: FolderCursor): Promise<ListResult> {
  const { root, config, signal } = ctx;
  const depth = Math.min(req.depth, config.list.maxDepth);
  const maxEntries = config.list.maxEntries;
  let rules = req.include_ignored ? null : new GitignoreRules(root);
  if (rules && base !== '.' && (await rules.ignores(base, true))) rules = null;
  const skipGit = !req.include_ignored;

  const entries: Entry[] = [];
  let truncated = false;
  // Folders to read at this level: their project-relative path and their names below the listed folder.
  let level: { path: string; below: string[] }[] = [{ path: base, below: [] }];
  for (let d = 1; d <= depth && level.length > 0 && !truncated; d++) {
    const next: typeof level = [];
    for (const dir of level) {
      if (signal.aborted) throw cancelled(signal, 'the listing');
      const fd = cursor.open(dir.below);
      // The top folder is open already; a subfolder that vanished or became a symlink meanwhile is left out.
      if (fd === null) continue;
      const children = await listChildren(fd, dir.path, dir.path === base, skipGit, rules);
      for (const child of children) {
        if (entries.length >= maxEntries) {
          truncated = true;
          break;
        }
        entries.push(child.entry);
        // lstat through the open folder: a name swapped for a symlink meanwhile reports the link, not its target.
        if (child.entry.type === 'file') child.entry.size = sizeOf(fd, child.name);
        if (child.entry.type === 'dir' && d < depth) next.push({ path: child.entry.path, below: [...dir.below, child.name] });
      }
      if (truncated) break;
    }
    level = next;
  }
  entries.sort((a, b) => compareTreeOrder(a.path, b.path));
  return { path: base, entries, truncated };
}

/** The byte size of file `name` in the open folder `dirFd`; 0 when it is gone (deleted since the readdir). */
function sizeOf(dirFd: number, name: string): number {
  try {
    return lstatSync(fdPath(dirFd, name)).size;
  } catch {
    return 0;
  }
}

/** The entries of one open folder that survive the ignore rules, sorted by name, sizes still 0. */
async function listChildren(
  dirFd: number,
  dir: string,
  isTop: boolean,
  skipGit: boolean,
  rules: GitignoreRules | null,
): Promise<{ name: string; entry: Entry }[]> {
  let dirents: Dirent[];
  try {
    dirents = readdirSync(fdPath(dirFd), { withFileTypes: true });
  } catch (err) {
    // A subfolder that vanished or cannot be read is left out, not fatal.
    if (isTop) throw fileError(err, dir);
    return [];
  }
  dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const kept: { name: string; entry: Entry }[] = [];
  for (const d of dirents) {
    const rel = dir === '.' ? d.name : `${dir}/${d.name}`;
    const type = typeOf(d);
    if (skipGit && d.name === '.git') continue;
    if (rules && (await rules.ignores(rel, type === 'dir'))) continue;
    kept.push({ name: d.name, entry: { path: rel, type, size: 0 } });
  }
  return kept;
}

/** A byte size, short: 812, 4.2K, 17M. */
function shortSize(n: number): string {
  if (n < 1024) return String(n);
  const [v, unit] = n < 1024 ** 2 ? [n / 1024, 'K'] : n < 1024 ** 3 ? [n / 1024 ** 2, 'M'] : [n / 1024 ** 3, 'G'];
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${unit}`;
}

/**
 * The listing as a model reads it: the folder, then one indented line per entry (a folder ends in "/", a symlink in
 * "@", a file shows its size), within `budget` characters, and one closing line when entries were left out.
 */
function listModel(out: ListResult, depth: number, budget: number): string {
  const baseDepth = out.path === '.' ? 0 : out.path.split('/').length;
  const lines = out.entries.map((e) => {
    const parts = e.path.split('/');
    const name = parts.at(-1) ?? e.path;
    const indent = '  '.repeat(parts.length - baseDepth);
    if (e.type === 'dir') return `${indent}${name}/`;
    if (e.type === 'symlink') return `${indent}${name}@`;
    if (e.type === 'other') return `${indent}${name} (not a regular file)`;
    return `${indent}${name} ${shortSize(e.size)}`;
  });
  const head = out.path === '.' ? './' : `${out.path}/`;
  const body = fitEntries(lines, budget - head.length - 1, (shown) => {
    if (out.entries.length === 0) return '(empty)';
    if (shown === out.entries.length && !out.truncated) return undefined;
    const left = `${out.entries.length - shown}${out.truncated ? '+' : ''} entries not shown`;
    const sub = out.entries.find((e, i) => i >= shown && e.type === 'dir')?.path;
    const how = sub ? `list a subfolder, e.g. file_list ${JSON.stringify({ path: sub })}` : 'list a subfolder';
    return `[${left}; ${how}${depth > 1 ? ', or pass a smaller depth' : ''}]`;
  });
  return `${head}\n${body}`;
}
