/**
 * The errors of the file tools, made from what went wrong and the project-relative path the caller named. System
 * errors carry the server's absolute paths in their messages; the errors made here never do.
 */
import type { Stats } from 'node:fs';
import { errnoCode, ToolhostError, toToolhostError } from './errors.js';

export function fileNotFound(shown: string): ToolhostError {
  return new ToolhostError('file_not_found', `"${shown}" does not exist in the project; check the path with /file/list`, { path: shown });
}

export function danglingLink(shown: string): ToolhostError {
  return new ToolhostError(
    'not_a_directory',
    `a symlink on the way to "${shown}" points to a folder that does not exist; create that folder, or remove the link, with a command`,
    { path: shown },
  );
}

export function unstable(shown: string): ToolhostError {
  return new ToolhostError('project_busy', `"${shown}" kept changing while it was being opened (a command is renaming it); retry when it has stopped`, {
    path: shown,
  });
}

/** The error for an entry that exists but is neither a regular file nor a folder (a FIFO, socket or device). */
export function notRegularFile(shown: string, st: Stats): ToolhostError {
  const kind = st.isFIFO()
    ? 'a FIFO (named pipe)'
    : st.isSocket()
      ? 'a socket'
      : st.isCharacterDevice() || st.isBlockDevice()
        ? 'a device'
        : 'not a regular file';
  return new ToolhostError(
    'not_a_regular_file',
    `"${shown}" is ${kind}; the file tools only read and write regular files: use a command if you really mean it`,
    { path: shown },
  );
}

/**
 * The ToolhostError for a failure of a file operation on `shown` (a project-relative path). System errors carry
 * the server's absolute paths in their messages; the error made here names only `shown`.
 */
export function fileError(err: unknown, shown: string): ToolhostError {
  if (err instanceof ToolhostError) return err;
  const code = errnoCode(err);
  switch (code) {
    case undefined:
      return toToolhostError(err);
    case 'ENOENT':
      return fileNotFound(shown);
    case 'EISDIR':
      return new ToolhostError('is_a_directory', `"${shown}" is a folder; pass a file path`, { path: shown });
    case 'ENOTDIR':
    case 'EEXIST':
    case 'ENOTEMPTY':
      return new ToolhostError(
        'not_a_directory',
        `"${shown}" or a folder on its way is not what it should be (a file where a folder belongs, or the reverse); choose another path`,
        {
          path: shown,
        },
      );
    case 'ELOOP':
      return new ToolhostError('bad_request', `"${shown}" goes through too many symlinks (a loop?); fix the links with a command`, { path: shown });
    case 'ENAMETOOLONG':
      return new ToolhostError('bad_request', `"${shown}" is too long a path (or has too long a name) for the file system; shorten it`, { path: shown });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new ToolhostError('permission_denied', `the file system refused access to "${shown}"; fix the mode with a command (chmod) first`, { path: shown });
    case 'ENOSPC':
    case 'EDQUOT':
      return toToolhostError(err);
    default:
      return new ToolhostError('internal', `file system error ${code} on "${shown}"`, { path: shown });
  }
}
