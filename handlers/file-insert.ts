/**
 * `POST /file/insert`: new lines into a text file, after a given line (0: before the first), as Anthropic's text
 * editor tool does. The file is changed byte for byte like an edit (handlers/text-file.ts): every byte around the
 * insertion stays as it was, a CRLF file gets CRLF lines, and the answer shows the inserted lines, numbered.
 */
import { z } from 'zod';
import { ToolhostError } from '../lib/errors.js';
import { projectId, relPath } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';
import { lineStarts, type Rewrite, rewriteFile, snippetFields, snippetsForModel, usesCrlf } from './text-file.js';

const insertRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  insert_line: z.number().int().min(0).describe('Insert after this line (1-based); 0 inserts before the first line.'),
  text: z.string().min(1).describe('The lines to insert; a missing final line break is added.'),
});
type InsertRequest = z.infer<typeof insertRequest>;

const insertResult = z.strictObject({
  path: z.string().describe('The file, project-relative.'),
  first_line: z.number().int().describe('1-based line of the first inserted line in the new content.'),
  lines_inserted: z.number().int(),
  total_lines: z.number().int().describe('Lines of the new content.'),
  ...snippetFields,
});
type InsertResult = z.infer<typeof insertResult>;

/** The file_insert tool. */
export const fileInsertTool = jobTool({
  name: 'file_insert',
  title: 'Insert lines into a file',
  route: { method: 'POST', path: '/file/insert' },
  input: insertRequest,
  output: insertResult,
  readOnly: false,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'is_a_directory', 'binary_file', 'file_too_large', 'line_out_of_range'],
  describe: ({ files }) =>
    'Insert text as new lines into an existing file after line insert_line (1-based; 0 inserts at the top, the ' +
    'number of lines appends at the end). Every other byte stays as it was; CRLF files get CRLF lines. Answers the ' +
    'inserted lines with a few around them, numbered. Use it to add code without repeating surrounding text as ' +
    `file_edit needs; to create a file use file_write. The file may be at most ${files.maxWriteBytes} bytes after it.`,
  examples: [{ project_id: 'demo', path: 'src/app.ts', insert_line: 0, text: "import 'dotenv/config';" }],
  toModel: (out, _req, config) => {
    const n = out.lines_inserted;
    const head = `Inserted ${n} line${n === 1 ? '' : 's'} into ${out.path} at line ${out.first_line} (now ${out.total_lines} lines).`;
    return [{ type: 'text', text: `${head}\n${snippetsForModel(out.path, out.snippets, out.snippets_cut, config.budgets.outputChars)}` }];
  },
  job: { type: 'file.insert', lane: 'files', mutates: true, lockPath: (req) => req.path, handler: fileInsert },
});

/** Inserts the request's text after its line. */
async function fileInsert(req: InsertRequest, ctx: HandlerContext): Promise<InsertResult> {
  let firstLine = 0;
  let inserted = 0;
  const done = await rewriteFile(req.path, ctx, (raw, shown) => {
    const r = insertAt(raw, req.insert_line, req.text, shown);
    firstLine = req.insert_line + 1;
    inserted = r.lines;
    return r;
  });
  return {
    path: done.rel,
    first_line: firstLine,
    lines_inserted: inserted,
    total_lines: lineStarts(done.rewrite.updated).length,
    snippets: done.snippets,
    snippets_cut: done.snippetsCut,
  };
}

/**
 * The content with `text` as whole lines after line `after`. A final line break is added to the text where it
 * lacks one, except at the very end of a file that has none (which then keeps none); a last line without a line
 * break gets one before text appended after it.
 */
function insertAt(raw: Buffer, after: number, text: string, shown: string): Rewrite & { lines: number } {
  const starts = lineStarts(raw);
  if (after > starts.length) {
    throw new ToolhostError(
      'line_out_of_range',
      `insert_line ${after} is past the end of "${shown}", which has ${starts.length} line${starts.length === 1 ? '' : 's'}; pass 0 to ${starts.length}`,
      { path: shown, total_lines: starts.length },
    );
  }
  const eol = usesCrlf(raw) ? '\r\n' : '\n';
  const body = eol === '\r\n' && !text.includes('\r') ? text.replace(/\n/g, '\r\n') : text;
  const at = after < starts.length ? (starts[after] ?? raw.length) : raw.length;
  const unterminated = raw.length > 0 && raw[raw.length - 1] !== 0x0a;
  const atEnd = at === raw.length;
  const lead = atEnd && unterminated ? eol : '';
  const tail = body.endsWith('\n') || (atEnd && unterminated) ? '' : eol;
  const piece = Buffer.from(lead + body + tail);
  const start = at + Buffer.byteLength(lead);
  const written = body + tail;
  const lines = written.split('\n').length - (written.endsWith('\n') ? 1 : 0);
  return { updated: Buffer.concat([raw.subarray(0, at), piece, raw.subarray(at)]), ranges: [[start, at + piece.length]], lines };
}
