/**
 * file_read's answer as a model reads it: the lines numbered like `cat -n`, then one line saying which lines these
 * are of how many and the exact call that reads on (and, when lines were cut, how to see one whole). An image is
 * the image itself and one line naming it.
 */
import type { ModelContent } from '../tool.js';
import { CUT_MARK, numberedLine } from './numbered.js';

/** The text answer's fields toModel needs. */
export interface TextRead {
  path: string;
  content: string;
  total_lines: number;
  start_line: number;
  end_line: number;
  next_start_line: number | null;
  cut_lines?: number[] | undefined;
}

/** The image answer's fields toModel needs. */
export interface ImageRead {
  path: string;
  image: { media_type: string; data: string };
  bytes: number;
  width?: number | undefined;
  height?: number | undefined;
}

/** A path quoted for a POSIX shell. */
/** `s` as one word of a shell command line, single-quoted. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The content's lines, numbered, and the closing line. `numbered` says whether content already carries numbers. */
export function textReadModel(r: TextRead, lineChars: number, numbered: boolean): ModelContent[] {
  if (r.total_lines === 0) return [{ type: 'text', text: `[${r.path} is empty: 0 lines]` }];
  const cut = new Set(r.cut_lines ?? []);
  const lines = r.content === '' ? [] : r.content.replace(/\n$/, '').split('\n');
  const shown = numbered
    ? lines.map((l, i) => (cut.has(r.start_line + i) ? `${l}${CUT_MARK}` : l))
    : lines.map((l, i) => numberedLine(r.start_line + i, l, cut.has(r.start_line + i)));
  const parts = [`lines ${r.start_line}-${r.end_line} of ${r.total_lines}`];
  if (r.next_start_line === null) parts.push('end of file');
  else {
    const call = JSON.stringify({ path: r.path, start_line: r.next_start_line });
    parts.push(`${r.total_lines - r.end_line} more: file_read ${call}`);
  }
  const first = r.cut_lines?.[0];
  if (first !== undefined) {
    const n = r.cut_lines?.length ?? 0;
    const cmd = `sed -n '${first}p' ${shellQuote(r.path)} | cut -c ${lineChars + 1}-${lineChars * 3}`;
    parts.push(
      `${n} line(s) cut at ${lineChars} chars, marked "${CUT_MARK.trim()}": see the rest of one with execute ${JSON.stringify({ command: cmd })}, or search within it`,
    );
  }
  shown.push(`[${parts.join('; ')}]`);
  return [{ type: 'text', text: shown.join('\n') }];
}

/** An image, and one line saying what it is. */
export function imageReadModel(r: ImageRead): ModelContent[] {
  const size = r.width !== undefined && r.height !== undefined ? `, ${r.width}x${r.height}` : '';
  return [
    { type: 'image', mediaType: r.image.media_type, data: r.image.data },
    { type: 'text', text: `[${r.path}: ${r.image.media_type}, ${r.bytes} bytes${size}]` },
  ];
}
