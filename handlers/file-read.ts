/**
 * `POST /file/read`: a window of a text file's lines, sized for a model (budgets.readLines lines by default, each
 * cut at budgets.lineChars, the whole within budgets.readChars and files.maxReadBytes), saying where to read on;
 * or an image (png, jpeg, gif, webp, by magic bytes) up to budgets.imageBytes, as an image. The file is streamed,
 * so a huge file costs no more memory than the window. Only a regular file inside the project is read, through
 * the fd lib/safe-fs.ts opened and checked: a FIFO, socket or device is refused at once, and a symlink swapped in
 * meanwhile cannot redirect the read.
 */
import { closeSync, createReadStream, readSync } from 'node:fs';
import { z } from 'zod';
import { cancelled, ToolhostError } from '../lib/errors.js';
import { IMAGE_SNIFF_BYTES, type ImageType, imageSize, imageType } from '../lib/read/image.js';
import { LineWindowReader } from '../lib/read/lines.js';
import { imageReadModel, textReadModel } from '../lib/read/model-text.js';
import { FOOTER_RESERVE, numberedLine } from '../lib/read/numbered.js';
import { fileErrorFor, type OpenFile, openProjectFile, readExactly } from '../lib/safe-fs.js';
import { lineNumber, projectId, relPath } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';

const readRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  start_line: lineNumber.optional().describe('First line to return (1-based, inclusive).'),
  end_line: lineNumber.optional().describe('Last line to return (1-based, inclusive); without it, budgets.readLines lines from start_line.'),
  line_numbers: z.boolean().optional().describe('Return content numbered like `cat -n` (number, tab, line) instead of raw.'),
});
type ReadRequest = z.infer<typeof readRequest>;

const textResult = z.strictObject({
  path: z.string().describe('The file, project-relative.'),
  content: z.string().describe('The lines, raw (or numbered with line_numbers); a cut line keeps its first budgets.lineChars characters.'),
  total_lines: z.number().int().describe('Lines in the whole file.'),
  start_line: z.number().int(),
  end_line: z.number().int().describe('Last line in content.'),
  truncated: z.boolean().describe('True when a budget (budgets.readLines, budgets.readChars, files.maxReadBytes) ended content before the lines asked for.'),
  next_start_line: z.number().int().nullable().describe('The start_line that reads on from here; null when content reaches the end of the file.'),
  cut_lines: z
    .array(z.number().int())
    .optional()
    .describe('Lines longer than budgets.lineChars (or than what was left of the budget), cut in content; see the rest with a command.'),
});

const imageResult = z.strictObject({
  path: z.string().describe('The file, project-relative.'),
  image: z.strictObject({
    media_type: z.enum(['image/png', 'image/jpeg', 'image/gif', 'image/webp']),
    data: z.string().describe('The file, base64.'),
  }),
  bytes: z.number().int().describe("The file's size."),
  width: z.number().int().optional().describe('Pixels, when the header says it.'),
  height: z.number().int().optional(),
});

const readResult = z.union([textResult, imageResult]);
type TextResult = z.infer<typeof textResult>;
type ImageResult = z.infer<typeof imageResult>;
type ReadResult = TextResult | ImageResult;

/** The file_read tool. */
export const fileReadTool = jobTool({
  name: 'file_read',
  title: 'Read a file',
  route: { method: 'POST', path: '/file/read' },
  input: readRequest,
  output: readResult,
  readOnly: true,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'is_a_directory', 'binary_file', 'file_too_large', 'line_out_of_range'],
  describe: ({ files, budgets }) =>
    `Read a text file of the project: ${budgets.readLines} lines from start_line (default 1), or start_line to end_line ` +
    `(1-based, inclusive). Lines are numbered like cat -n; lines over ${budgets.lineChars} characters are cut and marked. ` +
    `At most ${budgets.readChars} characters (${files.maxReadBytes} bytes) come back, cut at a line end; the last line ` +
    'says how many lines the file has and the exact file_read call that reads on. ' +
    `Images (png, jpeg, gif, webp) up to ${budgets.imageBytes} bytes come back as images. Other binary files are ` +
    'refused. Prefer it to `cat` in execute.',
  examples: [{ project_id: 'demo', path: 'src/app.ts', start_line: 1, end_line: 40 }],
  toModel: (out, input, config) => ('image' in out ? imageReadModel(out) : textReadModel(out, config.budgets.lineChars, input.line_numbers === true)),
  job: { type: 'file.read', lane: 'files', mutates: false, handler: fileRead },
});

/** Files up to this size are read in one go; larger ones are streamed so memory stays bounded. */
const WHOLE_READ_BYTES = 4 * 1024 * 1024;

/** Bytes sniffed for a NUL to tell binary from text, as git and ripgrep do. */
const SNIFF_BYTES = 8000;

/** Reads a regular file of the project: a window of its lines, or the image it is. */
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
  if (req.end_line !== undefined && req.end_line < first) {
    throw new ToolhostError('line_out_of_range', `end_line (${req.end_line}) is before start_line (${first}); pass end_line >= start_line`);
  }
  const file = openProjectFile(ctx.root, req.path);
  const head = Buffer.alloc(IMAGE_SNIFF_BYTES);
  let type: ImageType | null;
  try {
    type = imageType(head.subarray(0, readSync(file.fd, head, 0, head.length, 0)));
  } catch (err) {
    closeSync(file.fd);
    throw err;
  }
  if (type) return readImage(file, type, ctx);
  return readText(req, file, first, ctx);
}

/** An image, whole, when it is within budgets.imageBytes. */
function readImage(file: OpenFile, type: ImageType, ctx: HandlerContext): ImageResult {
  const max = ctx.config.budgets.imageBytes;
  try {
    if (file.stat.size > max) {
      throw new ToolhostError(
        'file_too_large',
        `"${file.shown}" is a ${file.stat.size}-byte ${type} image, over budgets.imageBytes (${max}); make a smaller copy ` +
          '(e.g. with execute: convert IN -resize 50% OUT, or ffmpeg) and read that, or inspect it with execute (file, identify)',
        { path: file.shown, bytes: file.stat.size, max_bytes: max },
      );
    }
    const bytes = readExactly(file.fd, file.stat.size);
    const dims = imageSize(type, bytes);
    // An image goes into the model's conversation, where one a provider cannot decode fails every later request
    // of it: a header cut short, a size no real image within budget has, or a file rewritten since it was sniffed
    // is refused, not sent.
    if (imageType(bytes) !== type || !dims || !plausible(dims)) {
      throw new ToolhostError(
        'binary_file',
        `"${file.shown}" starts like a ${type} image but its header is cut short or claims ${dims ? `${dims.width}x${dims.height} pixels` : 'no size'}; ` +
          'it is not sent as an image: inspect it with execute (file, identify, xxd)',
        { path: file.shown, ...(dims ?? {}) },
      );
    }
    const side = ctx.config.budgets.imageSide;
    if (dims.width > side || dims.height > side) {
      throw new ToolhostError(
        'file_too_large',
        `"${file.shown}" is a ${dims.width}x${dims.height} ${type} image, over budgets.imageSide (${side} pixels a side); make a smaller copy ` +
          `(e.g. with execute: convert IN -resize ${side}x${side} OUT) and read that`,
        { path: file.shown, ...dims, max_side: side },
      );
    }
    return { path: file.shown, image: { media_type: type, data: bytes.toString('base64') }, bytes: bytes.length, ...dims };
  } finally {
    closeSync(file.fd);
  }
}

/** Largest side an image may claim: jpeg's own limit (16 bits); webp's is lower, and no model API takes more. */
const MAX_IMAGE_SIDE = 65535;

function plausible({ width, height }: { width: number; height: number }): boolean {
  return width > 0 && height > 0 && width <= MAX_IMAGE_SIDE && height <= MAX_IMAGE_SIDE;
}

/** A window of a text file's lines; see the module comment for its bounds. */
async function readText(req: ReadRequest, file: OpenFile, first: number, ctx: HandlerContext): Promise<TextResult> {
  const { budgets, files } = ctx.config;
  const last = req.end_line ?? first + budgets.readLines - 1;
  // The closing line names the path twice (the read-on call, the command for a cut line).
  const chars = Math.max(1, budgets.readChars - FOOTER_RESERVE - 2 * JSON.stringify(file.shown).length);
  const reader = new LineWindowReader({ first, last, lineChars: budgets.lineChars, chars, bytes: files.maxReadBytes });

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
  let sniffed = 0;
  for await (const chunk of chunks) {
    // A huge file is read to its end to count its lines: a cancel (DELETE, shutdown) must still stop it.
    if (ctx.signal.aborted) throw cancelled(ctx.signal, 'the read');
    if (sniffed < SNIFF_BYTES) {
      const look = chunk.subarray(0, SNIFF_BYTES - sniffed);
      if (look.includes(0)) {
        throw new ToolhostError('binary_file', `"${file.shown}" is a binary file; inspect it with a command (e.g. xxd or file) instead`, { path: file.shown });
      }
      sniffed += look.length;
    }
    reader.push(chunk);
  }
  const { lines, totalLines, stoppedEarly } = reader.finish();
  if (first > 1 && first > totalLines) {
    throw new ToolhostError('line_out_of_range', `start_line ${first} is past the end of "${file.shown}", which has ${totalLines} lines`, {
      total_lines: totalLines,
    });
  }
  const endLine = lines.at(-1)?.n ?? Math.min(first - 1, totalLines);
  const content = lines.map((l) => (req.line_numbers ? numberedLine(l.n, l.text, false) : l.text) + (l.lf || req.line_numbers ? '\n' : '')).join('');
  const cut = lines.filter((l) => l.cut).map((l) => l.n);
  return {
    path: file.shown,
    content,
    total_lines: totalLines,
    start_line: first,
    end_line: endLine,
    truncated: stoppedEarly || (req.end_line === undefined && endLine < totalLines),
    next_start_line: endLine < totalLines ? endLine + 1 : null,
    ...(cut.length > 0 ? { cut_lines: cut } : {}),
  };
}
