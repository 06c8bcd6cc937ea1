/**
 * `POST /file/edit`: exact string replacement, one edit or several applied in order, all or nothing. When an
 * edit's number of matches differs from its expected_replacements, nothing is written and the error names the
 * edit and says where the matches are, or which lines come closest. CRLF files stay CRLF. Edits of one file are
 * serialized by the pump, so concurrent edits never lose an update.
 *
 * The edit works on bytes (handlers/text-file.ts): old_str's UTF-8 bytes are found in the file's raw bytes and only
 * those ranges are replaced, so a file that is not valid UTF-8 (Latin-1, say) keeps every byte no edit replaces.
 * The answer carries a numbered snippet of every changed region of the new file.
 */

import { isUtf8 } from 'node:buffer';
import { z } from 'zod';
import { ToolhostError } from '../lib/errors.js';
import { projectId, relPath } from '../lib/schemas.js';
import { similarity } from '../lib/similarity.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';
import { lineNumbers, type Range, type Rewrite, rewriteFile, snippetFields, snippetsForModel, usesCrlf } from './text-file.js';

/** Most edits one call may carry. */
export const MAX_EDITS = 100;

/** Line numbers an answer or an error lists before it says "…": the count is given in full. */
const MAX_LINES_LISTED = 20;

const oldStr = z.string().min(1).describe('Exact text to replace, including whitespace.');
const newStr = z.string().describe('Replacement text.');
const expectedReplacements = z.number().int().positive().describe('How many matches old_str must have (default 1).');

const oneEdit = z.strictObject({ old_str: oldStr, new_str: newStr, expected_replacements: expectedReplacements.default(1) });
type OneEdit = z.infer<typeof oneEdit>;

const editRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  old_str: oldStr.optional(),
  new_str: newStr.optional(),
  expected_replacements: expectedReplacements.optional(),
  edits: z
    .array(oneEdit)
    .min(1)
    .max(MAX_EDITS)
    .optional()
    .describe(`Several edits, applied in order (each to the text the previous ones left), all or nothing; at most ${MAX_EDITS}. Instead of old_str/new_str.`),
});
type EditRequest = z.infer<typeof editRequest>;

const editResult = z.strictObject({
  path: z.string().describe('The file, project-relative.'),
  replacements: z.number().int().describe('Replacements made, over all edits.'),
  lines: z
    .array(z.number().int())
    .describe(`1-based line of each replacement in the new content, the first ${MAX_LINES_LISTED} when there are more (replacements counts them all).`),
  ...snippetFields,
});
type EditResult = z.infer<typeof editResult>;

/** The edits a request asks for: its `edits`, or its one old_str/new_str. Throws `bad_request` unless exactly one form is used. */
function editsOf(req: EditRequest): OneEdit[] {
  const single = req.old_str !== undefined || req.new_str !== undefined || req.expected_replacements !== undefined;
  if (req.edits && single) {
    throw new ToolhostError('bad_request', 'send either old_str/new_str (one edit) or edits (several), not both; move old_str/new_str into edits');
  }
  if (req.edits) return req.edits;
  if (req.old_str === undefined || req.new_str === undefined) {
    throw new ToolhostError(
      'bad_request',
      'send old_str and new_str (one edit, plus expected_replacements if it occurs more than once) or edits: [{old_str, new_str}, ...] (several, applied in order)',
    );
  }
  return [{ old_str: req.old_str, new_str: req.new_str, expected_replacements: req.expected_replacements ?? 1 }];
}

/** The file_edit tool. */
export const fileEditTool = jobTool({
  name: 'file_edit',
  title: 'Edit a file',
  route: { method: 'POST', path: '/file/edit' },
  input: editRequest,
  output: editResult,
  readOnly: false,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'is_a_directory', 'binary_file', 'file_too_large', 'edit_no_match', 'edit_count_mismatch', 'edit_no_op'],
  describe: ({ files }) =>
    'Replace exact text in a file. old_str must occur exactly expected_replacements times (default 1), whitespace and ' +
    'indentation included; otherwise nothing is written and the error gives the number of matches and their lines, or ' +
    'the closest lines when there is none (edit_no_match). Read the file first and copy old_str from it with enough ' +
    `surrounding lines to be unique. For several changes pass edits: [{old_str, new_str}, ...] (at most ${MAX_EDITS}): ` +
    'they apply in order, each to the result of the previous, and if one fails none is written and the error names it. ' +
    'An edit that changes nothing is refused (edit_no_op). Answers a numbered snippet of each changed region. CRLF ' +
    `files stay CRLF. Edits of one file are applied one after another, so none is lost. The file may be at most ${files.maxWriteBytes} bytes after the edit.`,
  examples: [
    { project_id: 'demo', path: 'src/app.ts', old_str: 'const port = 3000;', new_str: 'const port = Number(process.env.PORT ?? 3000);' },
    {
      project_id: 'demo',
      path: 'src/app.ts',
      edits: [
        { old_str: 'const port = Number(process.env.PORT ?? 3000);', new_str: 'const port = Number(process.env.PORT ?? 8080);' },
        { old_str: 'http.createServer().listen(port);', new_str: "http.createServer().listen(port, '127.0.0.1');" },
      ],
    },
  ],
  // Checked before the job is queued, so a refused call never marks the working copy dirty (a mutating job does,
  // before it runs). A no-op is its own error, not a bad request: the call was well formed, the edit was empty.
  limits: (req) => {
    editsOf(req).forEach((e, i) => {
      if (e.old_str === e.new_str) {
        const which = req.edits ? `edits[${i}]` : 'the edit';
        throw new ToolhostError('edit_no_op', `${which} has old_str equal to new_str, so it would change nothing; nothing was written`, { edit_index: i });
      }
    });
    return undefined;
  },
  toModel: (out, _req, config) => {
    const shown = out.replacements > out.lines.length ? `${out.lines.join(', ')}, …` : out.lines.join(', ');
    const head = `Edited ${out.path}: ${out.replacements} replacement${out.replacements === 1 ? '' : 's'} (line${out.lines.length === 1 ? '' : 's'} ${shown}).`;
    return [{ type: 'text', text: `${head}\n${snippetsForModel(out.path, out.snippets, out.snippets_cut, config.budgets.outputChars)}` }];
  },
  job: { type: 'file.edit', lane: 'files', mutates: true, lockPath: (req) => req.path, handler: fileEdit },
});

/** Start offsets of the non-overlapping occurrences of `needle`. */
function occurrences(haystack: Buffer, needle: Buffer): number[] {
  const at: number[] = [];
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) at.push(i);
  return at;
}

/** `bytes` with the `length` bytes at each offset replaced by `by`; every other byte as it was. */
function spliceAll(bytes: Buffer, offsets: number[], length: number, by: Buffer): Buffer {
  const pieces: Buffer[] = [];
  let pos = 0;
  for (const off of offsets) {
    pieces.push(bytes.subarray(pos, off), by);
    pos = off + length;
  }
  pieces.push(bytes.subarray(pos));
  return Buffer.concat(pieces);
}

/** The lines of `text` most like the first non-blank line of `needle`, for a no-match error. */
function closestLines(text: string, needle: string): { line: number; text: string }[] {
  const probe =
    needle
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? '';
  const scored = text
    .split('\n')
    .map((t, i) => ({ line: i + 1, text: t.replace(/\r$/, ''), score: similarity(probe, t.trim()) }))
    .filter((c) => c.score >= 0.5)
    .sort((a, b) => b.score - a.score || a.line - b.line)
    .slice(0, 3);
  return scored.map(({ line, text: t }) => ({ line, text: t.length > 200 ? `${t.slice(0, 200)}…` : t }));
}

const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** Applies the request's edits, in order, to a regular file of the project; writes all of them or none. */
async function fileEdit(req: EditRequest, ctx: HandlerContext): Promise<EditResult> {
  const edits = editsOf(req);
  const multi = req.edits !== undefined;
  const done = await rewriteFile(req.path, ctx, (raw, shown) => applyEdits(raw, edits, shown, multi));
  const starts = done.rewrite.ranges.map((r) => r[0]).sort((a, b) => a - b);
  // One old_str can match millions of times: the answer lists the first lines, as the count-mismatch error does.
  const lines = lineNumbers(done.rewrite.updated, starts.slice(0, MAX_LINES_LISTED));
  return { path: done.rel, replacements: starts.length, lines, snippets: done.snippets, snippets_cut: done.snippetsCut };
}

/** The content after every edit, and the ranges the edits wrote in it; throws for the first edit that does not fit. */
function applyEdits(raw: Buffer, edits: readonly OneEdit[], shown: string, multi: boolean): Rewrite {
  // Agents send LF; a CRLF file keeps its endings.
  const crlf = usesCrlf(raw);
  let current = raw;
  let ranges: Range[] = [];
  edits.forEach((e, i) => {
    const convert = crlf && !e.old_str.includes('\r');
    const oldBytes = Buffer.from(convert ? e.old_str.replace(/\n/g, '\r\n') : e.old_str);
    const newBytes = Buffer.from(convert ? e.new_str.replace(/\r?\n/g, '\r\n') : e.new_str);
    const at = occurrences(current, oldBytes);
    const which = multi
      ? { label: `edits[${i}]: `, after: i > 0 ? ` (lines count in the text edits[0..${i - 1}] left; nothing was written)` : '' }
      : { label: '', after: '' };
    if (at.length !== e.expected_replacements) throw mismatch(current, e, at, shown, which, i);
    const shift = newBytes.length - oldBytes.length;
    ranges = ranges.map((r) => [mapStart(r[0], at, oldBytes.length, shift), mapEnd(r[1], at, oldBytes.length, newBytes.length, shift)] as const);
    at.forEach((off, k) => {
      const start = off + k * shift;
      ranges.push([start, start + newBytes.length]);
    });
    current = spliceAll(current, at, oldBytes.length, newBytes);
  });
  return { updated: current, ranges };
}

/** How many of the (ascending) occurrences end at or before `pos`. */
function endedBefore(pos: number, at: readonly number[], oldLength: number): number {
  let lo = 0;
  let hi = at.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((at[mid] ?? 0) + oldLength <= pos) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Where a range starting at `pos` starts once the occurrences are replaced (inside one: at its replacement). */
function mapStart(pos: number, at: readonly number[], oldLength: number, shift: number): number {
  const k = endedBefore(pos, at, oldLength);
  const inside = at[k];
  return inside !== undefined && inside < pos ? inside + k * shift : pos + k * shift;
}

/** Where a range ending at `pos` ends once the occurrences are replaced (inside one: after its replacement). */
function mapEnd(pos: number, at: readonly number[], oldLength: number, newLength: number, shift: number): number {
  const k = endedBefore(pos, at, oldLength);
  const inside = at[k];
  return inside !== undefined && inside < pos ? inside + k * shift + newLength : pos + k * shift;
}

/** Lines of the matches an edit_count_mismatch error names (in its message and its `lines`). */

/** The error of an edit whose old_str matched a number of times other than expected. */
function mismatch(text: Buffer, e: OneEdit, at: number[], shown: string, which: { label: string; after: string }, index: number): ToolhostError {
  const expected = e.expected_replacements;
  if (at.length === 0) {
    // Hints only: a lossy decoding is good enough to point at the closest lines.
    const decoded = text.toString('utf8');
    const closest = closestLines(decoded, e.old_str);
    const loose = squash(decoded).includes(squash(e.old_str));
    const hint =
      e.old_str.includes('\uFFFD') && !isUtf8(text)
        ? 'the file is not valid UTF-8 and old_str contains U+FFFD (the stand-in /file/read shows for bytes it cannot decode), which is never in the file itself: choose old_str around those bytes, or edit with a command (e.g. sed)'
        : loose
          ? 'old_str matches only when whitespace is ignored: copy the exact indentation and line breaks from /file/read'
          : closest.length > 0
            ? `closest lines: ${closest.map((c) => `${c.line}: ${JSON.stringify(c.text)}`).join('; ')}; read the file and copy the text exactly`
            : 'nothing similar was found; read the file with /file/read and copy the text exactly';
    return new ToolhostError('edit_no_match', `${which.label}old_str was not found in "${shown}"${which.after}; ${hint}`, {
      path: shown,
      closest,
      ...(which.label ? { edit_index: index } : {}),
    });
  }
  // The model reads this error whole: name the first lines only, however many times old_str matched.
  const lines = lineNumbers(text, at.slice(0, MAX_LINES_LISTED));
  const named = at.length > MAX_LINES_LISTED ? `${lines.join(', ')}, …` : lines.join(', ');
  return new ToolhostError(
    'edit_count_mismatch',
    `${which.label}old_str matched ${at.length} times (lines ${named}) but expected_replacements is ${expected}${which.after}; add surrounding context so it matches exactly ${expected === 1 ? 'once' : `${expected} times`}, or pass expected_replacements: ${at.length}`,
    { path: shown, matches: at.length, lines, ...(which.label ? { edit_index: index } : {}) },
  );
}
