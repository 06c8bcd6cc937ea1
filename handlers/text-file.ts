/**
 * What file_edit and file_insert share: a text file changed in place, byte for byte. The file is read through the
 * fd lib/safe-fs.ts opened and checked, changed as raw bytes (so a file that is not valid UTF-8 keeps every byte
 * the change does not touch), and replaced inside the folder it was opened in. Each tool answers with numbered
 * snippets of the regions it changed, `cat -n` style, so the model sees the result without reading the file again.
 */
import { closeSync, type Stats } from 'node:fs';
import { z } from 'zod';
import { replaceInFolder } from '../lib/atomic-write.js';
import { ToolhostError } from '../lib/errors.js';
import { projectOwner } from '../lib/process/owner.js';
import { cutChars, numberedLine } from '../lib/read/numbered.js';
import { fileErrorFor, openReached, reach, readExactly } from '../lib/safe-fs.js';
import type { HandlerContext } from '../lib/tool.js';

/** Lines of unchanged text shown before and after each changed region. */
export const SNIPPET_CONTEXT = 3;

/** A changed region of the new file, numbered. */
export const snippet = z.strictObject({
  start_line: z.number().int().describe('1-based first line shown.'),
  end_line: z.number().int().describe('Last line shown (inclusive).'),
  text: z.string().describe('The lines, each as "<line number>\\t<text>" (cat -n), with a few lines of context.'),
});
export type Snippet = z.infer<typeof snippet>;

/** The snippet fields of an edit's or an insert's answer. */
export const snippetFields = {
  snippets: z.array(snippet).describe('Every changed region of the new file with a few lines around it, numbered like cat -n.'),
  snippets_cut: z
    .number()
    .int()
    .describe(
      'Changed regions left out of snippets (over the output budget; the rest of a region cut short counts as one); read the file from the line after the last snippet to see them.',
    ),
};

/** A byte range [start, end) of the new content that a change wrote. */
export type Range = readonly [start: number, end: number];

/** What a change computed: the new bytes, and where in them it wrote. */
export interface Rewrite {
  updated: Buffer;
  ranges: Range[];
}

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

/**
 * Reads a regular file of the project, has `change` compute its new bytes, and replaces it (keeping its mode and
 * owner). Nothing is written when `change` throws or leaves the bytes as they were (`edit_no_op`).
 */
export async function rewriteFile(
  path: string,
  ctx: HandlerContext,
  change: (raw: Buffer, shown: string) => Rewrite,
): Promise<{ rel: string; rewrite: Rewrite; snippets: Snippet[]; snippetsCut: number }> {
  const maxBytes = ctx.config.files.maxWriteBytes;
  try {
    const at = reach(ctx.root, path);
    try {
      const file = openReached(at);
      let raw: Buffer;
      try {
        raw = readForEdit(file.fd, file.stat, file.shown, maxBytes);
      } finally {
        closeSync(file.fd);
      }
      const rewrite = change(raw, file.shown);
      if (rewrite.updated.length > maxBytes) {
        throw new ToolhostError('file_too_large', `the changed file would exceed files.maxWriteBytes (${maxBytes})`);
      }
      if (rewrite.updated.equals(raw)) {
        throw new ToolhostError('edit_no_op', `the change leaves "${file.shown}" exactly as it was; nothing was written`, { path: file.shown });
      }
      replaceInFolder(at.dirFd, at.name, rewrite.updated, { previous: at.stat, owner: projectOwner(ctx.config, ctx.projectId) });
      const shown = snippetsOf(rewrite.updated, rewrite.ranges, ctx.config.budgets);
      return { rel: at.rel, rewrite, snippets: shown.snippets, snippetsCut: shown.cut };
    } finally {
      at.close();
    }
  } catch (err) {
    // System errors name server paths; what the caller sees names the project-relative path only.
    throw fileErrorFor(ctx.root, path, err);
  }
}

/** Whether a file's text uses CRLF line endings, so text sent with LF must be converted to fit. */
export function usesCrlf(raw: Buffer): boolean {
  return raw.includes('\r\n');
}

/** 1-based line numbers of the given (ascending) byte offsets. */
export function lineNumbers(bytes: Buffer, offsets: readonly number[]): number[] {
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

/** Start offsets of the file's lines (a final line break starts no line). */
export function lineStarts(bytes: Buffer): number[] {
  const starts = bytes.length === 0 ? [] : [0];
  for (let nl = bytes.indexOf(10); nl !== -1 && nl + 1 < bytes.length; nl = bytes.indexOf(10, nl + 1)) starts.push(nl + 1);
  return starts;
}

/**
 * The changed regions as numbered snippets: each range's lines with {@link SNIPPET_CONTEXT} lines around it,
 * overlapping ones merged, long lines cut at `lineChars`, at most `outputChars` characters in all (the regions
 * left out are counted in `cut`).
 */
function snippetsOf(bytes: Buffer, ranges: readonly Range[], budget: { outputChars: number; lineChars: number }): { snippets: Snippet[]; cut: number } {
  const starts = lineStarts(bytes);
  const total = starts.length;
  if (total === 0) return { snippets: [], cut: 0 };
  const lineOf = (off: number): number => {
    // The last line starting at or before `off` (binary search over the line starts).
    let lo = 0;
    let hi = total - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] ?? 0) <= off) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const spans: [number, number][] = [];
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1])) {
    const from = Math.max(1, lineOf(start) - SNIPPET_CONTEXT);
    const to = Math.min(total, lineOf(Math.max(start, end - 1)) + SNIPPET_CONTEXT);
    const last = spans.at(-1);
    if (last && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else spans.push([from, to]);
  }
  const numbered = (n: number): string => {
    const text = bytes
      .subarray(starts[n - 1], n < total ? starts[n] : bytes.length)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    return numberedLine(n, cutChars(text, budget.lineChars), text.length > budget.lineChars);
  };
  const snippets: Snippet[] = [];
  let used = 0;
  for (const [from, to] of spans) {
    // Lines are numbered only while they fit: one edit can write millions of lines, and the answer stays within
    // the budget. The first region is cut short rather than left out (it always shows a line); a later region
    // that does not fit whole is left out, so what is shown ends where reading on starts.
    const lines: string[] = [];
    let size = 0;
    for (let n = from; n <= to; n++) {
      const line = numbered(n);
      const add = line.length + (lines.length > 0 ? 1 : 0);
      if (used + size + add > budget.outputChars && (snippets.length > 0 || lines.length > 0)) break;
      lines.push(line);
      size += add;
    }
    if (lines.length === 0 || (snippets.length > 0 && lines.length < to - from + 1)) break;
    used += size;
    snippets.push({ start_line: from, end_line: from + lines.length - 1, text: lines.join('\n') });
    if (lines.length < to - from + 1) return { snippets, cut: spans.length - snippets.length + 1 };
  }
  return { snippets, cut: spans.length - snippets.length };
}

/**
 * The snippets as a model reads them, one after another, within `maxChars`; what does not fit is named in one
 * line saying how to read it.
 */
export function snippetsForModel(path: string, snippets: readonly Snippet[], cut: number, maxChars: number): string {
  const parts: string[] = [];
  let used = 0;
  let left = cut;
  let firstLeft: number | undefined;
  for (const s of snippets) {
    if (parts.length > 0 && used + s.text.length > maxChars) {
      left += snippets.length - parts.length;
      firstLeft ??= s.start_line;
      break;
    }
    parts.push(s.text);
    used += s.text.length + 4;
  }
  const out = parts.join('\n...\n');
  if (left === 0) return out;
  // What was left out comes after what is shown: the first region not shown, or else (regions the handler left
  // out, or the rest of one it cut short) the line after the last one shown.
  const lastShown = snippets[parts.length - 1]?.end_line;
  firstLeft ??= lastShown === undefined ? undefined : lastShown + 1;
  const from = firstLeft === undefined ? '' : `, start_line: ${firstLeft}`;
  return `${out}\n[${left} more changed region${left === 1 ? '' : 's'} not shown; read them with file_read {path: "${path}"${from}}]`;
}
