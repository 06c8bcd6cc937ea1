/**
 * Images file_read returns as images (png, jpeg, gif, webp), told apart by their magic bytes, never by the name
 * alone: a text file named logo.png is text, a png named logo.dat is an image. Dimensions are read from the
 * header when that is cheap (a few fixed offsets; for jpeg a walk over the segment headers), never by decoding.
 */

/** An image format file_read returns as an image. */
export type ImageType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';

/** Bytes {@link imageType} needs to look at. */
export const IMAGE_SNIFF_BYTES = 16;

/** The image format whose magic bytes `head` starts with, or null. */
export function imageType(head: Buffer): ImageType | null {
  if (head.length >= 8 && head.subarray(0, 8).equals(PNG)) return 'image/png';
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return 'image/jpeg';
  const ascii = head.subarray(0, 12).toString('latin1');
  if (ascii.startsWith('GIF87a') || ascii.startsWith('GIF89a')) return 'image/gif';
  if (ascii.startsWith('RIFF') && ascii.slice(8, 12) === 'WEBP') return 'image/webp';
  return null;
}

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Width and height in pixels, when the header says them where expected; null otherwise (a truncated file). */
export function imageSize(type: ImageType, b: Buffer): { width: number; height: number } | null {
  try {
    switch (type) {
      case 'image/png':
        // IHDR is the first chunk: width and height at 16 and 20, big-endian.
        return b.subarray(12, 16).toString('latin1') === 'IHDR' ? { width: b.readUInt32BE(16), height: b.readUInt32BE(20) } : null;
      case 'image/gif':
        return { width: b.readUInt16LE(6), height: b.readUInt16LE(8) };
      case 'image/webp':
        return webpSize(b);
      case 'image/jpeg':
        return jpegSize(b);
    }
  } catch {
    return null; // a read past the end: the header is cut short
  }
}

function webpSize(b: Buffer): { width: number; height: number } | null {
  const chunk = b.subarray(12, 16).toString('latin1');
  if (chunk === 'VP8X') return { width: 1 + b.readUIntLE(24, 3), height: 1 + b.readUIntLE(27, 3) };
  if (chunk === 'VP8L') {
    const bits = b.readUInt32LE(21);
    return { width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) };
  }
  if (chunk === 'VP8 ') return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
  return null;
}

/** Walks the jpeg's segment headers to the first start-of-frame, which holds the size. */
function jpegSize(b: Buffer): { width: number; height: number } | null {
  let at = 2;
  while (at + 9 < b.length) {
    if (b[at] !== 0xff) return null;
    const marker = b[at + 1] ?? 0;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    // SOF0..SOF15 but DHT (c4), JPG (c8) and DAC (cc).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: b.readUInt16BE(at + 5), width: b.readUInt16BE(at + 7) };
    }
    at += 2 + b.readUInt16BE(at + 2);
  }
  return null;
}
