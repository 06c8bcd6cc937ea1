/**
 * Parsers for the two patch grammars models are trained on:
 *
 * - the Codex envelope (openai/codex codex-rs/apply-patch, parser.rs):
 *
 *       Patch      := "*** Begin Patch" NL { FileOp } "*** End Patch" NL?
 *       FileOp     := AddFile | DeleteFile | UpdateFile
 *       AddFile    := "*** Add File: " path NL { "+" line NL }
 *       DeleteFile := "*** Delete File: " path NL
 *       UpdateFile := "*** Update File: " path NL [ "*** Move to: " path NL ] { Hunk }
 *       Hunk       := { "@@" [ " " anchor ] NL } { (" " | "-" | "+") line NL } [ "*** End of File" NL ]
 *
 * - the V4A diff of an OpenAI `apply_patch_call` operation (openai-agents-python apply_diff.py): an
 *   `update_file` diff is the hunks of an UpdateFile on their own; a `create_file` diff is "+" lines only.
 *
 * As lenient as the references where leniency cannot change what is applied: markers may carry surrounding
 * whitespace, CRLF patches are read as LF, the text may lack its final newline or come wrapped in a `<<'EOF'`
 * heredoc, the first hunk may omit its `@@`, `@@` lines stack (class, then method), an empty line inside a hunk
 * is an empty context line, and a unified-diff header (`@@ -12,7 +12,8 @@`) counts as a bare `@@`. A patch without
 * its `*** End Patch` is refused: it may have been cut short.
 */
import { ToolhostError } from '../errors.js';
import type { FileOp, Hunk, HunkLine } from './types.js';

const BEGIN = '*** Begin Patch';
const END = '*** End Patch';
const ADD = '*** Add File:';
const DELETE = '*** Delete File:';
const UPDATE = '*** Update File:';
const MOVE = '*** Move to:';
const EOF_MARKER = '*** End of File';
/** A unified-diff hunk header, which models sometimes write instead of a bare `@@`. */
const UNIFIED_HEADER = /^-\d+(?:,\d+)? \+\d+(?:,\d+)? @@/;

/** A patch_invalid error: where (1-based line of `what`) and what was expected there. */
function invalid(what: string, line: number, message: string): ToolhostError {
  return new ToolhostError('patch_invalid', `${what} line ${line}: ${message}; nothing was written`, { line });
}

/** The lines of a patch text: CRLF read as LF, a final newline not counted. */
function linesOf(text: string): string[] {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines;
}

const show = (line: string): string => JSON.stringify(line.length > 120 ? `${line.slice(0, 120)}…` : line);

/** The header (Add/Delete/Update) a line is, with its path; undefined for any other line. */
function fileHeader(line: string): { kind: FileOp['kind']; path: string } | undefined {
  const t = line.trim();
  for (const [marker, kind] of [
    [ADD, 'add'],
    [DELETE, 'delete'],
    [UPDATE, 'update'],
  ] as const) {
    if (t.startsWith(marker)) return { kind, path: t.slice(marker.length).trim() };
  }
  return undefined;
}

/** The anchor of an `@@` line ('' for a bare one), or undefined when the line is not one. */
function anchorOf(line: string): string | undefined {
  if (line.trim() === '@@') return '';
  if (!line.startsWith('@@ ')) return undefined;
  const rest = line.slice(3);
  return UNIFIED_HEADER.test(rest.trim()) || rest.trim() === '' ? '' : rest;
}

/**
 * Reads the hunks of one update, from `lines[from]` up to the next file header or the end. `what` names the text in
 * messages; `offset` turns an index into a 1-based line of it. The first hunk may start without `@@`.
 */
function parseHunks(lines: readonly string[], from: number, what: string, offset: number): { hunks: Hunk[]; next: number } {
  const hunks: Hunk[] = [];
  let i = from;
  let current: Hunk | undefined;
  const close = (): void => {
    if (current === undefined) return;
    if (current.lines.length === 0) throw invalid(what, current.at, 'this hunk has no lines; after @@ give context (" "), removed ("-") and added ("+") lines');
    hunks.push(current);
    current = undefined;
  };
  for (; i < lines.length; i++) {
    const line = lines[i] as string;
    const t = line.trim();
    if (fileHeader(line) || t === END) break;
    const anchor = anchorOf(line);
    if (anchor !== undefined) {
      // Stacked @@ lines (class, then method) narrow the same hunk until its first body line.
      if (current && current.lines.length > 0) close();
      current ??= { anchors: [], lines: [], endOfFile: false, at: i + offset };
      if (anchor.trim() !== '') current.anchors.push(anchor);
      continue;
    }
    if (t === EOF_MARKER) {
      if (!current || current.lines.length === 0) throw invalid(what, i + offset, '*** End of File must follow the lines of a hunk');
      current.endOfFile = true;
      close();
      continue;
    }
    if (t.startsWith('***')) {
      throw invalid(
        what,
        i + offset,
        `unexpected ${show(line)}; expected a hunk line, "*** End of File", or a file header (*** Add File:, *** Update File:, *** Delete File:)`,
      );
    }
    if (current === undefined) {
      // Blank lines between hunks are skipped, as codex does.
      if (t === '') continue;
      if (hunks.length > 0) throw invalid(what, i + offset, `expected "@@" to start the next hunk, got ${show(line)}`);
      current = { anchors: [], lines: [], endOfFile: false, at: i + offset };
    }
    current.lines.push(hunkLine(line, what, i + offset));
  }
  close();
  return { hunks, next: i };
}

/** One body line of a hunk. An empty (or whitespace-only) line is an empty context line. */
function hunkLine(line: string, what: string, at: number): HunkLine {
  const op = line[0];
  if (op === ' ' || op === '-' || op === '+') return { op, text: line.slice(1) };
  if (line.trim() === '') return { op: ' ', text: '' };
  throw invalid(
    what,
    at,
    `${show(line)} has no prefix; every line of a hunk starts with " " (context, unchanged), "-" (removed) or "+" (added), and a context line keeps its leading space`,
  );
}

/** Strips a `<<'EOF'` heredoc wrapper (models write `apply_patch <<'EOF' ... EOF` and send its inside whole). */
function unwrapHeredoc(lines: string[]): string[] {
  const first = lines[0]?.trim();
  const last = lines.at(-1)?.trim();
  if (lines.length >= 4 && (first === '<<EOF' || first === "<<'EOF'" || first === '<<"EOF"') && last?.endsWith('EOF')) return lines.slice(1, -1);
  return lines;
}

/** Parses a Codex envelope into its file operations. @throws patch_invalid, naming the line and what was expected. */
export function parseEnvelope(text: string): FileOp[] {
  const what = 'patch';
  let lines = linesOf(text);
  // Surrounding blank lines are not part of the patch (codex trims the text).
  let start = 0;
  while (start < lines.length && lines[start]?.trim() === '') start++;
  let end = lines.length;
  while (end > start && lines[end - 1]?.trim() === '') end--;
  lines = unwrapHeredoc(lines.slice(start, end));
  const offset = start + 1 + (lines.length < end - start ? 1 : 0);
  if (lines[0]?.trim() !== BEGIN) {
    throw invalid(what, offset, `expected "${BEGIN}" as the first line, got ${lines.length === 0 ? 'an empty patch' : show(lines[0] as string)}`);
  }
  if (lines.length < 2 || lines.at(-1)?.trim() !== END) {
    throw invalid(what, lines.length - 1 + offset, `expected "${END}" as the last line (the patch may have been cut short); end the patch with it`);
  }
  const body = lines.slice(0, -1);
  const ops: FileOp[] = [];
  let i = 1;
  while (i < body.length) {
    const line = body[i] as string;
    if (line.trim() === '') {
      i++;
      continue;
    }
    const head = fileHeader(line);
    if (!head) {
      throw invalid(
        what,
        i + offset,
        `expected a file header ("*** Add File: <path>", "*** Update File: <path>" or "*** Delete File: <path>"), got ${show(line)}`,
      );
    }
    if (head.path === '') throw invalid(what, i + offset, 'the file header names no path');
    const at = i + offset;
    i++;
    if (head.kind === 'delete') {
      ops.push({ kind: 'delete', path: head.path, at });
    } else if (head.kind === 'add') {
      const content: string[] = [];
      for (; i < body.length && (body[i] as string).startsWith('+'); i++) content.push(`${(body[i] as string).slice(1)}\n`);
      const stray = body[i];
      if (stray !== undefined && stray.trim() !== '' && !fileHeader(stray)) {
        throw invalid(what, i + offset, `every line of an added file starts with "+" (an empty line is "+"), got ${show(stray)}`);
      }
      ops.push({ kind: 'add', path: head.path, content: content.join(''), at });
    } else {
      let moveTo: string | undefined;
      const next = body[i]?.trim();
      if (next?.startsWith(MOVE)) {
        moveTo = next.slice(MOVE.length).trim();
        if (moveTo === '') throw invalid(what, i + offset, '"*** Move to:" names no path');
        i++;
      }
      const parsed = parseHunks(body, i, what, offset);
      if (parsed.hunks.length === 0) throw invalid(what, at, `"*** Update File: ${head.path}" has no hunks; give at least one (@@ then its lines)`);
      ops.push({ kind: 'update', path: head.path, moveTo, hunks: parsed.hunks, at });
      i = parsed.next;
    }
  }
  if (ops.length === 0)
    throw invalid(what, offset, 'the patch has no file operations; put *** Add File, *** Update File or *** Delete File sections between its markers');
  return ops;
}

/** Parses the V4A diff of an `update_file` operation into its hunks. `what` names it in messages (e.g. "operations[0].diff"). */
export function parseUpdateDiff(diff: string, what: string): Hunk[] {
  const lines = linesOf(diff);
  // An envelope's end marker after the hunks is tolerated (the reference stops there); anything else is not.
  let end = lines.length;
  while (end > 0 && lines[end - 1]?.trim() === '') end--;
  if (end > 0 && lines[end - 1]?.trim() === END) end--;
  const body = lines.slice(0, end);
  const first = body.findIndex((l) => l.trim() !== '');
  if (first !== -1 && body[first]?.trim() === BEGIN) {
    throw invalid(what, first + 1, 'this is a whole patch envelope; send it as "patch" instead, or give only the hunks (@@ and their lines) here');
  }
  const parsed = parseHunks(body, 0, what, 1);
  if (parsed.next < body.length) {
    throw invalid(what, parsed.next + 1, `unexpected ${show(body[parsed.next] as string)}; an update_file diff holds the hunks of one file only`);
  }
  if (parsed.hunks.length === 0) throw invalid(what, 1, 'the diff has no hunks; give @@ and the context (" "), removed ("-") and added ("+") lines');
  return parsed.hunks;
}

/**
 * The content a `create_file` operation's V4A diff gives: its "+" lines joined by newlines, as the reference
 * (apply_diff "create" mode) does, so a final newline is an empty "+" line; CRLF when the diff is CRLF.
 */
export function parseCreateDiff(diff: string, what: string): string {
  const lines = linesOf(diff);
  lines.forEach((l, i) => {
    if (!l.startsWith('+')) throw invalid(what, i + 1, `every line of a create_file diff starts with "+" (an empty line is "+"), got ${show(l)}`);
  });
  return lines.map((l) => l.slice(1)).join(diff.includes('\r\n') ? '\r\n' : '\n');
}

/** The path of the first file a Codex envelope names, without parsing the rest (for the per-file lock). */
export function firstPathOf(text: string): string | undefined {
  // Line by line with the parser's own header rule (a regex over a hostile 16 MB line backtracks for seconds).
  for (let from = 0; from < text.length; ) {
    const nl = text.indexOf('\n', from);
    const line = text.slice(from, nl < 0 ? text.length : nl);
    const head = line.length <= MAX_PATH_CHARS + 32 ? fileHeader(line) : undefined;
    if (head) return head.path.length > 0 && head.path.length <= MAX_PATH_CHARS ? head.path : undefined;
    if (nl < 0) break;
    from = nl + 1;
  }
  return undefined;
}

/** The longest path a patch may name, as every file tool's `path` (lib/schemas.ts relPath). */
export const MAX_PATH_CHARS = 4096;
