/**
 * A zip writer for tests, byte by byte: local headers, central directory and end record, with stored or
 * deflated entries. It writes whatever it is told (names with "..", absolute names, symlink modes, lying sizes),
 * which a real zip tool would refuse to produce.
 */
import { crc32, deflateRawSync } from 'node:zlib';

/** One entry of a crafted zip. */
export interface ZipEntrySpec {
  /** Entry name, written as is (UTF-8); a Buffer is written raw. */
  name: string | Buffer;
  /** Content (empty for folders). */
  data?: string | Buffer;
  /** Stored (default) or deflated. */
  method?: 'store' | 'deflate';
  /** Unix st_mode put in the high 16 bits of the external attributes (e.g. 0o100644, 0o120777). */
  unixMode?: number;
  /** Uncompressed size written in the headers instead of the real one. */
  declaredSize?: number;
}

/** A regular file entry. */
export function zipFile(name: string, data: string | Buffer, mode = 0o644, method: 'store' | 'deflate' = 'deflate'): ZipEntrySpec {
  return { name, data, method, unixMode: 0o100000 | mode };
}

/** A folder entry (the name gets its trailing "/"). */
export function zipDir(name: string): ZipEntrySpec {
  return { name: name.endsWith('/') ? name : `${name}/`, unixMode: 0o040755 };
}

/** A symlink entry: S_IFLNK mode, the target as content. */
export function zipSymlink(name: string, target: string): ZipEntrySpec {
  return { name, data: target, method: 'store', unixMode: 0o120777 };
}

/** The bytes of a zip file holding `entries` in order. */
export function buildZip(entries: ZipEntrySpec[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const spec of entries) {
    const name = typeof spec.name === 'string' ? Buffer.from(spec.name, 'utf8') : spec.name;
    const raw = typeof spec.data === 'string' ? Buffer.from(spec.data, 'utf8') : (spec.data ?? Buffer.alloc(0));
    const deflate = spec.method === 'deflate';
    const body = deflate ? deflateRawSync(raw) : raw;
    const crc = crc32(raw);
    const size = spec.declaredSize ?? raw.length;
    const method = deflate ? 8 : 0;
    const flags = 0x0800; // names are UTF-8

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(0x21, 12); // date: 1980-01-01
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, spec 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30); // extra
    central.writeUInt16LE(0, 32); // comment
    central.writeUInt16LE(0, 34); // disk
    central.writeUInt16LE(0, 36); // internal attributes
    central.writeUInt32LE(((spec.unixMode ?? 0) << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(0, 4);
  end.writeUInt16LE(0, 6);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  end.writeUInt16LE(0, 20);
  return Buffer.concat([...locals, cd, end]);
}
