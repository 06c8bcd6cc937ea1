/**
 * Applying an update's hunks to a file's text, in memory. Hunks apply in order, each searched for after the
 * previous one (codex's compute_replacements): first its `@@` anchors, one after another, then its context and
 * removed lines, at the least fuzz that finds them (lib/patch/seek.ts). Context lines keep the file's own text
 * (so a fuzzy match never rewrites the quotes or spaces it tolerated); removed lines go; added lines are written
 * as the patch has them, with the file's line ending.
 *
 * A hunk is never placed where it was not found. A hunk that only adds lines goes after its last `@@` anchor, at
 * the end when it says `*** End of File`, or into an empty file; with neither context nor anchor it is refused
 * (codex appends such a hunk at the end of the file: openai/codex#30946). A failure names the file, the hunk,
 * and the lines of the file that come closest, so the model can retry.
 */
import { ToolhostError } from '../errors.js';
import { closestWindow, countAt, FUZZ_WORDS, type Fuzz, Haystack, seek, seekAnchor, seekIgnoringIndent } from './seek.js';
import type { Applied, Hunk, HunkLine } from './types.js';

/** A file's text as lines, each with its own line ending ('' for a last line without one). */
interface Lines {
  text: string[];
  eol: string[];
}

function splitLines(s: string): Lines {
  const text: string[] = [];
  const eol: string[] = [];
  let pos = 0;
  for (let nl = s.indexOf('\n'); nl !== -1; nl = s.indexOf('\n', pos)) {
    const cr = nl > pos && s.charCodeAt(nl - 1) === 13;
    text.push(s.slice(pos, cr ? nl - 1 : nl));
    eol.push(cr ? '\r\n' : '\n');
    pos = nl + 1;
  }
  if (pos < s.length) {
    text.push(s.slice(pos));
    eol.push('');
  }
  return { text, eol };
}

/** Longest line a message quotes. */
const QUOTE_CHARS = 200;
/** Most hunk lines, and most file lines, a failure shows. */
const SHOWN_LINES = 12;

const cut = (s: string): string => (s.length > QUOTE_CHARS ? `${s.slice(0, QUOTE_CHARS)}…` : s);

/** Where one hunk goes: `remove` lines from `start`, replaced by `lines` (eol undefined: the file's usual one). */
interface Edit {
  start: number;
  remove: number;
  lines: { text: string; eol: string | undefined }[];
}

/**
 * The new text of a file after `hunks`; `path` names it in notes and errors. Nothing of the file is assumed: an
 * empty text is an empty (or new) file.
 *
 * @throws patch_failed for the first hunk that cannot be placed, with the closest lines of the file.
 */
export function applyHunks(original: string, hunks: readonly Hunk[], path: string): Applied {
  const file = splitLines(original);
  const hay = new Haystack(file.text);
  const crlf = file.eol.filter((e) => e === '\r\n').length;
  const usual = crlf > file.eol.length - crlf - (file.eol.at(-1) === '' ? 1 : 0) ? '\r\n' : '\n';
  const notes: string[] = [];
  const edits: Edit[] = [];
  let cursor = 0;
  hunks.forEach((hunk, h) => {
    const label = `${path}: hunk ${h + 1}${hunks.length > 1 ? ` of ${hunks.length}` : ''}`;
    const fail = (why: string, pattern: readonly string[], details: Record<string, unknown> = {}): ToolhostError =>
      failure({ path, hunk, index: h, count: hunks.length, why, pattern, lines: file.text, ...details });
    const before = cursor;
    let missed: string | undefined;
    for (const anchor of hunk.anchors) {
      const found = seekAnchor(hay, anchor, cursor);
      if (!found) {
        missed = anchor;
        break;
      }
      if (found.fuzz > 0) notes.push(`${label}: its @@ line was found at line ${found.index + 1} only by ${FUZZ_WORDS[2]}`);
      cursor = found.index + 1;
    }
    let body: readonly HunkLine[] = hunk.lines;
    let old = body.filter((l) => l.op !== '+').map((l) => l.text);
    if (old.length === 0) {
      let at: number;
      if (missed !== undefined)
        throw fail(
          `its @@ line ${JSON.stringify(cut(missed))} was not found${before > 0 ? ` after line ${before}` : ''}, and a hunk that only adds lines has nothing else to place it by`,
          [missed],
          { anchor: missed },
        );
      if (hunk.endOfFile) at = file.text.length;
      else if (hunk.anchors.length > 0) at = cursor;
      else if (file.text.length === 0) at = 0;
      else {
        throw fail(
          'it only adds lines and has neither context lines nor an @@ line, so there is no telling where they go (they are not appended to the end); add the lines before the insertion as context (" " lines), or "@@ <the line they follow>", or end the hunk with "*** End of File" to append',
          [],
        );
      }
      edits.push({ start: at, remove: 0, lines: body.map((l) => ({ text: l.text, eol: undefined })) });
      cursor = at;
      return;
    }
    let found = missed === undefined ? seek(hay, old, cursor, hunk.endOfFile) : undefined;
    if (missed !== undefined) {
      // An anchor that is not in the file is advisory (as in the V4A reference) only when the hunk's own lines
      // leave no doubt: they occur exactly once after the previous hunk.
      const loose = seek(hay, old, before, false);
      if (loose && countAt(hay, old, before, loose.fuzz) === 1) {
        found = loose;
        notes.push(
          `${label}: its @@ line ${JSON.stringify(cut(missed))} is not in the file; placed by its own lines, which occur once (line ${loose.index + 1})`,
        );
      } else {
        throw fail(`its @@ line ${JSON.stringify(cut(missed))} was not found${before > 0 ? ` after line ${before}` : ''}`, [missed, ...old], {
          anchor: missed,
        });
      }
    }
    if (!found && body.at(-1)?.op === ' ' && body.at(-1)?.text === '') {
      // A hunk that ends in empty context lines (the blank line before the next @@, or the file's final newline
      // written as a line) is tried again without them, as codex does.
      let end = body.length;
      while (end > 0 && body[end - 1]?.op === ' ' && body[end - 1]?.text === '') end--;
      const shorter = body.slice(0, end);
      const shorterOld = shorter.filter((l) => l.op !== '+').map((l) => l.text);
      const retry = shorterOld.length > 0 ? seek(hay, shorterOld, cursor, hunk.endOfFile) : undefined;
      if (retry) {
        found = retry;
        body = shorter;
        old = shorterOld;
      }
    }
    if (!found) throw notFound(fail, hay, old, cursor, h);
    if (found.fuzz > 0) notes.push(`${label} matched at line ${found.index + 1} only by ${FUZZ_WORDS[found.fuzz as Exclude<Fuzz, 0>]}`);
    if (hunk.endOfFile && !found.atEnd) notes.push(`${label} says *** End of File but its lines are at line ${found.index + 1}, not at the end; applied there`);
    let fi = found.index;
    const lines: Edit['lines'] = [];
    for (const l of body) {
      if (l.op === ' ') {
        lines.push({ text: file.text[fi] as string, eol: file.eol[fi] });
        fi++;
      } else if (l.op === '-') fi++;
      else lines.push({ text: l.text, eol: undefined });
    }
    edits.push({ start: found.index, remove: old.length, lines });
    cursor = found.index + old.length;
  });
  return { text: assemble(file, edits, usual), notes };
}

/** The error of a hunk whose lines were not found after `cursor`, with the likeliest reason. */
function notFound(
  fail: (why: string, pattern: readonly string[], details?: Record<string, unknown>) => ToolhostError,
  hay: Haystack,
  old: readonly string[],
  cursor: number,
  index: number,
): ToolhostError {
  const n = `${old.length} context and removed line${old.length === 1 ? '' : 's'}`;
  const earlier = cursor > 0 ? seek(hay, old, 0, false) : undefined;
  if (earlier && earlier.index < cursor) {
    return fail(
      `its ${n} are at line ${earlier.index + 1}, before where hunk ${index} ended (line ${cursor}); hunks must come in file order and must not overlap: merge or reorder them`,
      old,
    );
  }
  const indent = seekIgnoringIndent(hay, old, cursor);
  if (indent !== undefined) {
    return fail(`its ${n} match at line ${indent + 1} only if indentation is ignored; copy the file's indentation exactly`, old);
  }
  return fail(`its ${n} were not found${cursor > 0 ? ` after line ${cursor}` : ''}`, old);
}

/** The text after the edits (ascending, not overlapping); line endings follow the file's, and so does its last line. */
function assemble(file: Lines, edits: readonly Edit[], usual: string): string {
  const out: { text: string; eol: string | undefined }[] = [];
  let pos = 0;
  for (const e of edits) {
    for (; pos < e.start; pos++) out.push({ text: file.text[pos] as string, eol: file.eol[pos] });
    out.push(...e.lines);
    pos = e.start + e.remove;
  }
  for (; pos < file.text.length; pos++) out.push({ text: file.text[pos] as string, eol: file.eol[pos] });
  // A file that did not end with a line break still does not; any other line gets one.
  const noFinalBreak = file.eol.at(-1) === '';
  return out.map((l, i) => l.text + (noFinalBreak && i === out.length - 1 ? '' : l.eol || usual)).join('');
}

interface FailureFacts {
  path: string;
  hunk: Hunk;
  index: number;
  count: number;
  why: string;
  /** The lines that were looked for, to find the closest ones. */
  pattern: readonly string[];
  lines: readonly string[];
  anchor?: string;
}

/** The patch_failed error: which file and hunk, why, the hunk's lines, and the closest lines of the file. */
function failure(f: FailureFacts): ToolhostError {
  const which = `hunk ${f.index + 1}${f.count > 1 ? ` of ${f.count}` : ''}`;
  const expected = [...f.hunk.anchors.map((a) => `@@ ${a}`), ...f.hunk.lines.filter((l) => l.op !== '+').map((l) => `${l.op}${l.text}`)];
  const startAt = closestWindow(f.lines, f.pattern);
  const closest =
    startAt === undefined
      ? []
      : f.lines
          .slice(Math.max(0, startAt - 1), Math.min(f.lines.length, startAt + Math.max(f.pattern.length, 1) + 1))
          .slice(0, SHOWN_LINES)
          .map((text, i) => ({ line: Math.max(0, startAt - 1) + i + 1, text: cut(text) }));
  const parts = [`could not apply ${which} to "${f.path}" (patch line ${f.hunk.at}): ${f.why}.`];
  if (expected.length > 0) {
    parts.push(
      `The hunk expects:\n${expected
        .slice(0, SHOWN_LINES)
        .map((l) => `  ${cut(l)}`)
        .join('\n')}${expected.length > SHOWN_LINES ? '\n  …' : ''}`,
    );
  }
  if (closest.length > 0) {
    parts.push(
      `Closest lines in the file (${closest[0]?.line}-${closest.at(-1)?.line}):\n${closest.map((c) => `${String(c.line).padStart(6)}\t${c.text}`).join('\n')}`,
    );
    const first = firstDifference(f.lines, f.pattern, startAt as number);
    if (first) parts.push(first);
  } else if (f.pattern.length > 0) {
    parts.push('No lines of the file are similar.');
  }
  parts.push('Nothing was written. Read the file again and resend the patch with its context copied exactly.');
  return new ToolhostError('patch_failed', parts.join('\n'), {
    path: f.path,
    hunk: f.index + 1,
    hunks: f.count,
    patch_line: f.hunk.at,
    expected: expected.slice(0, SHOWN_LINES).map(cut),
    closest,
    ...(f.anchor !== undefined ? { anchor: f.anchor } : {}),
  });
}

/** The first line of the closest window that differs from the pattern, said plainly. */
function firstDifference(lines: readonly string[], pattern: readonly string[], start: number): string | undefined {
  for (let j = 0; j < pattern.length && start + j < lines.length; j++) {
    const have = lines[start + j] as string;
    const want = pattern[j] as string;
    if (have !== want)
      return `First difference, line ${start + j + 1}: the file has ${JSON.stringify(cut(have))} where the hunk has ${JSON.stringify(cut(want))}.`;
  }
  return undefined;
}
