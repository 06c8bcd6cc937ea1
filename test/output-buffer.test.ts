/**
 * lib/process/output-buffer.ts: a bounded capture keeps the head and the tail of a stream, counts what it dropped,
 * and never shows a multi-byte character cut in half, whatever the chunks the stream arrived in.
 */
import { expect } from 'chai';
import { type CapturedOutput, OutputBuffer, utf8Boundary, utf8StartBoundary } from '../lib/process/output-buffer.js';

/** Captures `data` with `cap`, pushed in the given chunk sizes (the rest in one last chunk). */
function capture(cap: number, data: Buffer, sizes: number[] = []): CapturedOutput {
  const b = new OutputBuffer(cap);
  let at = 0;
  for (const n of sizes) {
    b.push(data.subarray(at, at + n));
    at += n;
  }
  if (at < data.length) b.push(data.subarray(at));
  return b.result();
}

/** The parts around the omission marker. */
function parts(text: string): { head: string; omitted: number; tail: string } {
  const m = /^([\s\S]*)\n\[\.\.\. (\d+) bytes omitted \.\.\.\]\n([\s\S]*)$/.exec(text);
  expect(m, `no omission marker in ${JSON.stringify(text)}`).to.not.equal(null);
  return { head: m![1]!, omitted: Number(m![2]), tail: m![3]! };
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('output buffer', () => {
  it('keeps a stream that fits whole, at exactly the cap too', () => {
    expect(capture(10, Buffer.from('hello'))).to.deep.equal({ text: 'hello', truncated: false, omittedBytes: 0, totalBytes: 5, invalidUtf8: false });
    expect(capture(10, Buffer.from('0123456789'), [1, 1, 3])).to.deep.equal({
      text: '0123456789',
      truncated: false,
      omittedBytes: 0,
      totalBytes: 10,
      invalidUtf8: false,
    });
    expect(capture(10, Buffer.alloc(0))).to.deep.equal({ text: '', truncated: false, omittedBytes: 0, totalBytes: 0, invalidUtf8: false });
  });

  it('keeps the first ceil(cap/2) and the last floor(cap/2) bytes of a longer stream and counts the rest', () => {
    const r = capture(7, Buffer.from('abcdefghijklmnopqrstuvwxyz'), [2, 5, 1, 9]);
    expect(r).to.deep.equal({ text: 'abcd\n[... 19 bytes omitted ...]\nxyz', truncated: true, omittedBytes: 19, totalBytes: 26, invalidUtf8: false });
    expect(capture(10, Buffer.from('0123456789X'))).to.include({ truncated: true, omittedBytes: 1, totalBytes: 11 });
  });

  it('keeps only the count when the cap is 0 or 1', () => {
    expect(capture(0, Buffer.from('abc'))).to.deep.equal({
      text: '\n[... 3 bytes omitted ...]\n',
      truncated: true,
      omittedBytes: 3,
      totalBytes: 3,
      invalidUtf8: false,
    });
    expect(capture(1, Buffer.from('abc'), [1, 1])).to.deep.equal({
      text: 'a\n[... 2 bytes omitted ...]\n',
      truncated: true,
      omittedBytes: 2,
      totalBytes: 3,
      invalidUtf8: false,
    });
  });

  it('cuts at character boundaries, counting the bytes of a cut character as omitted', () => {
    // "€" is 3 bytes (E2 82 AC). Cap 7: head 4 bytes = "€" + a lead byte, tail 3 bytes.
    const euros = Buffer.from('€€€€€');
    expect(capture(7, euros)).to.include({ text: '€\n[... 9 bytes omitted ...]\n€', omittedBytes: 9, totalBytes: 15 });
    // The tail starts with the last two bytes of a "€": they are dropped, not shown as U+FFFD.
    expect(capture(7, Buffer.from('€€€€a'))).to.include({ text: '€\n[... 9 bytes omitted ...]\na', omittedBytes: 9 });
    // A 4-byte emoji cut after 1, 2 or 3 of its bytes in the head.
    for (const pad of ['', 'a', 'ab', 'abc']) {
      const r = capture(8, Buffer.from(`${pad}😀${'z'.repeat(20)}`));
      const { head } = parts(r.text);
      expect(head, pad).to.equal(pad.length === 0 ? '😀' : pad);
      expect(r.text, pad).to.not.include('\ufffd');
      expect(r.omittedBytes, pad).to.equal(r.totalBytes - Buffer.byteLength(head) - 4);
    }
  });

  it('gives the same answer however the stream was chunked, with head and tail true to the stream', () => {
    const rand = prng(0x5eed);
    const alphabet = ['a', 'b', '\n', 'é', '€', '😀', '日'];
    for (let round = 0; round < 300; round++) {
      const text = Array.from({ length: Math.floor(rand() * 60) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
      const data = Buffer.from(text);
      const cap = Math.floor(rand() * 40);
      const sizes: number[] = [];
      for (let left = data.length; left > 0; ) {
        const n = 1 + Math.floor(rand() * Math.min(left, 12));
        sizes.push(n);
        left -= n;
      }
      const what = `round ${round}: cap ${cap}, ${JSON.stringify(text)} in chunks ${sizes.join(',')}`;
      const whole = capture(cap, data);
      const chunked = capture(cap, data, sizes);
      expect(chunked, what).to.deep.equal(whole);
      expect(chunked.totalBytes, what).to.equal(data.length);
      if (data.length <= cap) {
        expect(chunked, what).to.deep.equal({ text, truncated: false, omittedBytes: 0, totalBytes: data.length, invalidUtf8: false });
        continue;
      }
      expect(chunked.truncated, what).to.equal(true);
      const { head, omitted, tail } = parts(chunked.text);
      expect(omitted, what).to.equal(chunked.omittedBytes);
      expect(text.startsWith(head), `${what}: head ${JSON.stringify(head)}`).to.equal(true);
      expect(text.endsWith(tail), `${what}: tail ${JSON.stringify(tail)}`).to.equal(true);
      const headBytes = Buffer.byteLength(head);
      const tailBytes = Buffer.byteLength(tail);
      expect(headBytes + omitted + tailBytes, what).to.equal(data.length);
      // Within budget, and short of it only by the bytes of one cut character at each end.
      expect(headBytes, what).to.be.within(Math.max(0, Math.ceil(cap / 2) - 3), Math.ceil(cap / 2));
      expect(tailBytes, what).to.be.within(Math.max(0, Math.floor(cap / 2) - 3), Math.floor(cap / 2));
    }
  });

  it('keeps the last bytes of a chunk far larger than the cap', () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 'x');
    big.write('END', big.length - 3);
    const r = capture(100, Buffer.concat([Buffer.from('START'), big]), [5]);
    const { head, tail } = parts(r.text);
    expect(head).to.equal(`START${'x'.repeat(45)}`);
    expect(tail).to.equal(`${'x'.repeat(47)}END`);
    expect(r.omittedBytes).to.equal(r.totalBytes - 100);
  });

  it('flags kept bytes that are not UTF-8, in a whole stream and in a head or tail of a cut one', () => {
    expect(capture(10, Buffer.from([0x61, 0xff])).invalidUtf8).to.equal(true);
    expect(capture(10, Buffer.from('caf\u00e9')).invalidUtf8).to.equal(false);
    const cut = Buffer.concat([Buffer.from([0xff]), Buffer.alloc(100, 0x61)]);
    expect(capture(10, cut)).to.include({ truncated: true, invalidUtf8: true });
    expect(capture(10, Buffer.concat([Buffer.alloc(100, 0x61), Buffer.from([0xfe])]))).to.include({ truncated: true, invalidUtf8: true });
    // A character cut by the head/tail split is dropped whole, not flagged.
    expect(capture(10, Buffer.from('\u00e9'.repeat(50)))).to.include({ truncated: true, invalidUtf8: false });
  });

  it('passes binary output through instead of holding bytes back for a character that can never complete', () => {
    // Invalid lead bytes and stray continuation bytes at the end are kept (shown as U+FFFD) ...
    for (const tail of [[0xff], [0xf8, 0x80], [0x80], [0x80, 0x80, 0x80, 0x80]]) {
      const buf = Buffer.from([0x61, ...tail]);
      expect(utf8Boundary(buf, buf.length), tail.join(',')).to.equal(buf.length);
    }
    // ... while a valid sequence cut short is held back whole.
    for (const seq of [[0xc3], [0xe2, 0x82], [0xe2], [0xf0, 0x9f, 0x98], [0xf0, 0x9f], [0xf0]]) {
      const buf = Buffer.from([0x61, ...seq]);
      expect(utf8Boundary(buf, buf.length), seq.join(',')).to.equal(1);
    }
    for (const seq of [
      [0xc3, 0xa9],
      [0xe2, 0x82, 0xac],
      [0xf0, 0x9f, 0x98, 0x80],
    ]) {
      const buf = Buffer.from([0x61, ...seq]);
      expect(utf8Boundary(buf, buf.length), seq.join(',')).to.equal(buf.length);
    }
    expect(utf8Boundary(Buffer.alloc(0), 0)).to.equal(0);
    expect(utf8StartBoundary(Buffer.from([0x82, 0xac, 0x61]))).to.equal(2);
    expect(utf8StartBoundary(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x61])), 'skips at most 3').to.equal(3);
    expect(utf8StartBoundary(Buffer.from('abc'))).to.equal(0);
    const r = capture(6, Buffer.from([0xff, 0xfe, 0xfd, 0, 1, 2, 3, 4, 0xff, 0xfe]));
    expect(r).to.include({ truncated: true, omittedBytes: 4, totalBytes: 10 });
  });
});
