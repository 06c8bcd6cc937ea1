/** Crafted tar.gz archives for tests: any name, any type, whatever a real tar would refuse to write. */
import { gzipSync } from 'node:zlib';
import tar, { type Header } from 'tar-stream';

/** One entry of a crafted tar. */
export interface TarSpec {
  name: string;
  type?: Header['type'];
  data?: string | Buffer;
  /** Default: tar-stream's (0o644 for files, 0o755 for folders). */
  mode?: number;
  linkname?: string;
}

/** A tar.gz holding exactly `entries`. */
export async function buildTarGz(entries: TarSpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of pack) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type ?? 'file',
      ...(e.mode === undefined ? {} : { mode: e.mode }),
      ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
    };
    if (header.type === 'file') pack.entry(header, e.data ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  return gzipSync(await collected);
}
