/**
 * Reading a zip into a {@link TreeWriter}. yauzl parses the central directory (end record, zip64, extra fields,
 * names); the entries' data is read here, synchronously, through one large window over the file, so that the
 * header and content of thousands of small files cost a read per megabyte rather than several thread-pool round
 * trips each. Small entries are inflated in one call, capped at their declared size; larger ones are streamed
 * in chunks, never held whole. Every entry is checked against its declared size and its CRC-32 (yauzl checks
 * neither when its streams are not used).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { crc32, createInflateRaw, inflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';
import { errnoCode, ToolhostError } from '../errors.js';
import { corrupt, show, special, tooManyEntries, unsafe } from './refusals.js';
import { MAX_LINK_TARGET, type TreeFileSink, type TreeWriter } from './tree-writer.js';

/** Bytes read from the archive at once: the window consecutive headers and small entries are served from. */
const WINDOW_BYTES = 1024 * 1024;
/** Entries at most this large, compressed and expanded, are inflated in one call; larger ones are streamed. */
const SMALL_ENTRY_BYTES = 1024 * 1024;
/** Chunk size of a streamed entry, on both sides of the inflater. */
const STREAM_CHUNK_BYTES = 256 * 1024;
/**
 * Longest run of synchronous work before the thread turns its event loop over: a file-pool thread runs a few
 * tasks at once, and a read of another project must not wait for a whole extraction.
 */
const SLICE_MS = 10;

const LOCAL_HEADER_BYTES = 30;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const SPECIAL_TYPES: ReadonlyMap<number, string> = new Map([
  [0o010000, 'fifo'],
  [0o020000, 'character device'],
  [0o060000, 'block device'],
  [0o140000, 'socket'],
]);

/** Extracts the zip `file` into `out`. */
export async function readZip(file: string, out: TreeWriter): Promise<void> {
  let fd: number;
  let size: number;
  try {
    fd = openSync(file, 'r');
    size = fstatSync(fd).size;
  } catch (err) {
    throw corrupt(err);
  }
  try {
    let zip: yauzl.ZipFile;
    try {
      // decodeStrings: false because yauzl's own name check fails the whole archive with a message naming no
      // entry; names are decoded below as yauzl would, strictly: a backslash stays a backslash, and is refused.
      zip = await yauzl.fromRandomAccessReaderPromise(new DirectoryReader(new FileWindow(fd, size)), size, {
        lazyEntries: true,
        autoClose: true,
        decodeStrings: false,
        validateEntrySizes: true,
        strictFileNames: true,
      });
    } catch (err) {
      throw corrupt(err);
    }
    // The reader can report a failed close after we are done; unheard, that would kill the pool thread.
    zip.on('error', () => undefined);
    try {
      if (zip.entryCount > out.maxEntries) throw tooManyEntries(out.maxEntries, undefined, zip.entryCount);
      const data = new EntryData(fd, size);
      let last: string | undefined;
      let sliceStart = performance.now();
      for (;;) {
        let entry: yauzl.Entry | null;
        try {
          entry = await nextZipEntry(zip);
        } catch (err) {
          throw corrupt(err, undefined, last);
        }
        if (entry === null) return;
        last = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
        await zipEntry(data, entry, last, out);
        if (performance.now() - sliceStart > SLICE_MS) {
          await nextTurn();
          sliceStart = performance.now();
        }
      }
    } finally {
      zip.close();
    }
  } finally {
    closeSync(fd);
  }
}

function nextZipEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | null> {
  return new Promise((settle, reject) => {
    const done = (): void => {
      zip.off('entry', onEntry).off('end', onEnd).off('error', onError);
    };
    const onEntry = (entry: yauzl.Entry): void => {
      done();
      settle(entry);
    };
    const onEnd = (): void => {
      done();
      settle(null);
    };
    const onError = (err: unknown): void => {
      done();
      reject(err);
    };
    zip.on('entry', onEntry).on('end', onEnd).on('error', onError);
    zip.readEntry();
  });
}

async function zipEntry(data: EntryData, entry: yauzl.Entry, name: string, out: TreeWriter): Promise<void> {
  out.count(name);
  // The high 16 bits of the external attributes hold a Unix st_mode when the archiver was Unix-aware.
  const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
  const type = mode & S_IFMT;
  if (name.endsWith('/') && type !== 0 && type !== S_IFDIR) {
    throw unsafe(name, 'is named as a folder but marked as another kind of entry', 'repack the archive without it');
  }
  if (name.endsWith('/') || type === S_IFDIR) return out.directory(name);
  if (type === 0 || type === S_IFREG) {
    const sink = out.file(name, mode, entry.uncompressedSize);
    try {
      await data.copy(entry, name, sink);
    } finally {
      sink.close();
    }
    return;
  }
  if (type === S_IFLNK) return out.symlink(name, data.linkTarget(entry, name));
  throw special(name, SPECIAL_TYPES.get(type) ?? `entry of unknown type 0o${type.toString(8)}`);
}

/** The content of the archive's entries, decoded and checked. */
class EntryData {
  readonly #fd: number;
  readonly #size: number;
  readonly #window: FileWindow;

  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.#size = size;
    this.#window = new FileWindow(fd, size);
  }

  /** Writes the content of `entry` into `sink`; a decoding failure is `bad_archive` naming the entry. */
  async copy(entry: yauzl.Entry, name: string, sink: TreeFileSink): Promise<void> {
    const check = new ContentCheck(entry);
    // Failures of the sink (limits, the disk) are not the archive's fault and pass through as they are.
    let sinkError: unknown = null;
    const write = (chunk: Buffer): void => {
      check.add(chunk);
      try {
        sink.write(chunk);
      } catch (err) {
        sinkError = err;
        throw err;
      }
    };
    try {
      const start = this.#dataStart(entry, name);
      if (entry.compressedSize <= SMALL_ENTRY_BYTES && entry.uncompressedSize <= SMALL_ENTRY_BYTES) {
        write(this.#small(entry, start));
      } else if (entry.compressionMethod === 0) {
        for (const chunk of this.#raw(start, entry.compressedSize)) write(chunk);
      } else {
        await pipeline(this.#raw(start, entry.compressedSize), createInflateRaw({ chunkSize: STREAM_CHUNK_BYTES }), async (inflated: AsyncIterable<Buffer>) => {
          for await (const chunk of inflated) write(chunk);
        });
      }
      check.finish();
    } catch (err) {
      throw err === sinkError ? err : corrupt(err, name);
    }
  }

  /** The target of a symlink entry, whose content it is. */
  linkTarget(entry: yauzl.Entry, name: string): string {
    // Checked before the size, as reading the content would.
    decodable(entry, name);
    if (entry.uncompressedSize > MAX_LINK_TARGET) {
      throw unsafe(name, `is a symlink with a target longer than ${MAX_LINK_TARGET} bytes`, 'repack the archive without it');
    }
    try {
      const content = this.#small(entry, this.#dataStart(entry, name));
      const check = new ContentCheck(entry);
      check.add(content);
      check.finish();
      return content.toString('utf8');
    } catch (err) {
      throw corrupt(err, name);
    }
  }

  /** Where the entry's data starts, from its local header (whose name and extra field may differ in length). */
  #dataStart(entry: yauzl.Entry, name: string): number {
    decodable(entry, name);
    const at = entry.relativeOffsetOfLocalHeader;
    const header = this.#window.bytes(at, LOCAL_HEADER_BYTES);
    if (header.length < LOCAL_HEADER_BYTES) throw new Error('unexpected EOF');
    const signature = header.readUInt32LE(0);
    if (signature !== LOCAL_HEADER_SIGNATURE) throw new Error(`invalid local file header signature: 0x${signature.toString(16)}`);
    const start = at + LOCAL_HEADER_BYTES + header.readUInt16LE(26) + header.readUInt16LE(28);
    if (start + entry.compressedSize > this.#size) {
      throw new Error(`file data overflows file bounds: ${start} + ${entry.compressedSize} > ${this.#size}`);
    }
    return start;
  }

  /** The decoded content of a small entry, inflated no further than its declared size. */
  #small(entry: yauzl.Entry, start: number): Buffer {
    const raw = this.#window.bytes(start, entry.compressedSize);
    if (raw.length < entry.compressedSize) throw new Error('unexpected EOF');
    if (entry.compressionMethod === 0) return raw;
    // One more byte than declared is allowed through, so that a liar is caught as one rather than as a zlib limit.
    const cap = entry.uncompressedSize + 1;
    try {
      return inflateRawSync(raw, { maxOutputLength: cap, chunkSize: Math.max(64, Math.min(cap, STREAM_CHUNK_BYTES)) });
    } catch (err) {
      if (errnoCode(err) === 'ERR_BUFFER_TOO_LARGE') throw tooManyBytes(entry.uncompressedSize);
      throw err;
    }
  }

  /** The raw bytes of `length` at `start`, in chunks of their own (an inflater may still hold the previous one). */
  *#raw(start: number, length: number): Generator<Buffer> {
    for (let done = 0; done < length; ) {
      const chunk = Buffer.allocUnsafe(Math.min(STREAM_CHUNK_BYTES, length - done));
      const n = readFully(this.#fd, chunk, start + done);
      if (n < chunk.length) throw new Error('unexpected EOF');
      done += n;
      yield chunk;
    }
  }
}

/** Refuses an entry whose data cannot be decoded: encrypted, or compressed with anything but deflate. */
function decodable(entry: yauzl.Entry, name: string): void {
  if (entry.isEncrypted()) {
    throw new ToolhostError('bad_archive', `archive entry ${show(name)} is encrypted; repack the archive without a password`, { entry: name });
  }
  if (!entry.canDecodeFileData()) {
    throw new ToolhostError(
      'bad_archive',
      `archive entry ${show(name)} uses compression method ${entry.compressionMethod}, which cannot be read; repack the archive with deflate (the default of zip tools)`,
      { entry: name },
    );
  }
}

/** Counts and checksums an entry's decoded content as it goes by, against what the central directory says. */
class ContentCheck {
  #crc = 0;
  #bytes = 0;
  readonly #entry: yauzl.Entry;

  constructor(entry: yauzl.Entry) {
    this.#entry = entry;
  }

  add(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#entry.uncompressedSize) throw tooManyBytes(this.#entry.uncompressedSize);
    this.#crc = crc32(chunk, this.#crc);
  }

  finish(): void {
    if (this.#bytes < this.#entry.uncompressedSize) {
      throw new Error(`not enough bytes in the stream: expected ${this.#entry.uncompressedSize}, got ${this.#bytes}`);
    }
    if (this.#crc !== this.#entry.crc32) throw new Error('CRC-32 mismatch');
  }
}

function tooManyBytes(declared: number): Error {
  return new Error(`too many bytes in the stream: expected ${declared}`);
}

/** A file read through one large buffer: consecutive small reads cost one `pread` per window. */
class FileWindow {
  readonly #fd: number;
  readonly #size: number;
  #buffer: Buffer | null = null;
  #start = 0;
  #end = 0;

  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.#size = size;
  }

  /** The `length` bytes at `position` (fewer past the end of the file), valid until the next call. */
  bytes(position: number, length: number): Buffer {
    const end = Math.min(position + length, this.#size);
    if (this.#buffer === null || position < this.#start || end > this.#end) {
      if (length > WINDOW_BYTES) {
        const own = Buffer.allocUnsafe(Math.max(0, end - position));
        return own.subarray(0, readFully(this.#fd, own, position));
      }
      this.#buffer ??= Buffer.allocUnsafe(WINDOW_BYTES);
      this.#start = position;
      this.#end = position + readFully(this.#fd, this.#buffer, position);
    }
    // Clamped: past the end of the file the answer is empty, never a negative (from-the-end) subarray bound.
    const stop = Math.max(position, Math.min(end, this.#end));
    return this.#buffer.subarray(position - this.#start, stop - this.#start);
  }
}

/**
 * yauzl's reader of the central directory, served from a window: its many small reads become a few.
 *
 * This leans on yauzl internals its README does not promise: that opening a zip and `readEntry()` read only
 * through `read()` (its `readAndAssertNoEof`), never through `_readStreamForRange`, which the README says a
 * subclass must implement and this one refuses; and that the bytes read passed to `read()`'s callback are checked
 * against `length`, which is what catches a truncated directory. yauzl is pinned to an exact version in
 * package.json for this reason: check both again in `index.js` before moving it.
 */
class DirectoryReader extends yauzl.RandomAccessReader {
  readonly #window: FileWindow;

  constructor(window: FileWindow) {
    super();
    this.#window = window;
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    // yauzl's callback takes the bytes read too (its types leave that out), and checks them against `length`.
    const done = callback as (err: Error | null, bytesRead?: number) => void;
    let bytesRead: number;
    try {
      bytesRead = this.#window.bytes(position, length).copy(buffer, offset);
    } catch (err) {
      done(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    done(null, bytesRead);
  }

  override _readStreamForRange(): Readable {
    throw new Error('entry data is read by EntryData, not through yauzl streams');
  }
}

/** Reads into `buffer` from `position` until it is full or the file ends; the bytes read. */
function readFully(fd: number, buffer: Buffer, position: number): number {
  let n = 0;
  while (n < buffer.length) {
    const got = readSync(fd, buffer, n, buffer.length - n, position + n);
    if (got === 0) break;
    n += got;
  }
  return n;
}
