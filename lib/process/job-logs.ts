/**
 * Where a command's spooled output lives, and reading it back by byte offset: a page from an offset (the jobs
 * API), or head and tail of a range within a budget (a snapshot of a running command). Offsets always land on
 * UTF-8 character boundaries so a multi-byte character is never split between two reads.
 */
import { isUtf8 } from 'node:buffer';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors.js';
import { utf8Boundary, utf8StartBoundary } from './output-buffer.js';

/** The folder of all job logs under a data dir; emptied at start-up (no orphaned logs survive a restart). */
export function jobLogsDir(dataDir: string): string {
  return join(dataDir, 'jobs');
}

/** The two log files of one job. */
export function jobLogPaths(dataDir: string, jobId: string): { stdout: string; stderr: string } {
  const dir = jobLogsDir(dataDir);
  return { stdout: join(dir, `${jobId}.stdout`), stderr: join(dir, `${jobId}.stderr`) };
}

/** Text read from a log. */
export interface LogRead {
  text: string;
  /** Offset to read from next time. */
  next: number;
  /** Bytes between head and tail that were left out (head/tail reads only). */
  omitted: number;
  /** True when the bytes were not valid UTF-8 (replaced with U+FFFD). */
  invalidUtf8: boolean;
}

async function readRange(file: string, from: number, length: number): Promise<Buffer> {
  if (length <= 0) return Buffer.alloc(0);
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, from);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function decode(buf: Buffer): { text: string; invalidUtf8: boolean } {
  return { text: buf.toString('utf8'), invalidUtf8: !isUtf8(buf) };
}

/**
 * Up to `cap` bytes of `file` from `from` to `size`. Unless `final`, a trailing partial character is left for the
 * next read.
 */
export async function readPage(file: string, from: number, size: number, cap: number, final: boolean): Promise<LogRead> {
  const want = Math.max(0, Math.min(cap, size - from));
  let buf = await readRange(file, from, want);
  const atEnd = from + buf.length >= size;
  if (!(final && atEnd)) buf = buf.subarray(0, utf8Boundary(buf, buf.length));
  return { ...decode(buf), next: from + buf.length, omitted: 0 };
}

/**
 * Bytes `from`..`size` of `file` as head and tail within `cap` bytes, with the omitted count. Unless `final`, a
 * trailing partial character is left for the next read (and `next` stops before it).
 */
export async function readHeadTail(file: string, from: number, size: number, cap: number, final: boolean): Promise<LogRead> {
  const total = Math.max(0, size - from);
  if (total <= cap) return readPage(file, from, size, cap, final);
  const half = Math.floor(cap / 2);
  let head = await readRange(file, from, half);
  head = head.subarray(0, utf8Boundary(head, head.length));
  let tail = await readRange(file, size - half, half);
  const end = final ? tail.length : utf8Boundary(tail, tail.length);
  size -= tail.length - end;
  tail = tail.subarray(utf8StartBoundary(tail), end);
  const omitted = total - head.length - tail.length;
  const h = decode(head);
  const t = decode(tail);
  return {
    text: `${h.text}\n[... ${omitted} bytes omitted ...]\n${t.text}`,
    next: size,
    omitted,
    invalidUtf8: h.invalidUtf8 || t.invalidUtf8,
  };
}
