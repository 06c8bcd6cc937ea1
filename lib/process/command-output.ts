/**
 * A command's output cut to the answer's budget of characters (config budgets.outputChars, or the call's
 * max_output_chars), for both streams together: head and tail on line boundaries, where something was left out
 * one line saying what and exactly how to read it (job_status from the log offset where the left-out part
 * starts), and pages of the log within the budget. The same cuts serve the finished answer (from the head and
 * tail the handler held in memory) and the answers read from the logs (a command still running, a cancel, a page).
 */
import { isUtf8 } from 'node:buffer';
import { type FileHandle, open } from 'node:fs/promises';
import { charLength, countNewlines, formatBytes, formatCount, headCut, splitBudget, tailCut, utf8Boundary } from '../budget.js';
import { errnoCode } from '../errors.js';
import type { CapturedOutput } from './output-buffer.js';

export type Stream = 'stdout' | 'stderr';
export const STREAMS: readonly Stream[] = ['stdout', 'stderr'];
export type PerStream<T> = Record<Stream, T>;

/** Bytes of one stream from a log offset, as far as they are at hand. */
export interface Region {
  /** Log offset of the region's first byte. */
  start: number;
  /** Bytes in the region. */
  size: number;
  /** Its first bytes (the whole region when they are all of it). */
  head: Buffer;
  /** Its last bytes, when the head is not the whole region and a head-and-tail cut needs them. */
  tail: Buffer | null;
  /** Newlines between region offsets `from` and `to`: what a cut leaves out. */
  newlines(from: number, to: number): Promise<number>;
}

/** One stream of an answer. */
export interface StreamText {
  /** What the model reads: the kept text, with one line where something was left out. */
  text: string;
  /** Log offset just past the text: where reading on continues. */
  next: number;
  omittedBytes: number;
  /** Newlines in the left-out part: the lines left out, when the cuts fell on line boundaries. */
  omittedLines: number;
  /** Log offset where the left-out part starts (read it with job_status), null when nothing was left out. */
  omittedOffset: number | null;
  invalidUtf8: boolean;
}

/** Who the notice of a cut names. */
export interface NoticeContext {
  jobId: string;
  /** Log offset of each stream's end: the other stream's offset in a notice, so paging one skips the other. */
  ends: PerStream<number>;
  /** Bytes the log holds of each stream, when it holds fewer than the stream produced (commands.maxLogBytes). */
  logged?: PerStream<number | null>;
}

const whole = (r: Region): boolean => r.tail === null && r.head.length === r.size;

/** The line an answer shows where `bytes` bytes (`lines` newlines) of `stream` from `offset` were left out. */
export function omittedNotice(stream: Stream, lines: number, bytes: number, offset: number, ctx: NoticeContext): string {
  const what = lines > 0 ? `${formatCount(lines)} lines (${formatBytes(bytes)})` : `${formatBytes(bytes)} of one line`;
  const them = lines > 0 ? 'them' : 'it';
  const args = {
    job_id: ctx.jobId,
    stdout_offset: stream === 'stdout' ? offset : ctx.ends.stdout,
    stderr_offset: stream === 'stderr' ? offset : ctx.ends.stderr,
  };
  const logged = ctx.logged?.[stream];
  const lost = logged != null && offset + bytes > logged ? `; the log keeps only the first ${formatBytes(logged)}, the rest is gone` : '';
  return `[... ${what} of ${stream} omitted; read ${them} with job_status ${JSON.stringify(args)}${lost} ...]`;
}

/** Characters the longest notice of a job can take (kept free in a share that is cut). */
function noticeReserve(ctx: NoticeContext): number {
  const big = 999_999_999_999;
  return omittedNotice('stderr', big, big, 0, { ...ctx, ends: { stdout: big, stderr: big }, logged: { stdout: 0, stderr: 0 } }).length + 2;
}

/** The characters a region needs whole, or Infinity when it is not at hand whole (then it needs more than any budget). */
function need(r: Region): number {
  return whole(r) ? charLength(r.head) : Number.POSITIVE_INFINITY;
}

/**
 * Head and tail of each stream within `budget` characters for both together, on line boundaries, with one
 * notice line in each stream that was cut (counted in the budget).
 */
export async function headAndTail(regions: PerStream<Region>, budget: number, ctx: NoticeContext): Promise<PerStream<StreamText>> {
  const [out = 0, err = 0] = splitBudget(budget, [need(regions.stdout), need(regions.stderr)]);
  const reserve = noticeReserve(ctx);
  const [stdout, stderr] = await Promise.all([cutOne('stdout', regions.stdout, out, reserve, ctx), cutOne('stderr', regions.stderr, err, reserve, ctx)]);
  return { stdout, stderr };
}

async function cutOne(stream: Stream, r: Region, share: number, reserve: number, ctx: NoticeContext): Promise<StreamText> {
  if (whole(r) && charLength(r.head) <= share) return kept(r.head, Buffer.alloc(0), r.start + r.size, 0, 0, null, '');
  const content = Math.max(0, share - reserve);
  const h = headCut(r.head, Math.floor(content / 2));
  const window = r.tail ?? r.head.subarray(h.at);
  const windowStart = r.tail ? r.size - r.tail.length : h.at;
  const t = tailCut(window, content - h.chars);
  const tailFrom = windowStart + t.at;
  const lines = await r.newlines(h.at, tailFrom);
  const notice = omittedNotice(stream, lines, tailFrom - h.at, r.start + h.at, ctx);
  return kept(r.head.subarray(0, h.at), window.subarray(t.at), r.start + r.size, tailFrom - h.at, lines, r.start + h.at, notice);
}

function kept(head: Buffer, tail: Buffer, next: number, omittedBytes: number, omittedLines: number, omittedOffset: number | null, notice: string): StreamText {
  const h = head.toString('utf8');
  const text = notice ? `${h}${h === '' || h.endsWith('\n') ? '' : '\n'}${notice}\n${tail.toString('utf8')}` : h + tail.toString('utf8');
  return { text, next, omittedBytes, omittedLines, omittedOffset, invalidUtf8: !isUtf8(head) || !isUtf8(tail) };
}

/**
 * A page of each stream from the regions' starts within `budget` characters for both together: contiguous text,
 * ending on a line boundary where it is cut; `next` says where the following page starts.
 */
export function pages(regions: PerStream<Region>, budget: number): PerStream<StreamText> {
  const [out = 0, err = 0] = splitBudget(budget, [need(regions.stdout), need(regions.stderr)]);
  const page = (r: Region, share: number): StreamText => {
    const end = whole(r) && charLength(r.head) <= share ? r.head.length : headCut(r.head, share).at;
    return kept(r.head.subarray(0, end), Buffer.alloc(0), r.start + end, 0, 0, null, '');
  };
  return { stdout: page(regions.stdout, out), stderr: page(regions.stderr, err) };
}

/** The head and tail a command's handler held in memory, as a region of its stream from offset 0. */
export function heldRegion(c: CapturedOutput): Region {
  const tail = c.truncated ? c.tail : null;
  return {
    start: 0,
    size: c.totalBytes,
    head: c.head,
    tail,
    newlines: async (from, to) => {
      if (!tail) return countNewlines(c.head.subarray(from, to));
      return c.newlines - countNewlines(c.head.subarray(0, from)) - countNewlines(tail.subarray(to - (c.totalBytes - tail.length)));
    },
  };
}

/**
 * Bytes `from`..`size` of a log as a region, reading only what a budget of `maxChars` can show: all of it when
 * small, else a head (and with `withTail` a tail) of 3 bytes per character. Unless `final`, a character the
 * command has only half written yet is left for the next read.
 */
export async function logRegion(file: string, from: number, size: number, maxChars: number, final: boolean, withTail: boolean): Promise<Region> {
  const total = Math.max(0, size - from);
  const window = maxChars * 3 + 8;
  const complete = (b: Buffer): Buffer => (final ? b : b.subarray(0, utf8Boundary(b, b.length)));
  const count = (a: number, b: number): Promise<number> => newlinesIn(file, from + a, from + b);
  if (total <= 2 * window) {
    const all = complete(await readRange(file, from, total));
    return { start: from, size: all.length, head: all, tail: null, newlines: async (a, b) => countNewlines(all.subarray(a, b)) };
  }
  const head = await readRange(file, from, window);
  if (!withTail) return { start: from, size: total, head, tail: null, newlines: count };
  const tail = complete(await readRange(file, from + total - window, window));
  return { start: from, size: total - (window - tail.length), head, tail, newlines: count };
}

async function withFile<T>(file: string, none: T, use: (fh: FileHandle) => Promise<T>): Promise<T> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return none;
    throw err;
  }
  try {
    return await use(fh);
  } finally {
    await fh.close();
  }
}

async function readRange(file: string, from: number, length: number): Promise<Buffer> {
  if (length <= 0) return Buffer.alloc(0);
  return withFile(file, Buffer.alloc(0), async (fh) => {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, from);
    return buf.subarray(0, bytesRead);
  });
}

/** Newlines in bytes `from`..`to` of a log, read a MiB at a time. */
async function newlinesIn(file: string, from: number, to: number): Promise<number> {
  if (to <= from) return 0;
  return withFile(file, 0, async (fh) => {
    const buf = Buffer.alloc(Math.min(1 << 20, to - from));
    let n = 0;
    for (let at = from; at < to; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, to - at), at);
      if (bytesRead === 0) break;
      n += countNewlines(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    return n;
  });
}
