/**
 * `POST /file/patch` (the `apply_patch` tool): a patch of several files, all or nothing. It takes a Codex envelope
 * (`patch`) or the operations of OpenAI Responses API `apply_patch_call` items (`operations`, V4A diffs); both are
 * parsed by lib/patch/parse.ts and applied in memory by lib/patch/apply.ts. Every new content is computed before
 * anything is written; then the files are written one by one (lib/atomic-write.ts, through folders opened by
 * lib/safe-fs.ts), and if a write fails the ones already written are put back as they were.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, constants, fstatSync, openSync, type Stats, unlinkSync } from 'node:fs';
import { z } from 'zod';
import { replaceInFolder } from '../lib/atomic-write.js';
import { ToolhostError, toToolhostError } from '../lib/errors.js';
import { applyHunks } from '../lib/patch/apply.js';
import { firstPathOf, MAX_PATH_CHARS, parseCreateDiff, parseEnvelope, parseUpdateDiff } from '../lib/patch/parse.js';
import type { FileOp } from '../lib/patch/types.js';
import { type Owner, projectOwner } from '../lib/process/owner.js';
import { closeQuietly, fdPath, fileErrorFor, O_PATH, openReached, projectParts, type Reached, reach, readExactly, relOf } from '../lib/safe-fs.js';
import { projectId, relPath } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';
import { assertReplaceable } from './file-write.js';

/** Most operations one call may carry. */
export const MAX_OPERATIONS = 200;
/** Most fuzz notes the model's answer lists (the JSON answer has them all). */
const NOTES_SHOWN = 20;

const operation = z.strictObject({
  type: z.enum(['create_file', 'update_file', 'delete_file']).describe('What to do with the file.'),
  path: relPath,
  diff: z
    .string()
    .optional()
    .describe('V4A diff: for create_file the content as "+" lines; for update_file the hunks (@@ lines, then " ", "-", "+" lines). None for delete_file.'),
});

const patchRequest = z.strictObject({
  project_id: projectId,
  patch: z
    .string()
    .min(1)
    .optional()
    .describe('The patch as a Codex envelope: "*** Begin Patch" ... "*** End Patch" with Add File, Update File (and Move to), Delete File sections.'),
  operations: z
    .array(operation)
    .min(1)
    .max(MAX_OPERATIONS)
    .optional()
    .describe(`Instead of patch: OpenAI apply_patch_call operations {type, path, diff}, applied in order, all or nothing; at most ${MAX_OPERATIONS}.`),
});
type PatchRequest = z.infer<typeof patchRequest>;

const changedFile = z.strictObject({
  path: z.string().describe('The file, project-relative.'),
  action: z
    .enum(['add', 'update', 'delete', 'move'])
    .describe('add: created (or replaced whole); update: changed in place; delete: removed; move: changed and renamed to `to`.'),
  to: z.string().optional().describe('Where a moved file went, project-relative.'),
});

const patchResult = z.strictObject({
  files: z.array(changedFile).describe('Every file the patch changed, in patch order.'),
  notes: z
    .array(z.string())
    .describe('One line per hunk that was placed with fuzz (trailing whitespace, Unicode punctuation look-alikes) or without its @@ line.'),
});
type PatchResult = z.infer<typeof patchResult>;
type Changed = z.infer<typeof changedFile>;

/** The file operations a request asks for. @throws bad_request unless exactly one form is used; patch_invalid. */
export function opsOf(req: PatchRequest): FileOp[] {
  if ((req.patch === undefined) === (req.operations === undefined)) {
    throw new ToolhostError(
      'bad_request',
      'send exactly one of patch (a "*** Begin Patch" ... "*** End Patch" envelope) or operations ([{type: "create_file"|"update_file"|"delete_file", path, diff}])',
    );
  }
  if (req.patch !== undefined) return checked(parseEnvelope(req.patch));
  return (req.operations ?? []).map((op, i) => {
    const what = `operations[${i}].diff`;
    if (op.type === 'delete_file') {
      if (op.diff) throw new ToolhostError('patch_invalid', `operations[${i}] is a delete_file, which takes no diff; leave diff out`, { operation: i });
      return { kind: 'delete', path: op.path, at: i };
    }
    if (op.diff === undefined) throw new ToolhostError('patch_invalid', `operations[${i}] is a ${op.type}, which needs a diff`, { operation: i });
    return op.type === 'create_file'
      ? { kind: 'add', path: op.path, content: parseCreateDiff(op.diff, what), at: i }
      : { kind: 'update', path: op.path, hunks: parseUpdateDiff(op.diff, what), at: i };
  });
}

/** An envelope's operations within the bounds of `operations`: as many, paths as long as every tool's. */
function checked(ops: FileOp[]): FileOp[] {
  if (ops.length > MAX_OPERATIONS) {
    throw new ToolhostError('patch_invalid', `the patch has ${ops.length} file operations, more than ${MAX_OPERATIONS}; split it into several patches`);
  }
  const long = ops.find((op) => op.path.length > MAX_PATH_CHARS || (op.kind === 'update' && (op.moveTo?.length ?? 0) > MAX_PATH_CHARS));
  if (long) throw new ToolhostError('patch_invalid', `a path of the patch is longer than ${MAX_PATH_CHARS} characters; name the file by a shorter path`);
  return ops;
}

/** The apply_patch tool. */
export const filePatchTool = jobTool({
  name: 'apply_patch',
  title: 'Apply a patch',
  route: { method: 'POST', path: '/file/patch' },
  input: patchRequest,
  output: patchResult,
  readOnly: false,
  errors: [
    ...PROJECT_ERRORS,
    'patch_invalid',
    'patch_failed',
    'file_not_found',
    'is_a_directory',
    'not_a_directory',
    'not_a_regular_file',
    'binary_file',
    'file_too_large',
  ],
  describe: ({ files }) =>
    'Create, change, move and delete files with one patch, all or nothing: if any part does not apply, no file is ' +
    'changed and the error names the file and hunk with the closest lines of the file. Pass patch:\n' +
    '*** Begin Patch\n*** Add File: docs/new.md\n+# New\n*** Update File: src/app.py\n*** Move to: src/main.py\n' +
    '@@ def greet():\n-    print("Hi")\n+    print("Hello")\n*** Delete File: old.txt\n*** End Patch\n' +
    'Each hunk of an Update starts with "@@" (optionally "@@ <a line it comes after>", such as the enclosing ' +
    'class or function; stack several to narrow down), then lines starting with " " (context, unchanged), "-" ' +
    '(removed) or "+" (added); give about 3 context lines above and below each change, copied exactly. Hunks apply ' +
    'in file order. "*** End of File" after a hunk pins it to the end of the file. Every line of an added file ' +
    'starts with "+". Paths are relative to the project root. Context must match exactly; trailing whitespace and ' +
    'Unicode look-alike punctuation (curly quotes, dashes) are tolerated and reported. Alternatively pass ' +
    'operations: the {type, path, diff} operations of OpenAI apply_patch_call items (V4A diffs). ' +
    `Each file may be at most ${files.maxWriteBytes} bytes after the patch.`,
  examples: [
    {
      project_id: 'demo',
      patch: '*** Begin Patch\n*** Add File: docs/patched.md\n+# Patched\n*** Update File: README.md\n@@\n # demo\n+\n+See docs/patched.md.\n*** End Patch\n',
    },
    { project_id: 'demo', operations: [{ type: 'update_file', path: 'README.md', diff: '@@ # demo\n+Built with toolhost.\n' }] },
  ],
  // Only the cheap checks run before the job is queued, on the supervisor's loop; the handler parses the patch
  // (a refusal there, patch_invalid, leaves the working copy clean: supervisor/project-entry.ts).
  limits: (req) =>
    (req.patch === undefined) === (req.operations === undefined)
      ? 'send exactly one of patch (a "*** Begin Patch" ... "*** End Patch" envelope) or operations ([{type: "create_file"|"update_file"|"delete_file", path, diff}])'
      : undefined,
  toModel: (out) => {
    const letter = { add: 'A', update: 'M', delete: 'D', move: 'M' } as const;
    const lines = out.files.map((f) => (f.action === 'move' ? `M ${f.to} (moved from ${f.path})` : `${letter[f.action]} ${f.path}`));
    const notes = out.notes.slice(0, NOTES_SHOWN).map((n) => `Note: ${n}`);
    if (out.notes.length > NOTES_SHOWN) notes.push(`Note: ${out.notes.length - NOTES_SHOWN} more hunks were placed with fuzz.`);
    return [{ type: 'text', text: ['Success. Updated the following files:', ...lines, ...notes].join('\n') }];
  },
  // One path only can be locked: the first file the patch names, so a one-file patch (what an apply_patch_call
  // carries) runs one at a time with file_edit and file_write of that file. Other files of a larger patch are not
  // locked against those tools; each of them is still replaced atomically.
  job: {
    type: 'file.patch',
    lane: 'files',
    mutates: true,
    lockPath: (req) => (req.patch !== undefined ? firstPathOf(req.patch) : req.operations?.[0]?.path) ?? '.',
    handler: filePatch,
  },
});

/** A file the patch touches: what it was, and what it becomes. */
interface Entry {
  /** The path as the patch gave it, normalized: what answers and messages name. */
  shown: string;
  /** The walk to it, held open until the patch is written (undefined for a file the patch creates). */
  at: Reached | undefined;
  /** Its content before the patch; undefined when it did not exist. */
  original: Buffer | undefined;
  stat: Stats | undefined;
  /** Its content after the patch so far: undefined unchanged, null deleted. */
  next: Buffer | null | undefined;
}

/** The files of one patch, by real project-relative path, in the order the patch first touches them. */
class Staged {
  readonly entries = new Map<string, Entry>();
  readonly #ctx: HandlerContext;

  constructor(ctx: HandlerContext) {
    this.#ctx = ctx;
  }

  /** The file at `path` as the patch left it so far; it must exist and be a regular text file. */
  existing(path: string, noLink = false): { entry: Entry; text: string } {
    const shown = relOf(projectParts(this.#ctx.root, path));
    // A file the patch created or touched before is taken as the patch left it (one it created may sit in a folder
    // the patch creates too, which is not on disk yet).
    let entry = this.entries.get(`\0new:${shown}`);
    if (!entry) {
      if (noLink) this.#refuseLink(path, shown);
      const at = reach(this.#ctx.root, path);
      entry = this.entries.get(at.fd !== undefined ? at.rel : `\0new:${shown}`);
      if (entry) at.close();
      else entry = this.#readExisting(at, shown);
    }
    const bytes = entry.next === undefined ? entry.original : entry.next;
    if (!bytes) throw new ToolhostError('file_not_found', `"${shown}" was deleted earlier in this patch; nothing was written`, { path: shown });
    if (bytes.subarray(0, 8000).includes(0))
      throw new ToolhostError('binary_file', `"${shown}" is a binary file; a patch changes text files only`, { path: shown });
    if (!isUtf8(bytes)) {
      throw new ToolhostError(
        'patch_failed',
        `"${shown}" is not valid UTF-8 text, which hunks cannot match; change it with file_edit (it works on bytes) or a command; nothing was written`,
        {
          path: shown,
        },
      );
    }
    return { entry, text: bytes.toString('utf8') };
  }

  /** Reads the file `at` reaches (closed on failure) and records it as a file the patch touches. */
  #readExisting(at: Reached, shown: string): Entry {
    try {
      const file = openReached(at);
      let raw: Buffer;
      try {
        raw = this.#readLimited(file.fd, file.stat, shown);
      } finally {
        closeSync(file.fd);
      }
      const entry: Entry = { shown, at, original: raw, stat: at.stat, next: undefined };
      this.entries.set(at.rel, entry);
      return entry;
    } catch (err) {
      at.close();
      throw err;
    }
  }

  /** The entry that `path` will be written as (a new file, or one replaced whole). */
  target(path: string): Entry {
    const shown = relOf(projectParts(this.#ctx.root, path));
    const at = reach(this.#ctx.root, path, { lenient: true });
    const key = at.incomplete || at.stat === undefined ? `\0new:${shown}` : at.rel;
    const known = this.entries.get(key);
    if (known) {
      at.close();
      return known;
    }
    try {
      if (!at.incomplete) assertReplaceable(at);
      const fresh = at.incomplete || at.stat === undefined;
      if (fresh) at.close();
      let original: Buffer | undefined;
      if (!fresh && at.fd !== undefined && at.stat) {
        const file = openReached(at);
        try {
          original = this.#readLimited(file.fd, file.stat, shown);
        } finally {
          closeSync(file.fd);
        }
      }
      const entry: Entry = { shown, at: fresh ? undefined : at, original, stat: fresh ? undefined : at.stat, next: undefined };
      this.entries.set(key, entry);
      return entry;
    } catch (err) {
      at.close();
      throw err;
    }
  }

  /** Refuses to delete or move a symlink: that would act on the file it points to, or leave the link dangling. */
  #refuseLink(path: string, shown: string): void {
    const parts = projectParts(this.#ctx.root, path);
    const name = parts.at(-1);
    if (name === undefined) throw new ToolhostError('is_a_directory', 'the project root cannot be deleted or moved', { path: shown });
    const dir = reach(this.#ctx.root, relOf(parts.slice(0, -1)));
    try {
      if (dir.fd === undefined || !dir.stat?.isDirectory()) return; // reach() of the path itself reports it
      let fd: number;
      try {
        fd = openSync(fdPath(dir.fd, name), O_PATH | constants.O_NOFOLLOW);
      } catch {
        return;
      }
      try {
        if (fstatSync(fd).isSymbolicLink()) {
          throw new ToolhostError(
            'not_a_regular_file',
            `"${shown}" is a symlink; a patch deletes and moves regular files only: remove the link with a command`,
            {
              path: shown,
            },
          );
        }
      } finally {
        closeQuietly(fd);
      }
    } finally {
      dir.close();
    }
  }

  #readLimited(fd: number, st: Stats, shown: string): Buffer {
    const max = this.#ctx.config.files.maxWriteBytes;
    if (st.size > max)
      throw new ToolhostError('file_too_large', `"${shown}" is ${st.size} bytes, more than files.maxWriteBytes (${max}); change it with a command instead`, {
        path: shown,
      });
    return readExactly(fd, st.size);
  }

  close(): void {
    for (const e of this.entries.values()) e.at?.close();
  }
}

/** Computes every file's new content (nothing written), then writes them all, or puts back what was written. */
async function filePatch(req: PatchRequest, ctx: HandlerContext): Promise<PatchResult> {
  const ops = opsOf(req);
  const staged = new Staged(ctx);
  const files: Changed[] = [];
  const notes: string[] = [];
  let current = '';
  try {
    for (const op of ops) {
      current = op.path;
      if (op.kind === 'add') {
        staged.target(op.path).next = Buffer.from(op.content);
        files.push({ path: relOf(projectParts(ctx.root, op.path)), action: 'add' });
      } else if (op.kind === 'delete') {
        const { entry } = staged.existing(op.path, true);
        entry.next = null;
        files.push({ path: entry.shown, action: 'delete' });
      } else {
        const { entry, text } = staged.existing(op.path, op.moveTo !== undefined);
        const applied = applyHunks(text, op.hunks, entry.shown);
        notes.push(...applied.notes);
        const bytes = Buffer.from(applied.text);
        if (op.moveTo === undefined) {
          entry.next = bytes;
          files.push({ path: entry.shown, action: 'update' });
        } else {
          current = op.moveTo;
          const dest = staged.target(op.moveTo);
          entry.next = null;
          dest.next = bytes;
          files.push({ path: entry.shown, action: 'move', to: dest.shown });
        }
      }
    }
    const max = ctx.config.files.maxWriteBytes;
    for (const e of staged.entries.values()) {
      if (e.next && e.next.length > max) {
        throw new ToolhostError(
          'file_too_large',
          `"${e.shown}" would be ${e.next.length} bytes after the patch, more than files.maxWriteBytes (${max}); nothing was written`,
          {
            path: e.shown,
          },
        );
      }
    }
    current = '';
    writeAll(ctx, [...staged.entries.values()], projectOwner(ctx.config, ctx.projectId));
  } catch (err) {
    throw current === '' ? fileErrorFor(ctx.root, '.', err) : fileErrorFor(ctx.root, current, err);
  } finally {
    staged.close();
  }
  const seen = new Set<string>();
  return { files: files.filter((f) => !seen.has(`${f.action}\0${f.path}`) && seen.add(`${f.action}\0${f.path}`)), notes };
}

/** Writes every changed entry; on a failure, puts back the ones already written (in reverse order) and rethrows. */
function writeAll(ctx: HandlerContext, entries: readonly Entry[], owner: Owner | null): void {
  const undo: { path: string; put: () => void }[] = [];
  const made: Reached[] = [];
  // New content first, deletions last: a write that fails (a full disk) then finds nothing deleted to put back.
  const ordered = [...entries.filter((e) => e.next !== null), ...entries.filter((e) => e.next === null)];
  try {
    for (const e of ordered) {
      if (e.next === undefined || (e.next !== null && e.original?.equals(e.next))) continue;
      const { at, original, stat } = e;
      if (e.next === null) {
        if (at === undefined || original === undefined) continue; // created and deleted within the patch
        unlinkSync(fdPath(at.dirFd, at.name));
        undo.push({ path: e.shown, put: () => replaceInFolder(at.dirFd, at.name, original, { previous: stat, owner }) });
      } else if (at !== undefined && original !== undefined) {
        replaceInFolder(at.dirFd, at.name, e.next, { previous: stat, owner });
        undo.push({ path: e.shown, put: () => replaceInFolder(at.dirFd, at.name, original, { previous: stat, owner }) });
      } else {
        const to = reach(ctx.root, e.shown, { create: { owner } });
        made.push(to);
        assertReplaceable(to);
        replaceInFolder(to.dirFd, to.name, e.next, { previous: to.stat, owner });
        // A file that appeared there since the patch was computed (a command made it) cannot be put back.
        if (to.stat === undefined) undo.push({ path: e.shown, put: () => unlinkSync(fdPath(to.dirFd, to.name)) });
      }
    }
  } catch (err) {
    const notRestored: string[] = [];
    for (const u of undo.reverse()) {
      try {
        u.put();
      } catch {
        notRestored.push(u.path);
      }
    }
    if (notRestored.length === 0) throw err;
    const e = toToolhostError(err);
    throw new ToolhostError(
      e.code,
      `${e.message}; the patch was undone except for ${notRestored.map((p) => `"${p}"`).join(', ')}, which could not be put back: check them`,
      { ...e.details, not_restored: notRestored },
    );
  } finally {
    for (const at of made) at.close();
  }
}
