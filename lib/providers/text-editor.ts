/**
 * Anthropic's text editor tool (`text_editor_20250728`, named str_replace_based_edit_tool) on toolhost's file tools:
 * `view` is file_read (or file_list for a folder), `create` is file_write, `str_replace` is file_edit and `insert`
 * is file_insert, each run through the caller's `run` (the supervisor's callTool), so the queue, the file locks,
 * containment and the dirty marks apply as to any call. The answers read like the reference implementation's
 * (anthropic-quickstarts, computer_use_demo/tools/edit.py): "Here's the result of running `cat -n` on ...", "No
 * replacement was performed, ...", "File created successfully at: ...", within toolhost's budgets, with one line
 * saying how to see what a budget left out. A problem the model must act on is an error result with that message;
 * only errors of the request itself (`passThrough`) are thrown for the route to answer as HTTP errors.
 */
import type { Config } from '../../config/schema.js';
import { ERROR_STATUS, type ErrorCode, ToolhostError } from '../errors.js';
import { fitEntries } from '../model-lines.js';
import { shellQuote } from '../read/model-text.js';
import { CUT_MARK, numberedLine } from '../read/numbered.js';
import type { ModelContent } from '../tool.js';
import { EDITOR_NAME } from './anthropic-types.js';
import { projectRelative } from './project-paths.js';

/** The file tools the editor runs. */
export type EditorToolName = 'file_read' | 'file_write' | 'file_edit' | 'file_insert' | 'file_list';

/** What the editor needs from whoever runs it. */
export interface EditorPorts {
  /** Runs a file tool on the project (project_id added by the caller); resolves its answer or throws its ToolhostError. */
  run(tool: EditorToolName, input: Record<string, unknown>): Promise<unknown>;
  /** The project root's absolute forms, as commands see it: a path starting with one is taken relative to it. */
  roots: readonly string[];
  config: Pick<Config, 'budgets'>;
}

/** A tool result: content for the model, and whether it is an error. */
export interface ProviderResult {
  content: ModelContent[];
  isError: boolean;
}

/**
 * Errors that are not the model's to act on, which the route answers as HTTP errors: no such project, the wrong
 * process, and every server-side one (5xx: shutting down, the queue full, a lost worker), which the client retries.
 */
export function passesThrough(code: ErrorCode): boolean {
  return code === 'project_not_found' || code === 'not_on_this_role' || ERROR_STATUS[code] >= 500;
}

const COMMANDS = ['view', 'create', 'str_replace', 'insert'] as const;
type Command = (typeof COMMANDS)[number];

/** The editor's input once checked; `shown` is the path as the model wrote it, `rel` the project-relative one. */
interface EditorInput {
  command: Command;
  shown: string;
  rel: string;
  args: Record<string, unknown>;
}

/** A message for the model: the command did not run, and why. */
class EditorProblem extends Error {}

function problem(message: string): never {
  throw new EditorProblem(message);
}

/** Runs one text editor call; never throws but the errors {@link passesThrough} names. */
export async function runTextEditor(input: unknown, ports: EditorPorts): Promise<ProviderResult> {
  let parsed: EditorInput | undefined;
  try {
    parsed = parse(input, ports.roots);
    return { content: await dispatch(parsed, ports), isError: false };
  } catch (err) {
    if (err instanceof EditorProblem) return failure(err.message);
    if (err instanceof ToolhostError && !passesThrough(err.code)) return failure(explain(err, parsed));
    throw err;
  }
}

function failure(text: string): ProviderResult {
  return { content: [{ type: 'text', text }], isError: true };
}

function parse(input: unknown, roots: readonly string[]): EditorInput {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    problem(`The input of ${EDITOR_NAME} must be an object with command and path.`);
  }
  const args = input as Record<string, unknown>;
  const command = args.command;
  if (typeof command !== 'string' || !(COMMANDS as readonly string[]).includes(command)) {
    const why = command === 'undo_edit' ? ' (undo_edit is not part of text_editor_20250728)' : '';
    problem(`Unrecognized command ${String(command)}${why}. The allowed commands for the ${EDITOR_NAME} tool are: ${COMMANDS.join(', ')}`);
  }
  const path = args.path;
  if (typeof path !== 'string' || path === '') problem(`Parameter \`path\` is required for command: ${command}`);
  return { command: command as Command, shown: path, rel: projectRelative(path, roots), args };
}

async function dispatch(i: EditorInput, p: EditorPorts): Promise<ModelContent[]> {
  switch (i.command) {
    case 'view':
      return view(i, p);
    case 'create':
      return text(await create(i, p));
    case 'str_replace':
      return text(await strReplace(i, p));
    default:
      return text(await insert(i, p));
  }
}

const text = (t: string): ModelContent[] => [{ type: 'text', text: t }];

/** The message of a file tool's error, in the reference's words where it has some. */
function explain(err: ToolhostError, i: EditorInput | undefined): string {
  const shown = i?.shown ?? 'the path';
  switch (err.code) {
    case 'file_not_found':
      return `The path ${shown} does not exist. Please provide a valid path.`;
    case 'is_a_directory':
      return `The path ${shown} is a directory and only the \`view\` command can be used on directories`;
    case 'path_outside_project':
      return `The path ${shown} is outside the project: paths are taken relative to the project root ("/" is the root, as is the folder bash starts in), and ".." may not climb out of it nor a symlink lead out of it.`;
    default:
      return err.message;
  }
}

function codeOf(err: unknown): ErrorCode | undefined {
  return err instanceof ToolhostError ? err.code : undefined;
}

/** At most `max` characters of a string the model sent, for a message that repeats it. */
function echo(s: string, max = 500): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[${s.length - max} more characters]`;
}

/** What file_read answers, as far as the view reads it. */
interface ReadAnswer {
  path: string;
  content?: string;
  total_lines?: number;
  start_line?: number;
  end_line?: number;
  next_start_line?: number | null;
  cut_lines?: number[];
  image?: { media_type: string; data: string };
  bytes?: number;
}

async function view(i: EditorInput, p: EditorPorts): Promise<ModelContent[]> {
  const range = viewRange(i.args.view_range);
  let out: ReadAnswer;
  try {
    out = (await p.run('file_read', {
      path: i.rel,
      ...(range ? { start_line: range[0], ...(range[1] === -1 ? {} : { end_line: range[1] }) } : {}),
    })) as ReadAnswer;
  } catch (err) {
    if (codeOf(err) === 'is_a_directory') {
      if (range) problem('The `view_range` parameter is not allowed when `path` points to a directory.');
      return text(await viewFolder(i, p));
    }
    if (codeOf(err) === 'line_out_of_range' && range) {
      const total = (err as ToolhostError).details?.total_lines;
      problem(
        `Invalid \`view_range\`: [${range.join(', ')}]. Its first element \`${range[0]}\` should be within the range of lines of the file: [1, ${total}]`,
      );
    }
    throw err;
  }
  if (out.image) {
    return [
      { type: 'image', mediaType: out.image.media_type, data: out.image.data },
      { type: 'text', text: `${i.shown} is a ${out.image.media_type} image of ${out.bytes} bytes, shown above.` },
    ];
  }
  return text(fileView(i, out, range, p));
}

/** A checked view_range, or undefined for none. */
function viewRange(v: unknown): [number, number] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((n) => Number.isInteger(n))) problem('Invalid `view_range`. It should be a list of two integers.');
  const [first, last] = v as [number, number];
  if (first < 1) problem(`Invalid \`view_range\`: [${first}, ${last}]. Its first element \`${first}\` should be at least 1 (lines count from 1)`);
  if (last !== -1 && last < first) {
    problem(
      `Invalid \`view_range\`: [${first}, ${last}]. Its second element \`${last}\` should be larger or equal than its first \`${first}\` (or -1 for the end of the file)`,
    );
  }
  return [first, last];
}

/** A file's lines as `cat -n` shows them, and one closing line when a budget or the range left lines out. */
function fileView(i: EditorInput, r: ReadAnswer, range: [number, number] | undefined, p: EditorPorts): string {
  const shown = i.shown;
  const head = `Here's the result of running \`cat -n\` on ${shown}:`;
  if (r.total_lines === 0) return `${head}\n[the file is empty]\n`;
  const start = r.start_line ?? 1;
  const end = r.end_line ?? start;
  const cut = new Set(r.cut_lines ?? []);
  const content = r.content ?? '';
  const lines = (content.endsWith('\n') ? content.slice(0, -1) : content).split('\n').map((l, k) => numberedLine(start + k, l, cut.has(start + k)));
  const notes: string[] = [];
  const wanted = range && range[1] !== -1 ? range[1] : (r.total_lines ?? end);
  if (r.next_start_line != null && end < wanted) {
    notes.push(
      `lines ${start}-${end} of ${r.total_lines} shown, the most one view returns; to see more, view ${shown} with view_range [${end + 1}, ${range && range[1] !== -1 ? range[1] : -1}]`,
    );
  }
  const first = r.cut_lines?.[0];
  if (first !== undefined) {
    const chars = p.config.budgets.lineChars;
    const file = shellQuote(p.roots[0] ? `${p.roots[0]}/${i.rel}` : i.rel);
    notes.push(
      `${cut.size} line(s) longer than ${chars} characters were cut, marked "${CUT_MARK.trim()}"; see the rest of one with bash, e.g. sed -n '${first}p' ${file} | cut -c ${chars + 1}-${chars * 3}`,
    );
  }
  return `${head}\n${lines.join('\n')}\n${notes.map((n) => `[${n}]\n`).join('')}`;
}

/** What file_list answers. */
interface ListAnswer {
  path: string;
  entries: { path: string; type: string }[];
  truncated: boolean;
}

/**
 * A folder two levels deep, hidden entries (and what .gitignore excludes) left out, within budgets.listChars. When
 * the whole does not fit, the first level is kept whole and a subfolder's entries are shown only while they fit (a
 * subfolder left out says how many entries it holds), then one line says how to see the rest.
 */
async function viewFolder(i: EditorInput, p: EditorPorts): Promise<string> {
  const out = (await p.run('file_list', { path: i.rel, depth: 2 })) as ListAnswer;
  const base = i.shown.replace(/\/+$/, '');
  const below = (entry: string) => (out.path === '.' ? entry : entry.slice(out.path.length + 1));
  const visible = out.entries.filter(
    (e) =>
      !below(e.path)
        .split('/')
        .some((seg) => seg.startsWith('.')),
  );
  const name = (e: ListAnswer['entries'][number]) => `${base}/${below(e.path)}${e.type === 'dir' ? '/' : ''}`;
  const head = `Here's the files and directories up to 2 levels deep in ${i.shown}, excluding hidden items and what .gitignore excludes:\n${base === '' ? '/' : base}`;
  const budget = p.config.budgets.listChars - head.length - 1;
  const top = visible.filter((e) => !below(e.path).includes('/'));
  const inside = new Map<string, string[]>();
  for (const e of visible) {
    const [first, ...rest] = below(e.path).split('/');
    if (rest.length > 0) inside.set(first as string, [...(inside.get(first as string) ?? []), name(e)]);
  }
  const cost = (lines: readonly string[]) => lines.reduce((n, l) => n + l.length + 1, 0);
  const collapsed = new Set<string>();
  // fitEntries keeps room for a closing line: the whole is shown only when it fits with that room to spare.
  if (cost(visible.map(name)) > budget - 250) {
    // Room for the closing line and the marks of left-out folders.
    let room = budget - cost(top.map(name)) - 200;
    for (const e of top) {
      const lines = inside.get(below(e.path)) ?? [];
      if (lines.length === 0) continue;
      if (cost(lines) + 24 <= room) room -= cost(lines);
      else collapsed.add(below(e.path));
    }
  }
  const lines = top.flatMap((e) => {
    const key = below(e.path);
    if (collapsed.has(key)) return [`${name(e)} [${inside.get(key)?.length ?? 0} entries not shown]`];
    return [name(e), ...(inside.get(key) ?? [])];
  });
  const example = [...collapsed][0] ?? top.find((e) => e.type === 'dir')?.path;
  const body = fitEntries(lines, budget, (shown) => {
    const left: string[] = [];
    if (shown < lines.length) left.push(`${lines.length - shown} more entries not shown`);
    if (collapsed.size > 0) left.push(`the entries of ${collapsed.size} folder(s) marked "[N entries not shown]" are left out`);
    if (out.truncated) left.push('the folder holds more entries than one listing returns');
    if (left.length === 0) return undefined;
    return `[${left.join('; ')}; view a subfolder to list it${example === undefined ? '' : `, e.g. ${base}/${below(example)}`}]`;
  });
  return body === '' ? `${head}\n` : `${head}\n${body}\n`;
}

async function create(i: EditorInput, p: EditorPorts): Promise<string> {
  const content = i.args.file_text;
  if (typeof content !== 'string') problem('Parameter `file_text` is required for command: create');
  const out = (await p.run('file_write', { path: i.rel, content })) as { created: boolean };
  return out.created
    ? `File created successfully at: ${i.shown}`
    : `File created successfully at: ${i.shown} (it existed: its whole content was replaced by file_text)`;
}

/** What file_edit and file_insert answer, as far as the editor reads it. */
interface EditAnswer {
  snippets: { start_line: number; end_line: number; text: string }[];
  snippets_cut: number;
}

/** The numbered snippets of a change, and a line naming what the budget left out. */
function snippetText(shown: string, out: EditAnswer): string {
  const body = out.snippets.map((s) => s.text.replace(/\n$/, '')).join('\n...\n');
  if (out.snippets_cut === 0) return body;
  const from = (out.snippets.at(-1)?.end_line ?? 0) + 1;
  return `${body}\n[${out.snippets_cut} more changed region(s) not shown; view ${shown} with view_range [${from}, -1]]`;
}

async function strReplace(i: EditorInput, p: EditorPorts): Promise<string> {
  const { old_str: oldStr, new_str: newStr } = i.args;
  if (typeof oldStr !== 'string') problem('Parameter `old_str` is required for command: str_replace');
  if (oldStr === '') problem('Parameter `old_str` must not be empty: it is the exact text to replace, copied from the file');
  if (newStr !== undefined && newStr !== null && typeof newStr !== 'string') problem('Parameter `new_str` must be a string (the replacement text)');
  let out: EditAnswer;
  try {
    out = (await p.run('file_edit', { path: i.rel, old_str: oldStr, new_str: newStr ?? '' })) as EditAnswer;
  } catch (err) {
    const e = err instanceof ToolhostError ? err : undefined;
    if (e?.code === 'edit_no_match') {
      problem(`No replacement was performed, old_str \`${echo(oldStr)}\` did not appear verbatim in ${i.shown}.${hintOf(e)}`);
    }
    if (e?.code === 'edit_count_mismatch') {
      const lines = Array.isArray(e.details?.lines) ? (e.details.lines as number[]) : [];
      const more = typeof e.details?.matches === 'number' && e.details.matches > lines.length ? ` (${e.details.matches} in all)` : '';
      problem(
        `No replacement was performed. Multiple occurrences of old_str \`${echo(oldStr)}\` in lines [${lines.join(', ')}]${more}. Please ensure it is unique`,
      );
    }
    throw err;
  }
  return (
    `The file ${i.shown} has been edited. Here's the result of running \`cat -n\` on a snippet of ${i.shown}:\n${snippetText(i.shown, out)}\n` +
    'Review the changes and make sure they are as expected. Edit the file again if necessary.'
  );
}

/** The part of an edit_no_match message that helps: the closest lines, or that only whitespace differs. */
function hintOf(e: ToolhostError): string {
  const path = typeof e.details?.path === 'string' ? e.details.path : undefined;
  const marker = path === undefined ? -1 : e.message.indexOf(`"${path}"; `);
  return marker === -1 ? '' : ` Hint: ${e.message.slice(marker + path!.length + 4).replaceAll('/file/read', 'a view of the file')}`;
}

async function insert(i: EditorInput, p: EditorPorts): Promise<string> {
  const line = i.args.insert_line;
  if (line === undefined || line === null) problem('Parameter `insert_line` is required for command: insert');
  if (!Number.isInteger(line) || (line as number) < 0) {
    problem(`Invalid \`insert_line\` parameter: ${JSON.stringify(line)}. It should be a line number: 0 inserts before the first line, N after line N`);
  }
  // The tool's own field is insert_text; models also send new_str, as older versions of the tool named it.
  const body = typeof i.args.insert_text === 'string' ? i.args.insert_text : i.args.new_str;
  if (typeof body !== 'string') problem('Parameter `insert_text` is required for command: insert');
  let out: EditAnswer;
  try {
    out = (await p.run('file_insert', { path: i.rel, insert_line: line, text: body === '' ? '\n' : body })) as EditAnswer;
  } catch (err) {
    if (codeOf(err) === 'line_out_of_range') {
      const total = (err as ToolhostError).details?.total_lines;
      problem(`Invalid \`insert_line\` parameter: ${line}. It should be within the range of lines of the file: [0, ${total}]`);
    }
    throw err;
  }
  return (
    `The file ${i.shown} has been edited. Here's the result of running \`cat -n\` on a snippet of the edited file:\n${snippetText(i.shown, out)}\n` +
    'Review the changes and make sure they are as expected (correct indentation, no duplicate lines, etc). Edit the file again if necessary.'
  );
}
