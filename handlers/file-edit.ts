/**
 * `POST /file/edit`: exact string replacement. When the number of matches differs from expected_replacements,
 * nothing is written and the error says where the matches are, or which lines come closest. CRLF files stay
 * CRLF. Edits of one file are serialized by the pump, so concurrent edits never lose an update.
 *
 * The edit works on bytes: old_str's UTF-8 bytes are found in the file's raw bytes and only those ranges are
 * replaced, so a file that is not valid UTF-8 (Latin-1, say) keeps every byte the edit does not replace. The
 * file is read through the fd lib/safe-fs.ts opened and checked, and replaced inside the folder it opened.
 */

import { isUtf8 } from 'node:buffer';
import { closeSync, type Stats } from 'node:fs';
import { z } from 'zod';
import { replaceInFolder } from '../lib/atomic-write.js';
import { ToolhostError } from '../lib/errors.js';
import { projectOwner } from '../lib/process/owner.js';
import { fileErrorFor, openReached, reach, readExactly } from '../lib/safe-fs.js';
import { projectId, relPath } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';

const editRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  old_str: z.string().min(1).describe('Exact text to replace, including whitespace.'),
  new_str: z.string().describe('Replacement text.'),
  expected_replacements: z.number().int().positive().default(1).describe('How many matches old_str must have.'),
});
type EditRequest = z.infer<typeof editRequest>;

const editResult = z.strictObject({
  path: z.string().describe('The file, project-relative.'),
  replacements: z.number().int(),
  lines: z.array(z.number().int()).describe('1-based line of each replacement in the new content.'),
});
type EditResult = z.infer<typeof editResult>;

/** The file_edit tool. */
export const fileEditTool = jobTool({
  name: 'file_edit',
  title: 'Edit a file',
  route: { method: 'POST', path: '/file/edit' },
  input: editRequest,
  output: editResult,
  readOnly: false,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'is_a_directory', 'binary_file', 'file_too_large', 'edit_no_match', 'edit_count_mismatch'],
  describe: ({ files }) =>
    'Replace exact text in a file. old_str must occur exactly expected_replacements times (default 1), whitespace and ' +
    'indentation included; otherwise nothing is written and the error gives the number of matches and their lines, or ' +
    'the closest lines when there is none. Read the file first and copy old_str from it with enough surrounding lines ' +
    'to be unique. CRLF files stay CRLF. Edits of one file are applied one after another, so none is lost. ' +
    `The file may be at most ${files.maxWriteBytes} bytes after the edit.`,
  examples: [{ project_id: 'demo', path: 'src/app.ts', old_str: 'const port = 3000;', new_str: 'const port = Number(process.env.PORT ?? 3000);' }],
  job: { type: 'file.edit', lane: 'files', mutates: true, lockPath: (req) => req.path, handler: fileEdit },
});

/** Start offsets of the non-overlapping occurrences of `needle`. */
function occurrences(haystack: Buffer, needle: Buffer): number[] {
  const at: number[] = [];
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) at.push(i);
  return at;
}

/** 1-based line numbers of the given (ascending) byte offsets. */
function lineNumbers(bytes: Buffer, offsets: number[]): number[] {
  const lines: number[] = [];
  let line = 1;
  let pos = 0;
  for (const off of offsets) {
    for (let nl = bytes.indexOf(10, pos); nl !== -1 && nl < off; nl = bytes.indexOf(10, nl + 1)) {
      line++;
      pos = nl + 1;
    }
    lines.push(line);
  }
  return lines;
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

function bigrams(s: string): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < s.length - 1; i++) {
    const g = s.slice(i, i + 2);
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/** Dice similarity of two strings' bigrams, 0..1. */
function similarity(a: string, b: string): number {
  if (a === b) return 1;
  if (a.length < 2 || b.length < 2) return 0;
  const x = bigrams(a);
  let shared = 0;
  for (const [g, n] of bigrams(b)) {
    const k = x.get(g);
    if (k) shared += Math.min(k, n);
  }
  return (2 * shared) / (a.length + b.length - 2);
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

/** The file's bytes, read through its fd; refused when too large to edit or binary. */
function readForEdit(fd: number, st: Stats, shown: string, maxBytes: number): Buffer {
  if (st.size > maxBytes) {
    throw new ToolhostError('file_too_large', `"${shown}" is ${st.size} bytes, more than files.maxWriteBytes; edit it with a command (e.g. sed) instead`);
  }
  const raw = readExactly(fd, st.size);
  if (raw.subarray(0, 8000).includes(0)) {
    throw new ToolhostError('binary_file', `"${shown}" is a binary file; it cannot be edited as text`, { path: shown });
  }
  return raw;
}

/** Replaces old_str by new_str in a regular file of the project, expected_replacements times exactly. */
async function fileEdit(req: EditRequest, ctx: HandlerContext): Promise<EditResult> {
  try {
    const at = reach(ctx.root, req.path);
    try {
      const file = openReached(at);
      let raw: Buffer;
      try {
        raw = readForEdit(file.fd, file.stat, file.shown, ctx.config.files.maxWriteBytes);
      } finally {
        closeSync(file.fd);
      }
      const result = edit(raw, req, file.shown, ctx.config.files.maxWriteBytes);
      replaceInFolder(at.dirFd, at.name, result.updated, { previous: at.stat, owner: projectOwner(ctx.config, ctx.projectId) });
      return { path: at.rel, replacements: result.lines.length, lines: result.lines };
    } finally {
      at.close();
    }
  } catch (err) {
    // System errors name server paths; what the caller sees names the project-relative path only.
    throw fileErrorFor(ctx.root, req.path, err);
  }
}

/** The edited bytes and the 1-based lines of the replacements in them; throws when the match count is wrong. */
function edit(raw: Buffer, req: EditRequest, shown: string, maxBytes: number): { updated: Buffer; lines: number[] } {
  // Agents send LF; a CRLF file keeps its endings.
  const crlf = raw.includes('\r\n') && !req.old_str.includes('\r');
  const oldBytes = Buffer.from(crlf ? req.old_str.replace(/\n/g, '\r\n') : req.old_str);
  const newBytes = Buffer.from(crlf ? req.new_str.replace(/\r?\n/g, '\r\n') : req.new_str);

  const at = occurrences(raw, oldBytes);
  const expected = req.expected_replacements;
  if (at.length === 0) {
    // Hints only: a lossy decoding is good enough to point at the closest lines.
    const text = raw.toString('utf8');
    const closest = closestLines(text, req.old_str);
    const loose = squash(text).includes(squash(req.old_str));
    const hint =
      req.old_str.includes('\uFFFD') && !isUtf8(raw)
        ? 'the file is not valid UTF-8 and old_str contains U+FFFD (the stand-in /file/read shows for bytes it cannot decode), which is never in the file itself: choose old_str around those bytes, or edit with a command (e.g. sed)'
        : loose
          ? 'old_str matches only when whitespace is ignored: copy the exact indentation and line breaks from /file/read'
          : closest.length > 0
            ? `closest lines: ${closest.map((c) => `${c.line}: ${JSON.stringify(c.text)}`).join('; ')}; read the file and copy the text exactly`
            : 'nothing similar was found; read the file with /file/read and copy the text exactly';
    throw new ToolhostError('edit_no_match', `old_str was not found in "${shown}"; ${hint}`, { path: shown, closest });
  }
  if (at.length !== expected) {
    const lines = lineNumbers(raw, at);
    throw new ToolhostError(
      'edit_count_mismatch',
      `old_str matched ${at.length} times (lines ${lines.join(', ')}) but expected_replacements is ${expected}; add surrounding context so it matches exactly ${expected === 1 ? 'once' : `${expected} times`}, or pass expected_replacements: ${at.length}`,
      { path: shown, matches: at.length, lines },
    );
  }
  const updatedLength = raw.length + at.length * (newBytes.length - oldBytes.length);
  if (updatedLength > maxBytes) {
    throw new ToolhostError('file_too_large', `the edited file would exceed files.maxWriteBytes (${maxBytes})`);
  }
  const updated = spliceAll(raw, at, oldBytes.length, newBytes);
  const shift = newBytes.length - oldBytes.length;
  return {
    updated,
    lines: lineNumbers(
      updated,
      at.map((off, i) => off + i * shift),
    ),
  };
}
