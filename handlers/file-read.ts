/**
 * `POST /file/read`: a text file, or a range of its lines, streamed so a huge file costs no more than the cap.
 * Only a regular file inside the project is read, through the fd lib/safe-fs.ts opened and checked: a FIFO,
 * socket or device is refused at once, and a symlink swapped in meanwhile cannot redirect the read.
 */
import { closeSync, createReadStream } from 'node:fs';
import { z } from 'zod';
import { ToolhostError } from '../lib/errors.js';
import { fileErrorFor, openProjectFile, readExactly } from '../lib/safe-fs.js';
import { lineNumber, projectId, relPath } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';

const readRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  start_line: lineNumber.optional().describe('First line to return (1-based, inclusive).'),
  end_line: lineNumber.optional().describe('Last line to return (1-based, inclusive).'),
});
type ReadRequest = z.infer<typeof readRequest>;

const readResult = z.strictObject({
  path: z.string().describe('The file, project-relative.'),
  content: z.string(),
  total_lines: z.number().int(),
  start_line: z.number().int(),
  end_line: z.number().int(),
  truncated: z.boolean().describe('True when the range was cut at files.maxReadBytes; ask again from end_line + 1.'),
});
type ReadResult = z.infer<typeof readResult>;

/** The file_read tool. */
export const fileReadTool = jobTool({
  name: 'file_read',
  title: 'Read a file',
  route: { method: 'POST', path: '/file/read' },
  input: readRequest,
  output: readResult,
  readOnly: true,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'is_a_directory', 'binary_file', 'line_out_of_range'],
  describe: ({ files }) =>
    'Read a text file of the project, whole or a range of lines (start_line and end_line, 1-based, inclusive). Returns ' +
    'content, total_lines and the range returned. Prefer it to `cat` in execute. ' +
    `At most ${files.maxReadBytes} bytes come back, cut at a line end with truncated: true: continue from end_line + 1. ` +
    'Binary files are refused.',
  examples: [{ project_id: 'demo', path: 'src/app.ts', start_line: 1, end_line: 40 }],
  job: { type: 'file.read', lane: 'files', mutates: false, handler: fileRead },
});

/** Files up to this size are read in one go; larger ones are streamed so memory stays bounded. */
const WHOLE_READ_BYTES = 4 * 1024 * 1024;

/** Bytes sniffed for a NUL to tell binary from text, as git and ripgrep do. */
const SNIFF_BYTES = 8000;

/** Reads a regular file of the project, whole or a range of lines, capped at files.maxReadBytes. */
async function fileRead(req: ReadRequest, ctx: HandlerContext): Promise<ReadResult> {
  try {
    return await read(req, ctx);
  } catch (err) {
    // System errors name server paths; what the caller sees names the project-relative path only.
    throw fileErrorFor(ctx.root, req.path, err);
  }
}

async function read(req: ReadRequest, ctx: HandlerContext): Promise<ReadResult> {
  const first = req.start_line ?? 1;
  const last = req.end_line ?? Number.POSITIVE_INFINITY;
  if (last < first) {
    throw new ToolhostError('line_out_of_range', `end_line (${last}) is before start_line (${first}); pass end_line >= start_line`);
  }
  const cap = ctx.config.files.maxReadBytes;

  const parts: Buffer[] = [];
  let kept = 0;
  let keptAtLineStart = 0; // content bytes before the current line: a cut never leaves half a line
  let line = 1; // line number of the byte at the start of the current chunk's remaining text
  let endLine = first - 1;
  let truncated = false;
  let sniffed = 0;
  let lastByte = -1;
  let size = 0;

  const file = openProjectFile(ctx.root, req.path);
  // Small files in one synchronous read (the common case, and far cheaper in a pool thread); large ones stream.
  // Either way only the bytes the file had when it was opened are read: a command appending to it cannot make
  // the read endless.
  let chunks: Iterable<Buffer> | AsyncIterable<Buffer>;
  if (file.stat.size <= WHOLE_READ_BYTES) {
    try {
      chunks = [readExactly(file.fd, file.stat.size)];
    } finally {
      closeSync(file.fd);
    }
  } else {
    chunks = createReadStream('', { fd: file.fd, autoClose: true, start: 0, end: file.stat.size - 1, highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>;
  }
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    if (sniffed < SNIFF_BYTES) {
      const look = chunk.subarray(0, SNIFF_BYTES - sniffed);
      if (look.includes(0)) {
        throw new ToolhostError('binary_file', `"${file.shown}" is a binary file; inspect it with a command (e.g. xxd or file) instead`, { path: file.shown });
      }
      sniffed += look.length;
    }
    size += chunk.length;
    lastByte = chunk[chunk.length - 1]!;
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(10, pos);
      const end = nl === -1 ? chunk.length : nl + 1;
      if (line >= first && line <= last && !truncated) {
        const piece = chunk.subarray(pos, end);
        if (kept + piece.length > cap && endLine >= first) {
          truncated = true;
          kept = keptAtLineStart;
        } else if (kept + piece.length > cap) {
          // A single line longer than the cap: return its start so the caller sees something.
          parts.push(Buffer.from(piece.subarray(0, cap - kept)));
          kept = cap;
          truncated = true;
          endLine = line;
        } else {
          parts.push(piece);
          kept += piece.length;
          if (nl !== -1) endLine = line;
        }
      }
      if (nl === -1) break;
      line++;
      pos = end;
      keptAtLineStart = kept;
    }
  }
  const totalLines = size === 0 ? 0 : lastByte === 10 ? line - 1 : line;
  // The last line has no newline: it was counted as kept but endLine was not advanced.
  if (!truncated && totalLines >= first && totalLines <= last && lastByte !== 10) endLine = totalLines;
  if (first > 1 && first > totalLines) {
    throw new ToolhostError('line_out_of_range', `start_line ${first} is past the end of "${file.shown}", which has ${totalLines} lines`, {
      total_lines: totalLines,
    });
  }
  return {
    path: file.shown,
    content: Buffer.concat(parts).subarray(0, kept).toString('utf8'),
    total_lines: totalLines,
    start_line: first,
    end_line: Math.min(endLine, totalLines),
    truncated,
  };
}
