/**
 * The archive formats a project can be stored as, recognised by their magic bytes rather than by a file name or
 * a Content-Type header (both are whatever the client says).
 */
import { open } from 'node:fs/promises';

/** A project archive format: a zip file, or a gzip-compressed tar. */
export type ArchiveFormat = 'zip' | 'tar.gz';

/** The number of leading bytes {@link detectFormat} needs to decide. */
const MAGIC_BYTES = 4;

/**
 * The format of an archive from its first bytes: `zip` for a local file header (`PK\x03\x04`) or the end of
 * central directory record of an empty zip (`PK\x05\x06`), `tar.gz` for the gzip magic (`1f 8b`). Null when
 * neither matches (including a head too short to tell). A gzip stream is assumed to hold a tar; extraction
 * reports `bad_archive` when it does not.
 */
export function detectFormat(head: Buffer): ArchiveFormat | null {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b) {
    if ((head[2] === 0x03 && head[3] === 0x04) || (head[2] === 0x05 && head[3] === 0x06)) return 'zip';
  }
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  return null;
}

/** The file name extension of a format, dot included: `.zip` or `.tar.gz`. */
export function archiveExtension(format: ArchiveFormat): '.zip' | '.tar.gz' {
  return format === 'zip' ? '.zip' : '.tar.gz';
}

/**
 * The format of the archive at `path`, from its first bytes (see {@link detectFormat}); null when it is neither
 * format or shorter than a magic number. Rejects with the file system error when the file cannot be read.
 */
export async function sniffFile(path: string): Promise<ArchiveFormat | null> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(MAGIC_BYTES);
    const { bytesRead } = await fh.read(head, 0, MAGIC_BYTES, 0);
    return detectFormat(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}
