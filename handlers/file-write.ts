/** `POST /file/write`: creates or replaces a file atomically, creating parent folders. */
import { realpathSync } from 'node:fs';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { ToolhostError } from '../lib/errors.js';
import { projectRelative, resolveInProject } from '../lib/paths.js';
import type { WriteRequest } from '../lib/schemas.js';
import type { Handler } from './context.js';

/** The JSON answer of /file/write. */
export interface WriteResult {
  path: string;
  bytes: number;
  created: boolean;
}

/**
 * The file a write lands in: the path itself, or, when it is a symlink inside the project, the file it points to
 * (so the link survives the atomic rename).
 */
export async function writeTarget(root: string, userPath: string): Promise<string> {
  const abs = await resolveInProject(root, userPath);
  try {
    return realpathSync.native(abs);
  } catch {
    return abs;
  }
}

export const fileWrite: Handler<WriteRequest, WriteResult> = async (req, ctx) => {
  const bytes = Buffer.byteLength(req.content);
  if (bytes > ctx.config.files.maxWriteBytes) {
    throw new ToolhostError('file_too_large', `content is ${bytes} bytes, more than files.maxWriteBytes (${ctx.config.files.maxWriteBytes}); write it in a command instead`);
  }
  const target = await writeTarget(ctx.root, req.path);
  try {
    const { created } = await writeFileAtomic(target, req.content);
    return { path: projectRelative(ctx.root, target), bytes, created };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') {
      throw new ToolhostError('is_a_directory', `"${req.path}" is a folder; pass a file path`, { path: req.path });
    }
    if (code === 'ENOTDIR' || code === 'EEXIST') {
      throw new ToolhostError('not_a_directory', `a parent of "${req.path}" is a file, not a folder; choose another path`, { path: req.path });
    }
    throw err;
  }
};
