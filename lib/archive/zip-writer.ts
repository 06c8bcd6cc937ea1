/**
 * Writing a zip, as Info-ZIP's `zip` does: for each entry a local header and its data (deflate at level 6, or
 * stored when deflate would not shrink it), then the central directory. The Unix st_mode goes in the high 16 bits
 * of the external attributes, with "made by Unix", so symlinks and execute bits survive `unzip` and our own
 * extractor. Zip64 records are written only where a count, size or offset does not fit in the classic fields.
 *
 * Everything is synchronous (see `pack.ts`). A file's local header is written first with its sizes and CRC left
 * blank and patched once its data is out, so even a huge file streams through in chunks without a data
 * descriptor; the patch usually lands in the output buffer, before the bytes reach the disk.
 */
import { writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ChunkedDeflate } from './chunked-deflate.js';
import type { ArchiveFileSink, ArchiveWriter, EntryMeta } from './types.js';

/** Output collected before a write: headers of small files would otherwise cost a syscall each. */
const OUTPUT_BUFFER_BYTES = 1024 * 1024;
const MAX16 = 0xffff;
const MAX32 = 0xffffffff;
/**
 * A file announced at this size or more gets a zip64 local header up front: its data could end up past 4 GiB
 * (deflate can grow incompressible data a little), and the local header's size cannot be changed afterwards.
 */
const ZIP64_LOCAL_BYTES = 0xf0000000;

const LOCAL_SIGNATURE = 0x04034b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const END_SIGNATURE = 0x06054b50;
const ZIP64_END_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const METHOD_STORE = 0;
const METHOD_DEFLATE = 8;
/** "Made by" Unix (3), spec 2.0; 4.5 for entries with zip64 fields. */
const MADE_BY_UNIX = 3 << 8;
const VERSION_DEFAULT = 20;
const VERSION_ZIP64 = 45;
/** General purpose flag bit 11: the name is UTF-8. */
const FLAG_UTF8 = 0x0800;
/** The MS-DOS folder attribute, for readers that look only at the low byte. */
const DOS_DIRECTORY = 0x10;
const S_IFLNK = 0o120000;
/** Extended timestamp extra field (mtime in Unix seconds), as `zip` writes it: `unzip` restores it in UTC. */
const EXTRA_TIMESTAMP = 0x5455;
const EXTRA_ZIP64 = 0x0001;

/** What the central directory needs of an entry once its data is written. */
interface Written {
  name: Buffer;
  flags: number;
  method: number;
  time: number;
  date: number;
  mtime: number;
  crc: number;
  compressed: number;
  size: number;
  offset: number;
  /** The external attributes: st_mode in the high 16 bits. */
  attributes: number;
}

/** Writes a zip to an open, empty file. */
export class ZipWriter implements ArchiveWriter {
  readonly #out: Output;
  /** Central directory records, built as entries complete (a few dozen bytes each, never the entries' data). */
  readonly #central = new Growable();
  #entries = 0;

  constructor(fd: number) {
    this.#out = new Output(fd);
  }

  directory(entry: EntryMeta): void {
    const attributes = ((((entry.mode & 0o7777) | 0o040000) << 16) | DOS_DIRECTORY) >>> 0;
    this.#whole(entry, `${entry.name}/`, Buffer.alloc(0), attributes);
  }

  symlink(entry: EntryMeta, target: string): void {
    this.#whole(entry, entry.name, Buffer.from(target, 'utf8'), ((S_IFLNK | 0o777) << 16) >>> 0);
  }

  file(entry: EntryMeta, size: number): ArchiveFileSink {
    const zip64 = size >= ZIP64_LOCAL_BYTES;
    const header = this.#begin(entry, entry.name, zip64);
    const written: Written = { ...header.fields, attributes: (((entry.mode & 0o7777) | 0o100000) << 16) >>> 0 };
    const deflate = new ChunkedDeflate();
    let method: number | null = null;
    return {
      write: (chunk) => {
        written.crc = crc32(chunk, written.crc);
        const last = written.size + chunk.length >= size;
        written.size += chunk.length;
        if (method === METHOD_STORE) {
          this.#data(written, chunk);
          return;
        }
        const packed = deflate.push(chunk, last);
        // Decided on the first chunk, as its data goes out before the rest is read.
        method ??= packed.length < chunk.length ? METHOD_DEFLATE : METHOD_STORE;
        this.#data(written, method === METHOD_DEFLATE ? packed : chunk);
      },
      end: () => {
        // A file that shrank while read still owes its stream an end.
        if (method === METHOD_DEFLATE && !deflate.finished) this.#data(written, deflate.push(Buffer.alloc(0), true));
        written.method = method ?? METHOD_STORE;
        this.#patch(header.at, written, zip64);
        this.#record(written);
      },
    };
  }

  finish(): number {
    const start = this.#out.position;
    const central = this.#central.bytes();
    this.#out.write(central);
    const needsZip64 = this.#entries >= MAX16 || central.length >= MAX32 || start >= MAX32;
    if (needsZip64) {
      const end64 = Buffer.alloc(56 + 20);
      end64.writeUInt32LE(ZIP64_END_SIGNATURE, 0);
      end64.writeBigUInt64LE(44n, 4); // the size of the rest of this record
      end64.writeUInt16LE(MADE_BY_UNIX | VERSION_ZIP64, 12);
      end64.writeUInt16LE(VERSION_ZIP64, 14);
      end64.writeBigUInt64LE(BigInt(this.#entries), 24);
      end64.writeBigUInt64LE(BigInt(this.#entries), 32);
      end64.writeBigUInt64LE(BigInt(central.length), 40);
      end64.writeBigUInt64LE(BigInt(start), 48);
      end64.writeUInt32LE(ZIP64_LOCATOR_SIGNATURE, 56);
      end64.writeBigUInt64LE(BigInt(start + central.length), 64);
      end64.writeUInt32LE(1, 72); // total number of disks
      this.#out.write(end64);
    }
    const end = Buffer.alloc(22);
    end.writeUInt32LE(END_SIGNATURE, 0);
    end.writeUInt16LE(Math.min(this.#entries, MAX16), 8);
    end.writeUInt16LE(Math.min(this.#entries, MAX16), 10);
    end.writeUInt32LE(Math.min(central.length, MAX32), 12);
    end.writeUInt32LE(Math.min(start, MAX32), 16);
    this.#out.write(end);
    this.#out.flush();
    return this.#out.position;
  }

  /** An entry whose data is at hand: a folder or a symlink (its target is its content, stored). */
  #whole(entry: EntryMeta, name: string, data: Buffer, attributes: number): void {
    const header = this.#begin(entry, name, false);
    const written: Written = { ...header.fields, attributes, method: METHOD_STORE, crc: crc32(data), size: data.length };
    this.#data(written, data);
    this.#patch(header.at, written, false);
    this.#record(written);
  }

  /** Writes a local header with blank CRC and sizes; where it starts, and the fields known so far. */
  #begin(entry: EntryMeta, name: string, zip64: boolean): { at: number; fields: Written } {
    const nameBytes = Buffer.from(name, 'utf8');
    const { time, date } = dosDateTime(entry.mtimeMs);
    const mtime = Math.min(Math.max(Math.floor(entry.mtimeMs / 1000), 0), MAX32);
    const flags = nameBytes.length === name.length ? 0 : FLAG_UTF8;
    const header = Buffer.alloc(30 + nameBytes.length + 9 + (zip64 ? 20 : 0));
    header.writeUInt32LE(LOCAL_SIGNATURE, 0);
    header.writeUInt16LE(zip64 ? VERSION_ZIP64 : VERSION_DEFAULT, 4);
    header.writeUInt16LE(flags, 6);
    header.writeUInt16LE(time, 10);
    header.writeUInt16LE(date, 12);
    header.writeUInt16LE(nameBytes.length, 26);
    header.writeUInt16LE(header.length - 30 - nameBytes.length, 28);
    nameBytes.copy(header, 30);
    let at = 30 + nameBytes.length;
    at = header.writeUInt16LE(EXTRA_TIMESTAMP, at);
    at = header.writeUInt16LE(5, at);
    at = header.writeUInt8(1, at); // flags: mtime present
    at = header.writeUInt32LE(mtime, at);
    if (zip64) {
      header.writeUInt16LE(EXTRA_ZIP64, at);
      header.writeUInt16LE(16, at + 2);
    }
    const offset = this.#out.position;
    this.#out.write(header);
    this.#entries += 1;
    const fields = { name: nameBytes, flags, method: METHOD_STORE, time, date, mtime, crc: 0, compressed: 0, size: 0, offset, attributes: 0 };
    return { at: offset, fields };
  }

  #data(written: Written, bytes: Buffer): void {
    this.#out.write(bytes);
    written.compressed += bytes.length;
  }

  /** Fills in the method, CRC and sizes of the local header at `at`. */
  #patch(at: number, written: Written, zip64: boolean): void {
    // Method, time, date, CRC and both sizes: bytes 8 to 26 of the header.
    const fields = Buffer.alloc(18);
    fields.writeUInt16LE(written.method, 0);
    fields.writeUInt16LE(written.time, 2);
    fields.writeUInt16LE(written.date, 4);
    fields.writeUInt32LE(written.crc, 6);
    fields.writeUInt32LE(zip64 ? MAX32 : written.compressed, 10);
    fields.writeUInt32LE(zip64 ? MAX32 : written.size, 14);
    this.#out.patch(fields, at + 8);
    if (zip64) {
      const sizes = Buffer.alloc(16);
      sizes.writeBigUInt64LE(BigInt(written.size), 0);
      sizes.writeBigUInt64LE(BigInt(written.compressed), 8);
      this.#out.patch(sizes, at + 30 + written.name.length + 9 + 4);
    }
  }

  /** Appends the central directory record of a completed entry. */
  #record(w: Written): void {
    // Zip64 extra: only the fields that overflow, in the order the format fixes.
    const big = [w.size, w.compressed, w.offset].filter((v) => v >= MAX32);
    const extraLength = 9 + (big.length > 0 ? 4 + 8 * big.length : 0);
    const record = Buffer.alloc(46 + w.name.length + extraLength);
    const version = big.length > 0 ? VERSION_ZIP64 : VERSION_DEFAULT;
    record.writeUInt32LE(CENTRAL_SIGNATURE, 0);
    record.writeUInt16LE(MADE_BY_UNIX | version, 4);
    record.writeUInt16LE(version, 6);
    record.writeUInt16LE(w.flags, 8);
    record.writeUInt16LE(w.method, 10);
    record.writeUInt16LE(w.time, 12);
    record.writeUInt16LE(w.date, 14);
    record.writeUInt32LE(w.crc, 16);
    record.writeUInt32LE(Math.min(w.compressed, MAX32), 20);
    record.writeUInt32LE(Math.min(w.size, MAX32), 24);
    record.writeUInt16LE(w.name.length, 28);
    record.writeUInt16LE(extraLength, 30);
    record.writeUInt32LE(w.attributes, 38);
    record.writeUInt32LE(Math.min(w.offset, MAX32), 42);
    w.name.copy(record, 46);
    let at = 46 + w.name.length;
    at = record.writeUInt16LE(EXTRA_TIMESTAMP, at);
    at = record.writeUInt16LE(5, at);
    at = record.writeUInt8(1, at);
    at = record.writeUInt32LE(w.mtime, at);
    if (big.length > 0) {
      at = record.writeUInt16LE(EXTRA_ZIP64, at);
      at = record.writeUInt16LE(8 * big.length, at);
      for (const v of big) at = record.writeBigUInt64LE(BigInt(v), at);
    }
    this.#central.append(record);
  }
}

/** MS-DOS date and time fields of a modification time, in local time as `zip` writes them; 1980 at the earliest. */
function dosDateTime(mtimeMs: number): { time: number; date: number } {
  const d = new Date(mtimeMs);
  if (Number.isNaN(d.getTime()) || d.getFullYear() < 1980) return { time: 0, date: (1 << 5) | 1 };
  const year = Math.min(d.getFullYear(), 2107) - 1980;
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: (year << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

/** A byte list that grows by doubling. */
class Growable {
  #buffer = Buffer.allocUnsafe(64 * 1024);
  #length = 0;

  append(bytes: Buffer): void {
    if (this.#length + bytes.length > this.#buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + bytes.length));
      this.#buffer.copy(bigger, 0, 0, this.#length);
      this.#buffer = bigger;
    }
    this.#length += bytes.copy(this.#buffer, this.#length);
  }

  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }
}

/** The archive file, written through a buffer; bytes already written can be patched in place. */
class Output {
  readonly #fd: number;
  readonly #buffer = Buffer.allocUnsafe(OUTPUT_BUFFER_BYTES);
  #used = 0;
  /** File position of the buffer's first byte: everything before it is on disk. */
  #flushed = 0;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /** Bytes written so far, buffered or not. */
  get position(): number {
    return this.#flushed + this.#used;
  }

  write(bytes: Buffer): void {
    if (this.#used + bytes.length > this.#buffer.length) this.flush();
    if (bytes.length >= this.#buffer.length) {
      writeAll(this.#fd, bytes, this.#flushed);
      this.#flushed += bytes.length;
      return;
    }
    this.#used += bytes.copy(this.#buffer, this.#used);
  }

  /** Overwrites bytes written earlier, at file position `at`. */
  patch(bytes: Buffer, at: number): void {
    if (at >= this.#flushed) {
      bytes.copy(this.#buffer, at - this.#flushed);
      return;
    }
    // Patches are small and never straddle the flush point by much; a straddling one is written in two parts.
    const onDisk = Math.min(bytes.length, this.#flushed - at);
    writeAll(this.#fd, bytes.subarray(0, onDisk), at);
    if (onDisk < bytes.length) bytes.copy(this.#buffer, 0, onDisk);
  }

  flush(): void {
    writeAll(this.#fd, this.#buffer.subarray(0, this.#used), this.#flushed);
    this.#flushed += this.#used;
    this.#used = 0;
  }
}

/** Writes all of `bytes` at `position`. */
function writeAll(fd: number, bytes: Buffer, position: number): void {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}
