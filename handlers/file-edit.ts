/**
 * `POST /file/edit`: exact string replacement. When the number of matches differs from expected_replacements,
 * nothing is written and the error says where the matches are, or which lines come closest. CRLF files stay
 * CRLF. Edits of one file are serialized by the pump, so concurrent edits never lose an update.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { ToolhostError } from '../lib/errors.js';
import { projectRelative } from '../lib/paths.js';
import type { EditRequest } from '../lib/schemas.js';
import type { Handler } from './context.js';
import { statFile } from './file-read.js';
import { writeTarget } from './file-write.js';

/** The JSON answer of /file/edit. */
export interface EditResult {
  path: string;
  replacements: number;
  /** 1-based line of each replacement in the new content. */
  lines: number[];
}

/** Start offsets of the non-overlapping occurrences of `needle`. */
function occurrences(haystack: string, needle: string): number[] {
  const at: number[] = [];
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) at.push(i);
  return at;
}

/** 1-based line numbers of the given (ascending) offsets. */
function lineNumbers(text: string, offsets: number[]): number[] {
  const lines: number[] = [];
  let line = 1;
  let pos = 0;
  for (const off of offsets) {
    for (let nl = text.indexOf('\n', pos); nl !== -1 && nl < off; nl = text.indexOf('\n', nl + 1)) {
      line++;
      pos = nl + 1;
    }
    lines.push(line);
  }
  return lines;
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
  const probe = needle.split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
  const scored = text
    .split('\n')
    .map((t, i) => ({ line: i + 1, text: t.replace(/\r$/, ''), score: similarity(probe, t.trim()) }))
    .filter((c) => c.score >= 0.5)
    .sort((a, b) => b.score - a.score || a.line - b.line)
    .slice(0, 3);
  return scored.map(({ line, text: t }) => ({ line, text: t.length > 200 ? `${t.slice(0, 200)}…` : t }));
}

const squash = (s: string): string => s.replace(/\s+/g, ' ').trim();

export const fileEdit: Handler<EditRequest, EditResult> = async (req, ctx) => {
  const target = await writeTarget(ctx.root, req.path);
  const st = statFile(target, req.path);
  if (st.size > ctx.config.files.maxWriteBytes) {
    throw new ToolhostError('file_too_large', `"${req.path}" is ${st.size} bytes, more than files.maxWriteBytes; edit it with a command (e.g. sed) instead`);
  }
  const raw = readFileSync(target);
  if (raw.subarray(0, 8000).includes(0)) {
    throw new ToolhostError('binary_file', `"${req.path}" is a binary file; it cannot be edited as text`, { path: req.path });
  }
  const text = raw.toString('utf8');
  // Agents send LF; a CRLF file keeps its endings.
  const crlf = text.includes('\r\n') && !req.old_str.includes('\r');
  const oldStr = crlf ? req.old_str.replace(/\n/g, '\r\n') : req.old_str;
  const newStr = crlf ? req.new_str.replace(/\r?\n/g, '\r\n') : req.new_str;

  const at = occurrences(text, oldStr);
  const expected = req.expected_replacements;
  if (at.length === 0) {
    const closest = closestLines(text, req.old_str);
    const loose = squash(text).includes(squash(req.old_str));
    const hint = loose
      ? 'old_str matches only when whitespace is ignored: copy the exact indentation and line breaks from /file/read'
      : closest.length > 0
        ? `closest lines: ${closest.map((c) => `${c.line}: ${JSON.stringify(c.text)}`).join('; ')}; read the file and copy the text exactly`
        : 'nothing similar was found; read the file with /file/read and copy the text exactly';
    throw new ToolhostError('edit_no_match', `old_str was not found in "${req.path}"; ${hint}`, { path: req.path, closest });
  }
  if (at.length !== expected) {
    const lines = lineNumbers(text, at);
    throw new ToolhostError(
      'edit_count_mismatch',
      `old_str matched ${at.length} times (lines ${lines.join(', ')}) but expected_replacements is ${expected}; add surrounding context so it matches exactly ${expected === 1 ? 'once' : `${expected} times`}, or pass expected_replacements: ${at.length}`,
      { path: req.path, matches: at.length, lines },
    );
  }
  const updated = text.split(oldStr).join(newStr);
  if (Buffer.byteLength(updated) > ctx.config.files.maxWriteBytes) {
    throw new ToolhostError('file_too_large', `the edited file would exceed files.maxWriteBytes (${ctx.config.files.maxWriteBytes})`);
  }
  await writeFileAtomic(target, updated);
  const shift = newStr.length - oldStr.length;
  return {
    path: projectRelative(ctx.root, target),
    replacements: at.length,
    lines: lineNumbers(updated, at.map((off, i) => off + i * shift)),
  };
};
