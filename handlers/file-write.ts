/**
 * `POST /file/write`: creates or replaces a file atomically, creating parent folders. The path is walked and the
 * file written through open folders (lib/safe-fs.ts), so a symlink swapped in meanwhile cannot make the write land
 * outside the project; only a regular file is ever replaced.
 */

import { z } from 'zod';
import { replaceInFolder } from '../lib/atomic-write.js';
import { ToolhostError } from '../lib/errors.js';
import { notRegularFile } from '../lib/file-errors.js';
import { projectOwner } from '../lib/process/owner.js';
import { fileErrorFor, type Reached, reach } from '../lib/safe-fs.js';
import { projectId, relPath } from '../lib/schemas.js';
import { type HandlerContext, jobTool, PROJECT_ERRORS } from '../lib/tool.js';

const writeRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  content: z.string().describe('The whole new content of the file (UTF-8).'),
});
type WriteRequest = z.infer<typeof writeRequest>;

const writeResult = z.strictObject({
  path: z.string().describe('The file, project-relative.'),
  bytes: z.number().int().describe('Bytes written.'),
  created: z.boolean().describe('True when the file did not exist before.'),
});
type WriteResult = z.infer<typeof writeResult>;

/** The file_write tool. */
export const fileWriteTool = jobTool({
  name: 'file_write',
  title: 'Write a file',
  route: { method: 'POST', path: '/file/write' },
  input: writeRequest,
  output: writeResult,
  readOnly: false,
  errors: [...PROJECT_ERRORS, 'is_a_directory', 'not_a_directory', 'file_too_large'],
  describe: ({ files }) =>
    'Create a file or replace its whole content (UTF-8), atomically; missing parent folders are created and an ' +
    'existing file keeps its mode. Use it for new files and complete rewrites; to change part of a file use file_edit. ' +
    `The content may be at most ${files.maxWriteBytes} bytes.`,
  examples: [{ project_id: 'demo', path: 'docs/notes.md', content: '# Notes\n' }],
  toModel: (out) => [{ type: 'text', text: `${out.created ? 'Created' : 'Replaced'} ${out.path} (${out.bytes} bytes).` }],
  job: { type: 'file.write', lane: 'files', mutates: true, lockPath: (req) => req.path, handler: fileWrite },
});

/**
 * Checks that what a walk ended on may be replaced: nothing yet, or a regular file (a symlink inside the project
 * was followed to it, so the link survives).
 *
 * @throws is_a_directory for a folder, not_a_regular_file for a FIFO, socket or device.
 */
export function assertReplaceable(at: Reached): void {
  if (at.name === '' || at.stat?.isDirectory()) {
    throw new ToolhostError('is_a_directory', `"${at.shown}" is a folder; pass a file path`, { path: at.shown });
  }
  if (at.stat && !at.stat.isFile()) throw notRegularFile(at.shown, at.stat);
}

/**
 * Writes the whole content of a file. A new file and the folders made for it belong to the project's owner
 * (when toolhost is root); a replaced file keeps its mode, uid and gid.
 */
async function fileWrite(req: WriteRequest, ctx: HandlerContext): Promise<WriteResult> {
  const bytes = Buffer.byteLength(req.content);
  if (bytes > ctx.config.files.maxWriteBytes) {
    throw new ToolhostError(
      'file_too_large',
      `content is ${bytes} bytes, more than files.maxWriteBytes (${ctx.config.files.maxWriteBytes}); write it in a command instead`,
    );
  }
  try {
    const owner = projectOwner(ctx.config, ctx.projectId);
    const at = reach(ctx.root, req.path, { create: { owner } });
    try {
      assertReplaceable(at);
      replaceInFolder(at.dirFd, at.name, req.content, { previous: at.stat, owner });
      return { path: at.rel, bytes, created: at.stat === undefined };
    } finally {
      at.close();
    }
  } catch (err) {
    // System errors name server paths; what the caller sees names the project-relative path only.
    throw fileErrorFor(ctx.root, req.path, err);
  }
}
