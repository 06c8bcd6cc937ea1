/**
 * The errors an extraction fails with, shared by the tree writer and the zip and tar readers: each names the
 * entry at fault and tells the uploader how to repack the archive.
 */
import { ToolhostError } from '../errors.js';

/** An entry name for a message: quoted, escaped, and cut when absurdly long. */
export function show(name: string): string {
  const quoted = JSON.stringify(name);
  return quoted.length > 300 ? `${quoted.slice(0, 300)}..."` : quoted;
}

/** `unsafe_archive_entry`: `entry` could write outside the project or is not a plain file, folder or safe link. */
export function unsafe(entry: string, problem: string, remedy: string): ToolhostError {
  return new ToolhostError('unsafe_archive_entry', `archive entry ${show(entry)} ${problem}; ${remedy}`, { entry });
}

/** `unsafe_archive_entry` for a device, fifo, socket or unknown kind of entry. */
export function special(entry: string, kind: string): ToolhostError {
  return unsafe(entry, `is a ${kind}, not a file, folder or symlink`, 'repack the archive without device files, fifos, sockets or other special entries');
}

/** `archive_too_large` for an entry count past `limit`, at `entry` or from the count the archive declares. */
export function tooManyEntries(limit: number, entry?: string, declared?: number): ToolhostError {
  const what =
    entry === undefined
      ? `holds ${declared ?? 'too many'} entries, more than the limit of ${limit}`
      : `has more than ${limit} entries (stopped at ${show(entry)})`;
  return new ToolhostError(
    'archive_too_large',
    `archive ${what}; repack the archive with fewer files (leave out dependencies and build outputs)`,
    entry === undefined ? { limit } : { entry, limit },
  );
}

/**
 * `bad_archive` for an error of the archive libraries, naming the entry it broke off in or the last one read
 * before it (a ToolhostError passes through unchanged).
 */
export function corrupt(err: unknown, entry?: string, after?: string): ToolhostError {
  if (err instanceof ToolhostError) return err;
  const why = err instanceof Error ? err.message : String(err);
  if (entry !== undefined) {
    return new ToolhostError('bad_archive', `archive entry ${show(entry)} is corrupt or truncated (${why}); repack the archive and upload it again`, { entry });
  }
  const where = after === undefined ? '' : ` after entry ${show(after)}`;
  return new ToolhostError(
    'bad_archive',
    `archive is corrupt, truncated or not in the format it claims${where} (${why}); repack the archive and upload it again`,
    after === undefined ? undefined : { after },
  );
}
