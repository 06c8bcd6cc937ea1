/**
 * lib/budget.ts and the cuts of lib/process/command-output.ts: within the budget of characters always, on line
 * boundaries where a newline is in the near half, multi-byte characters never split, counts exact.
 */
import { expect } from 'chai';
import { charLength, countNewlines, cutText, formatBytes, headCut, prefixWithin, splitBudget, suffixWithin, tailCut } from '../lib/budget.js';
import { headAndTail, heldRegion, pages, type Region } from '../lib/process/command-output.js';
import { OutputBuffer } from '../lib/process/output-buffer.js';

const lines = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}\n`).join('');

/** A region of `data` captured with `cap` bytes held, from log offset 0. */
function region(data: string | Buffer, cap = Number.MAX_SAFE_INTEGER): Region {
  const c = new OutputBuffer(cap);
  c.push(Buffer.isBuffer(data) ? data : Buffer.from(data));
  return heldRegion(c.result());
}
const ID = '00000000-0000-4000-8000-000000000000';
const NOTICE = /^\[\.\.\. .* omitted; read (them|it) with job_status (\{.*\}) \.\.\.\]$/;

describe('budget: cutting to characters on line boundaries', () => {
  it('counts characters as JavaScript does and never splits a character', () => {
    const text = 'a€😀日\n';
    const buf = Buffer.from(text);
    expect(charLength(buf)).to.equal(text.length);
    expect(countNewlines(Buffer.from('a\nb\n\n'))).to.equal(3);
    for (let n = 0; n <= text.length + 1; n++) {
      const kept = buf.subarray(0, prefixWithin(buf, n)).toString();
      expect(kept.length, `prefix ${n}`).to.be.at.most(n);
      expect(text.startsWith(kept) && !kept.includes('\ufffd'), `prefix ${n}`).to.equal(true);
      const tail = buf.subarray(suffixWithin(buf, n)).toString();
      expect(tail.length, `suffix ${n}`).to.be.at.most(n);
      expect(text.endsWith(tail) && !tail.includes('\ufffd'), `suffix ${n}`).to.equal(true);
    }
    // The longest that fits: 4 characters are 'a€😀' ('😀' is two); 3 cannot take the emoji's half.
    expect(buf.subarray(0, prefixWithin(buf, 4)).toString()).to.equal('a€😀');
    expect(buf.subarray(0, prefixWithin(buf, 3)).toString()).to.equal('a€');
  });

  it('counts bytes that are not UTF-8 as the U+FFFD they show as, and stays within budget', () => {
    const buf = Buffer.from([0xff, 0x61, 0xfe, 0x80, 0x62, 0xe2, 0x82]);
    for (let n = 0; n <= 8; n++) {
      expect(charLength(buf.subarray(0, prefixWithin(buf, n))), `prefix ${n}`).to.be.at.most(n);
      expect(charLength(buf.subarray(suffixWithin(buf, n))), `suffix ${n}`).to.be.at.most(n);
    }
  });

  it('cuts a head after the last whole line that fits, and a tail at the first line start that fits', () => {
    const text = lines(1, 100);
    const buf = Buffer.from(text);
    // 1..9 take 18 characters, 10 and 11 six more: "12\n" would make 27.
    const h = headCut(buf, 25);
    expect(h).to.deep.equal({ at: 24, chars: 24, onLine: true });
    const t = tailCut(buf, 13);
    expect(buf.subarray(t.at).toString()).to.equal(lines(97, 100)); // "96\n" would make 16
    expect(t).to.include({ chars: 13, onLine: true });
    expect(headCut(buf, 1000)).to.deep.equal({ at: buf.length, chars: text.length, onLine: true });
  });

  it('cuts mid-line when the nearest line boundary would keep less than half the budget', () => {
    const text = `short\n${'x'.repeat(1000)}\nend\n`;
    const buf = Buffer.from(text);
    const h = headCut(buf, 100);
    expect(h).to.deep.equal({ at: 100, chars: 100, onLine: false });
    const t = tailCut(buf, 100);
    expect(t.onLine).to.equal(false);
    expect(buf.subarray(t.at).toString()).to.equal(`${'x'.repeat(95)}\nend\n`);
    const one = Buffer.from('y'.repeat(5000));
    expect(headCut(one, 10).at).to.equal(10);
    expect(tailCut(one, 10).at).to.equal(4990);
  });

  it('splits a budget: all when all fit, equal shares otherwise, a part that needs less gives the rest', () => {
    expect(splitBudget(100, [10, 20])).to.deep.equal([10, 20]);
    expect(splitBudget(100, [10, Number.POSITIVE_INFINITY])).to.deep.equal([10, 90]);
    expect(splitBudget(100, [Number.POSITIVE_INFINITY, 30])).to.deep.equal([70, 30]);
    expect(splitBudget(101, [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY])).to.deep.equal([51, 50]);
    expect(splitBudget(100, [60, 70])).to.deep.equal([50, 50]);
  });

  it('cuts a string head and tail (cutText) with the lines left out counted', () => {
    expect(cutText('abc\n', 10)).to.equal(null);
    const c = cutText(lines(1, 1000), 100);
    expect(c).to.not.equal(null);
    const { head, tail, omittedLines, omittedChars } = c ?? { head: '', tail: '', omittedLines: 0, omittedChars: 0 };
    expect(head.length + tail.length).to.be.at.most(100);
    expect(head.endsWith('\n') && lines(1, 1000).startsWith(head) && lines(1, 1000).endsWith(tail)).to.equal(true);
    expect(head.split('\n').length - 1 + omittedLines + tail.split('\n').length - 1).to.equal(1000);
    expect(head.length + omittedChars + tail.length).to.equal(lines(1, 1000).length);
    expect(formatBytes(999)).to.equal('999 bytes');
    expect(formatBytes(1_959_142)).to.equal('2.0 MB');
  });
});

describe('budget: a command answer', () => {
  it('keeps both streams whole when they fit together, and gives a short stream all it needs', async () => {
    const a = await headAndTail({ stdout: region('out\n'), stderr: region('err\n') }, 1000, { jobId: ID, ends: { stdout: 4, stderr: 4 } });
    expect(a.stdout).to.deep.equal({ text: 'out\n', next: 4, omittedBytes: 0, omittedLines: 0, omittedOffset: null, invalidUtf8: false });
    const big = lines(1, 5000);
    const b = await headAndTail({ stdout: region(big), stderr: region('err\n') }, 2000, { jobId: ID, ends: { stdout: big.length, stderr: 4 } });
    expect(b.stderr.text).to.equal('err\n');
    expect(b.stdout.text.length).to.be.at.most(1996);
    expect(b.stdout.text.length).to.be.greaterThan(1500);
  });

  it('cuts on line boundaries within the budget, counting the lines and naming the offset that reads them', async () => {
    for (const cap of [Number.MAX_SAFE_INTEGER, 4000]) {
      const out = lines(1, 20000);
      const err = lines(1, 3000).replace(/^/gm, 'e');
      const ends = { stdout: out.length, stderr: err.length };
      const a = await headAndTail({ stdout: region(out, cap), stderr: region(err, cap) }, 1500, { jobId: ID, ends });
      expect(a.stdout.text.length + a.stderr.text.length, `cap ${cap}`).to.be.at.most(1500);
      for (const [s, full] of [
        ['stdout', out],
        ['stderr', err],
      ] as const) {
        const t = a[s];
        const parts = t.text.split('\n');
        const at = parts.findIndex((l) => NOTICE.test(l));
        expect(at, t.text).to.be.greaterThan(0);
        const head = `${parts.slice(0, at).join('\n')}\n`;
        const tail = parts.slice(at + 1).join('\n');
        const args = JSON.parse(NOTICE.exec(parts[at] ?? '')?.[2] ?? '{}');
        expect(args).to.deep.equal({
          job_id: ID,
          stdout_offset: s === 'stdout' ? head.length : ends.stdout,
          stderr_offset: s === 'stderr' ? head.length : ends.stderr,
        });
        expect(t.omittedOffset).to.equal(head.length);
        // The left-out part is exactly what lies between: whole lines, counted.
        const omitted = full.slice(head.length, full.length - tail.length);
        expect(head + omitted + tail).to.equal(full);
        expect(omitted.endsWith('\n') && head.endsWith('\n')).to.equal(true);
        expect(t.omittedLines).to.equal(countNewlines(Buffer.from(omitted)));
        expect(t.omittedBytes).to.equal(omitted.length);
        expect(parts[at]).to.include(`${t.omittedLines.toLocaleString('en-US')} lines`);
      }
    }
  });

  it('pages contiguous text within the budget, ending on a line boundary', () => {
    const text = lines(1, 3000);
    const p = pages({ stdout: region(text), stderr: region('') }, 1000);
    expect(p.stdout.text.length).to.be.at.most(1000);
    expect(text.startsWith(p.stdout.text) && p.stdout.text.endsWith('\n')).to.equal(true);
    expect(p.stdout.next).to.equal(p.stdout.text.length);
    expect(p.stdout.omittedBytes).to.equal(0);
  });

  it('flags bytes that are not UTF-8 in what it keeps', async () => {
    const a = await headAndTail({ stdout: region(Buffer.from([0x61, 0xff, 0x0a])), stderr: region('') }, 1000, { jobId: ID, ends: { stdout: 3, stderr: 0 } });
    expect(a.stdout.invalidUtf8).to.equal(true);
  });
});
