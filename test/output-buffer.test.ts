/**
 * lib/process/output-buffer.ts: a bounded capture keeps the head and the tail of a stream, counts what it dropped
 * (bytes and newlines), cuts on line boundaries where a newline is near, and never keeps a multi-byte character
 * cut in half, whatever the chunks the stream arrived in.
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

/** A capture as plain values: head and tail decoded. */
function plain(c: CapturedOutput) {
  return {
    head: c.head.toString('utf8'),
    tail: c.tail.toString('utf8'),
    truncated: c.truncated,
    omittedBytes: c.omittedBytes,
    totalBytes: c.totalBytes,
    newlines: c.newlines,
  };
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
    const none = { tail: '', truncated: false, omittedBytes: 0 };
    expect(plain(capture(10, Buffer.from('hello')))).to.deep.equal({ ...none, head: 'hello', totalBytes: 5, newlines: 0 });
    expect(plain(capture(10, Buffer.from('012345678\n'), [1, 1, 3]))).to.deep.equal({ ...none, head: '012345678\n', totalBytes: 10, newlines: 1 });
    expect(plain(capture(10, Buffer.alloc(0)))).to.deep.equal({ ...none, head: '', totalBytes: 0, newlines: 0 });
  });

  it('keeps the first ceil(cap/2) and the last floor(cap/2) bytes of a stream without newlines and counts the rest', () => {
    const r = capture(7, Buffer.from('abcdefghijklmnopqrstuvwxyz'), [2, 5, 1, 9]);
    expect(plain(r)).to.deep.equal({ head: 'abcd', tail: 'xyz', truncated: true, omittedBytes: 19, totalBytes: 26, newlines: 0 });
    expect(capture(10, Buffer.from('0123456789X'))).to.include({ truncated: true, omittedBytes: 1, totalBytes: 11 });
    expect(plain(capture(0, Buffer.from('abc')))).to.include({ head: '', tail: '', omittedBytes: 3 });
  });

  it('ends the head and starts the tail on a line boundary when a newline is in the half nearest the cut', () => {
    // cap 20: head 10 bytes "ab\ncdefg\nh" -> newline at 8 (in its second half): head "ab\ncdefg\n".
    const data = Buffer.from('ab\ncdefg\nhijklmnopqrstuvw\nxyz\n12345\n');
    const r = plain(capture(20, data, [3, 3, 3]));
    expect(r.head).to.equal('ab\ncdefg\n');
    expect(r.tail).to.equal('12345\n');
    expect(r.newlines).to.equal(5);
    expect(r.omittedBytes).to.equal(data.length - r.head.length - r.tail.length);
    // A newline only in the half far from the cut: cut mid-line instead of keeping almost nothing.
    const far = plain(capture(20, Buffer.from(`a\n${'x'.repeat(40)}\nyz`)));
    expect(far.head).to.equal(`a\n${'x'.repeat(8)}`);
    expect(far.tail).to.equal(`${'x'.repeat(7)}\nyz`);
  });

  it('cuts at character boundaries, counting the bytes of a cut character as omitted', () => {
    // "€" is 3 bytes (E2 82 AC). Cap 7: head 4 bytes = "€" + a lead byte, tail 3 bytes.
    expect(plain(capture(7, Buffer.from('€€€€€')))).to.include({ head: '€', tail: '€', omittedBytes: 9, totalBytes: 15 });
    // The tail starts with the last two bytes of a "€": they are dropped, not shown as U+FFFD.
    expect(plain(capture(7, Buffer.from('€€€€a')))).to.include({ head: '€', tail: 'a', omittedBytes: 9 });
    // A 4-byte emoji cut after 1, 2 or 3 of its bytes in the head.
    for (const pad of ['', 'a', 'ab', 'abc']) {
      const r = plain(capture(8, Buffer.from(`${pad}😀${'z'.repeat(20)}`)));
      expect(r.head, pad).to.equal(pad.length === 0 ? '😀' : pad);
      expect(r.head + r.tail, pad).to.not.include('\ufffd');
      expect(r.omittedBytes, pad).to.equal(r.totalBytes - Buffer.byteLength(r.head) - 4);
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
      const whole = plain(capture(cap, data));
      const chunked = plain(capture(cap, data, sizes));
      expect(chunked, what).to.deep.equal(whole);
      expect(chunked.totalBytes, what).to.equal(data.length);
      expect(chunked.newlines, what).to.equal(text.split('\n').length - 1);
      if (data.length <= cap) {
        expect(chunked, what).to.deep.equal({ head: text, tail: '', truncated: false, omittedBytes: 0, totalBytes: data.length, newlines: chunked.newlines });
        continue;
      }
      expect(chunked.truncated, what).to.equal(true);
      const { head, tail, omittedBytes } = chunked;
      expect(text.startsWith(head), `${what}: head ${JSON.stringify(head)}`).to.equal(true);
      expect(text.endsWith(tail), `${what}: tail ${JSON.stringify(tail)}`).to.equal(true);
      const headBytes = Buffer.byteLength(head);
      const tailBytes = Buffer.byteLength(tail);
      expect(headBytes + omittedBytes + tailBytes, what).to.equal(data.length);
      // Within budget; short of it by at most half (a line boundary in the near half) or one cut character.
      expect(headBytes, what).to.be.at.most(Math.ceil(cap / 2));
      expect(tailBytes, what).to.be.at.most(Math.floor(cap / 2));
      expect(headBytes, what).to.be.at.least(Math.min(Math.ceil(cap / 2) / 2, Math.ceil(cap / 2) - 3));
      expect(tailBytes, what).to.be.at.least(Math.min(Math.floor(cap / 2) / 2, Math.floor(cap / 2) - 3));
    }
  });

  it('keeps the last bytes of a chunk far larger than the cap', () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 'x');
    big.write('END', big.length - 3);
    const r = plain(capture(100, Buffer.concat([Buffer.from('START'), big]), [5]));
    expect(r.head).to.equal(`START${'x'.repeat(45)}`);
    expect(r.tail).to.equal(`${'x'.repeat(47)}END`);
    expect(r.omittedBytes).to.equal(r.totalBytes - 100);
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
    expect(r.head).to.deep.equal(Buffer.from([0xff, 0xfe, 0xfd]));
    expect(r).to.include({ truncated: true, omittedBytes: 4, totalBytes: 10 });
  });
});
