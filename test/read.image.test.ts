/**
 * file_read of images: png, jpeg, gif and webp, told by their magic bytes, come back as images (HTTP: base64 with
 * their media type; a model: the image and one line); a text file named .png is text; an image over
 * budgets.imageBytes is refused saying what to do; other binary files stay refused.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { fileReadTool } from '../handlers/file-read.js';
import { modelContent } from '../lib/tool.js';
import { startServer, type TestServer } from './helpers/harness.js';

/** A real 1x1 png. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
/** A jpeg's header up to its frame (SOF0: 3 rows of 5 pixels). */
const JPEG = Buffer.concat([
  Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]),
  Buffer.from('JFIF\0\x01\x01\0\0\x01\0\x01\0\0', 'latin1'),
  Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x03, 0x00, 0x05, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01]),
  Buffer.from([0xff, 0xd9]),
]);
const GIF = Buffer.concat([Buffer.from('GIF89a', 'latin1'), Buffer.from([7, 0, 9, 0, 0, 0, 0]), Buffer.from(';')]);
const WEBP = Buffer.concat([Buffer.from('RIFF\x1a\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0', 'latin1'), Buffer.from([0x0f, 0, 0, 0x1f, 0, 0])]);

describe('file_read of images', () => {
  let s: TestServer;
  let root: string;

  before(async () => {
    s = await startServer({ budgets: { imageBytes: 4096, imageSide: 40 } });
    expect((await s.putProject('img', { 'keep.txt': 'x\n' })).status).to.equal(201);
    root = join(s.dataDir, 'projects', 'img');
    await writeFile(join(root, 'logo.png'), PNG);
    await writeFile(join(root, 'photo.jpg'), JPEG);
    await writeFile(join(root, 'anim.gif'), GIF);
    await writeFile(join(root, 'pic.webp'), WEBP);
    await writeFile(join(root, 'png-named.dat'), PNG);
    await writeFile(join(root, 'fake.png'), 'not an image, just text\n');
    await writeFile(join(root, 'huge.png'), Buffer.concat([PNG, Buffer.alloc(5000)]));
    // The same png claiming 41 pixels wide: one over the side limit of this server.
    const wide = Buffer.from(PNG);
    wide.writeUInt32BE(41, 16);
    await writeFile(join(root, 'wide.png'), wide);
    await writeFile(join(root, 'blob.bin'), Buffer.from([1, 2, 0, 3]));
  });
  after(() => s?.close());

  const cases = [
    ['logo.png', 'image/png', PNG, 1, 1],
    ['photo.jpg', 'image/jpeg', JPEG, 5, 3],
    ['anim.gif', 'image/gif', GIF, 7, 9],
    ['pic.webp', 'image/webp', WEBP, 16, 32],
    ['png-named.dat', 'image/png', PNG, 1, 1],
  ] as const;
  for (const [path, mediaType, bytes, width, height] of cases) {
    it(`returns ${path} as ${mediaType}, by its magic bytes`, async () => {
      const r = await s.api('/file/read', { project_id: 'img', path });
      expect(r.status).to.equal(200);
      expect(r.body).to.deep.equal({ path, image: { media_type: mediaType, data: bytes.toString('base64') }, bytes: bytes.length, width, height });
      expect(fileReadTool.output.safeParse(r.body).success).to.equal(true);
      const model = modelContent(fileReadTool, r.body, { project_id: 'img', path }, loadConfig());
      expect(model).to.deep.equal([
        { type: 'image', mediaType, data: bytes.toString('base64') },
        { type: 'text', text: `[${path}: ${mediaType}, ${bytes.length} bytes, ${width}x${height}]` },
      ]);
    });
  }

  it('reads a text file named .png as text', async () => {
    const r = await s.api('/file/read', { project_id: 'img', path: 'fake.png' });
    expect(r.status).to.equal(200);
    expect(r.body).to.include({ content: 'not an image, just text\n', total_lines: 1 });
  });

  it('refuses an image over budgets.imageBytes with file_too_large, saying what to do', async () => {
    const r = await s.api('/file/read', { project_id: 'img', path: 'huge.png' });
    expect(r.status).to.equal(413);
    expect(r.body.error.code).to.equal('file_too_large');
    expect(r.body.error.message).to.include('budgets.imageBytes (4096)');
    expect(r.body.error.message).to.include('smaller copy');
  });

  it('refuses an image wider or taller than budgets.imageSide with file_too_large, saying how to shrink it', async () => {
    const r = await s.api('/file/read', { project_id: 'img', path: 'wide.png' });
    expect(r.status).to.equal(413);
    expect(r.body.error).to.include({ code: 'file_too_large', width: 41, height: 1, max_side: 40 });
    expect(r.body.error.message).to.include('budgets.imageSide (40 pixels a side)').and.include('-resize 40x40');
  });

  it('still refuses other binary files', async () => {
    const r = await s.api('/file/read', { project_id: 'img', path: 'blob.bin' });
    expect(r.status).to.equal(415);
    expect(r.body.error.code).to.equal('binary_file');
  });
});
