/**
 * The end marker of a persistent shell's exec, found in a stream cut anywhere: every byte of the command's output
 * passes, in order, whatever the chunking; a look-alike (another nonce, a NUL, a prefix) is output; the exit
 * status after the marker is read even when it arrives in pieces.
 */
import { expect } from 'chai';
import { MarkerScanner } from '../lib/process/exec-marker.js';

const NONCE = '0123456789abcdef0123456789abcdef';

/** Feeds `data` in chunks of `size` bytes; returns the output passed through and the status, once done. */
function feed(data: Buffer, size: number, withStatus = true): { out: string; done: boolean; status: number | undefined } {
  const scanner = new MarkerScanner(NONCE, withStatus);
  const out: Buffer[] = [];
  let done = false;
  let status: number | undefined;
  for (let i = 0; i < data.length; i += size) {
    const r = scanner.push(data.subarray(i, i + size));
    out.push(r.out);
    done ||= r.done;
    status ??= r.status;
  }
  return { out: Buffer.concat(out).toString('latin1'), done, status };
}

describe('exec marker scanner', () => {
  const output = `line one\n\0not-a-marker\0\n\0${NONCE.slice(0, 10)}\n\0${'f'.repeat(32)}\0 7\nlast line without newline`;

  it('passes all output before the marker, in any chunking, and reads the status', () => {
    const stream = Buffer.from(`${output}\0${NONCE}\0${42}\nstray bytes after`, 'latin1');
    for (const size of [1, 2, 3, 7, 33, 34, 35, 64, stream.length]) {
      const r = feed(stream, size);
      expect(r.out, `chunks of ${size}`).to.equal(output);
      expect(r.done, `chunks of ${size}`).to.equal(true);
      expect(r.status, `chunks of ${size}`).to.equal(42);
    }
  });

  it('holds back only a tail that could start the marker, and gives it back when it does not', () => {
    const scanner = new MarkerScanner(NONCE, false);
    expect(scanner.push(Buffer.from(`text\0${NONCE.slice(0, 5)}`)).out.toString()).to.equal('text');
    expect(scanner.push(Buffer.from('zzz')).out.toString('latin1')).to.equal(`\0${NONCE.slice(0, 5)}zzz`);
    expect(scanner.push(Buffer.from('plain')).out.toString()).to.equal('plain');
    const end = scanner.push(Buffer.from(`\0${NONCE}\0`));
    expect(end).to.include({ done: true });
    expect(end.out.length).to.equal(0);
  });

  it('never ends on another nonce, and an unreadable status is 255', () => {
    const other = `\0${'e'.repeat(32)}\0${0}\n`;
    expect(feed(Buffer.from(other, 'latin1'), 5).done).to.equal(false);
    expect(feed(Buffer.from(`\0${NONCE}\0zz\n`, 'latin1'), 4).status).to.equal(255);
    expect(feed(Buffer.from(`\0${NONCE}\0`, 'latin1'), 4, false).done).to.equal(true);
  });
});
