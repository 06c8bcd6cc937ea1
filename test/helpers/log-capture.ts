/** A pino logger whose JSON lines a test can read back. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from '../../supervisor/logger.js';

/** A logger at `level` and every line it wrote, parsed, plus the raw text. */
export interface CapturedLog {
  log: Logger;
  lines: Record<string, unknown>[];
  text(): string;
}

/** Makes a logger writing JSON lines to memory. */
export function captureLog(level = 'info'): CapturedLog {
  const raw: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString();
      raw.push(text);
      for (const line of text.split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level, base: { service: 'toolhost' } }, stream), lines, text: () => raw.join('') };
}
