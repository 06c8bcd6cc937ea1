/**
 * The types that cross files of `lib/archive`: the extraction limits (from the configuration to extraction and
 * packing) and the contract between packing and the archive formats it writes. A leaf: it imports nothing, so
 * every file here can use these types without importing the files that use them in turn.
 */

/** Bomb limits of one extraction: the `archive` section of the configuration. */
export interface ArchiveLimits {
  /** Most entries (files, folders, links) the archive may hold. */
  maxEntries: number;
  /** Most bytes of file content the archive may expand to. */
  maxTotalBytes: number;
  /** Largest ratio of expanded bytes to the archive file's size. */
  maxRatio: number;
}

/** What every entry tells the archive writers. */
export interface EntryMeta {
  /** Root-relative name, "/"-separated, without a trailing "/". */
  name: string;
  /** The full st_mode (type and permission bits). */
  mode: number;
  mtimeMs: number;
}

/**
 * The content of one file entry going into an archive being written. Not to be confused with `TreeFileSink`
 * (`tree-writer.ts`), the file on disk an extracted entry's content goes to.
 */
export interface ArchiveFileSink {
  /** Adds the next chunk; the caller may reuse the chunk's memory once this returns. */
  write(chunk: Buffer): void;
  /** Completes the entry once its content is written (even when fewer bytes came than announced). */
  end(): void;
}

/** An archive format being written to an open file, one entry at a time. */
export interface ArchiveWriter {
  directory(entry: EntryMeta): void;
  symlink(entry: EntryMeta, target: string): void;
  /** Starts a file whose content will be at most `size` bytes. */
  file(entry: EntryMeta, size: number): ArchiveFileSink;
  /** Writes the archive's closing records; returns the archive's size in bytes. */
  finish(): number;
}
