/**
 * Writing a tar.gz, as `tar czf` does: POSIX ustar headers (a pax extended header for a name, link target or size
 * that does not fit), gzip at level 6. The tar bytes are collected in 1 MiB chunks and each chunk deflated with a
 * synchronous zlib call (see {@link ChunkedDeflate}), so the result is one gzip member, not a concatenation of
 * several, and no byte of it goes through libuv's shared pool.
 *
 * tar-stream's packer was the alternative; it is a stream, so every entry would cost event loop turns, and it
 * still needs a gzip behind it. Headers are simple enough to write here.
 */
import { writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ChunkedDeflate } from './chunked-deflate.js';
import type { ArchiveFileSink, ArchiveWriter, EntryMeta } from './types.js';

/** Tar bytes deflated at once; a multiple of the 512-byte block, so headers never straddle two chunks. */
const CHUNK_BYTES = 1024 * 1024;
const BLOCK = 512;
/** Largest value of an 11-digit octal field (size, mtime): 8 GiB - 1. */
const MAX_OCTAL_11 = 0o77777777777;
/** gzip magic, deflate, no flags, no mtime, no extra flags, OS Unix. */
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
const ZEROS = Buffer.alloc(64 * 1024);

/** The typeflags written. */
const TYPE_FILE = '0';
const TYPE_SYMLINK = '2';
const TYPE_DIRECTORY = '5';
const TYPE_PAX = 'x';

/** Writes a tar.gz to an open, empty file. */
export class TarGzWriter implements ArchiveWriter {
  readonly #fd: number;
  readonly #chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  #used = 0;
  readonly #deflate = new ChunkedDeflate();
  /** CRC-32 and length of the tar bytes, for the gzip trailer. */
  #crc = 0;
  #tarBytes = 0;
  #archiveBytes = 0;

  constructor(fd: number) {
    this.#fd = fd;
    this.#emit(GZIP_HEADER);
  }

  directory(entry: EntryMeta): void {
    this.#header(`${entry.name}/`, TYPE_DIRECTORY, entry.mode & 0o7777, 0, entry.mtimeMs, '');
  }

  symlink(entry: EntryMeta, target: string): void {
    this.#header(entry.name, TYPE_SYMLINK, 0o777, 0, entry.mtimeMs, target);
  }

  file(entry: EntryMeta, size: number): ArchiveFileSink {
    this.#header(entry.name, TYPE_FILE, entry.mode & 0o7777, size, entry.mtimeMs, '');
    let written = 0;
    return {
      write: (chunk) => {
        this.#put(chunk);
        written += chunk.length;
      },
      end: () => {
        // The header announced `size`: a file that shrank while read is padded with zeros to it, as GNU tar does.
        for (let missing = size - written; missing > 0; missing -= ZEROS.length) this.#put(ZEROS.subarray(0, Math.min(missing, ZEROS.length)));
        this.#pad();
      },
    };
  }

  finish(): number {
    // The end of archive: two zero blocks.
    this.#put(ZEROS.subarray(0, 2 * BLOCK));
    this.#compress(true);
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.#crc, 0);
    trailer.writeUInt32LE(this.#tarBytes % 2 ** 32, 4);
    this.#emit(trailer);
    return this.#archiveBytes;
  }

  /** Writes an entry's header, preceded by a pax header for whatever does not fit in ustar's fields. */
  #header(name: string, type: string, mode: number, size: number, mtimeMs: number, linkname: string): void {
    const pax: [string, string][] = [];
    const nameBytes = Buffer.from(name, 'utf8');
    let split = splitName(nameBytes);
    if (split === null) {
      pax.push(['path', name]);
      split = { prefix: Buffer.alloc(0), name: nameBytes.subarray(0, 100) };
    }
    let link = Buffer.from(linkname, 'utf8');
    if (link.length > 100) {
      pax.push(['linkpath', linkname]);
      link = link.subarray(0, 100);
    }
    if (size > MAX_OCTAL_11) pax.push(['size', String(size)]);
    const mtime = Math.min(Math.max(Math.floor(mtimeMs / 1000), 0), MAX_OCTAL_11);
    if (pax.length > 0) {
      const records = Buffer.from(pax.map(([key, value]) => paxRecord(key, value)).join(''), 'utf8');
      this.#put(ustar({ prefix: Buffer.alloc(0), name: Buffer.from('PaxHeader', 'utf8') }, TYPE_PAX, 0o644, records.length, mtime, Buffer.alloc(0)));
      this.#put(records);
      this.#pad();
    }
    this.#put(ustar(split, type, mode, Math.min(size, MAX_OCTAL_11), mtime, link));
  }

  /** Appends tar bytes, deflating each full chunk. */
  #put(bytes: Buffer): void {
    for (let done = 0; done < bytes.length; ) {
      const n = bytes.copy(this.#chunk, this.#used, done);
      this.#used += n;
      done += n;
      if (this.#used === CHUNK_BYTES) this.#compress(false);
    }
  }

  /** Zeros up to the next block boundary. */
  #pad(): void {
    const over = this.#used % BLOCK;
    if (over !== 0) this.#put(ZEROS.subarray(0, BLOCK - over));
  }

  #compress(last: boolean): void {
    const tar = this.#chunk.subarray(0, this.#used);
    this.#crc = crc32(tar, this.#crc);
    this.#tarBytes += tar.length;
    this.#emit(this.#deflate.push(tar, last));
    this.#used = 0;
  }

  #emit(bytes: Buffer): void {
    for (let done = 0; done < bytes.length; ) {
      done += writeSync(this.#fd, bytes, done, bytes.length - done, this.#archiveBytes + done);
    }
    this.#archiveBytes += bytes.length;
  }
}

/**
 * A name in ustar's two fields: `name` (100 bytes) alone, or split at a "/" into `prefix` (155) and `name`;
 * null when neither fits. A "/" byte never occurs inside a multi-byte UTF-8 character, so any split is safe.
 */
function splitName(bytes: Buffer): { prefix: Buffer; name: Buffer } | null {
  if (bytes.length <= 100) return { prefix: Buffer.alloc(0), name: bytes };
  // The first "/" that leaves at most 100 bytes after it gives the shortest prefix.
  for (let i = bytes.indexOf(0x2f); i !== -1; i = bytes.indexOf(0x2f, i + 1)) {
    if (bytes.length - i - 1 > 100) continue;
    if (i > 155 || i === bytes.length - 1) return null;
    return { prefix: bytes.subarray(0, i), name: bytes.subarray(i + 1) };
  }
  return null;
}

/** One pax record, "<length> <key>=<value>\n", whose length counts its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body, 'utf8');
  let length = bodyBytes + String(bodyBytes).length;
  if (String(length).length !== String(bodyBytes).length) length = bodyBytes + String(length).length;
  return `${length}${body}`;
}

/** A 512-byte ustar header. */
function ustar(split: { prefix: Buffer; name: Buffer }, type: string, mode: number, size: number, mtime: number, link: Buffer): Buffer {
  const header = Buffer.alloc(BLOCK);
  split.name.copy(header, 0);
  octal(header, 100, 8, mode);
  octal(header, 108, 8, 0); // uid: ownership is not the project's business
  octal(header, 116, 8, 0); // gid
  octal(header, 124, 12, size);
  octal(header, 136, 12, mtime);
  header.write(type, 156, 'latin1');
  link.copy(header, 157);
  header.write('ustar\u000000', 257, 'latin1');
  octal(header, 329, 8, 0); // devmajor
  octal(header, 337, 8, 0); // devminor
  split.prefix.copy(header, 345);
  // The checksum is taken with its own field read as spaces.
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return header;
}

/** A zero-padded octal number ending in NUL, filling `length` bytes at `at`. */
function octal(header: Buffer, at: number, length: number, value: number): void {
  header.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, at, 'latin1');
}
