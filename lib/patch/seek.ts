/**
 * Finding a hunk's lines in a file, with escalating fuzz as codex's seek_sequence.rs does: exactly first, then
 * ignoring trailing whitespace, then also treating Unicode punctuation look-alikes (curly quotes, en and em dashes,
 * non-breaking and other odd spaces) as their ASCII forms. Unlike codex, leading whitespace is never ignored: a
 * hunk placed by context whose indentation differs would add its lines at an indentation that does not fit.
 * When nothing matches, {@link closestWindow} finds the lines of the file most like the hunk's, for the error.
 */
import { bigrams, dice } from '../similarity.js';

/** How loosely a match was made: 0 exact, 1 trailing whitespace ignored, 2 Unicode punctuation look-alikes too. */
export type Fuzz = 0 | 1 | 2;

/** What each fuzz level tolerates, as the notes say it. */
export const FUZZ_WORDS: Record<Exclude<Fuzz, 0>, string> = {
  1: 'ignoring trailing whitespace',
  2: 'treating Unicode punctuation look-alikes (curly quotes, dashes, non-breaking spaces) as ASCII',
};

const LOOK_ALIKES: Record<string, string> = {};
for (const c of '\u2010\u2011\u2012\u2013\u2014\u2015\u2212') LOOK_ALIKES[c] = '-';
for (const c of '\u2018\u2019\u201A\u201B') LOOK_ALIKES[c] = "'";
for (const c of '\u201C\u201D\u201E\u201F') LOOK_ALIKES[c] = '"';
for (const c of '\u00A0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A\u202F\u205F\u3000') LOOK_ALIKES[c] = ' ';
const LOOK_ALIKE_RE = new RegExp(`[${Object.keys(LOOK_ALIKES).join('')}]`, 'g');

/** `s` with its Unicode punctuation look-alikes replaced by ASCII, the same set codex normalises. */
export function asciiPunctuation(s: string): string {
  return s.replace(LOOK_ALIKE_RE, (c) => LOOK_ALIKES[c] ?? c);
}

const KEYS: readonly ((s: string) => string)[] = [(s) => s, (s) => s.trimEnd(), (s) => asciiPunctuation(s).trimEnd()];

/** The lines of a file, with each fuzz level's key of every line computed once. */
export class Haystack {
  readonly lines: readonly string[];
  readonly #keys: (string[] | undefined)[] = [];

  constructor(lines: readonly string[]) {
    this.lines = lines;
  }

  /** The key of every line at `fuzz`. */
  keys(fuzz: Fuzz): readonly string[] {
    let k = this.#keys[fuzz];
    if (k === undefined) {
      const key = KEYS[fuzz] as (s: string) => string;
      k = this.lines.map(key);
      this.#keys[fuzz] = k;
    }
    return k;
  }
}

/** Whether `pattern` (keyed at `fuzz`) is at `i`. */
function at(keys: readonly string[], pattern: readonly string[], i: number): boolean {
  for (let j = 0; j < pattern.length; j++) if (keys[i + j] !== pattern[j]) return false;
  return true;
}

/**
 * The first index at or after `from` where `pattern` is, at the least fuzz that finds it. With `eof`, the end of
 * the file is tried first at every level (the hunk said `*** End of File`). `maxFuzz` bounds the levels tried.
 */
export function seek(
  hay: Haystack,
  pattern: readonly string[],
  from: number,
  eof: boolean,
  maxFuzz: Fuzz = 2,
): { index: number; fuzz: Fuzz; atEnd: boolean } | undefined {
  const last = hay.lines.length - pattern.length;
  if (pattern.length === 0 || last < from) return undefined;
  for (let fuzz = 0 as Fuzz; fuzz <= maxFuzz; fuzz = (fuzz + 1) as Fuzz) {
    const keys = hay.keys(fuzz);
    const p = pattern.map(KEYS[fuzz] as (s: string) => string);
    if (eof && at(keys, p, last)) return { index: last, fuzz, atEnd: true };
    for (let i = from; i <= last; i++) if (at(keys, p, i)) return { index: i, fuzz, atEnd: i === last };
  }
  return undefined;
}

/** How many places at or after `from` hold `pattern` at exactly `fuzz` (stops counting at 2). */
export function countAt(hay: Haystack, pattern: readonly string[], from: number, fuzz: Fuzz): number {
  const keys = hay.keys(fuzz);
  const p = pattern.map(KEYS[fuzz] as (s: string) => string);
  let n = 0;
  for (let i = from; i <= hay.lines.length - pattern.length && n < 2; i++) if (at(keys, p, i)) n++;
  return n;
}

/** The first line at or after `from` equal to `anchor`, ignoring surrounding whitespace, then Unicode look-alikes too. */
export function seekAnchor(hay: Haystack, anchor: string, from: number): { index: number; fuzz: Fuzz } | undefined {
  const exact = anchor.trim();
  const loose = asciiPunctuation(exact).trim();
  for (let i = from; i < hay.lines.length; i++) if ((hay.lines[i] as string).trim() === exact) return { index: i, fuzz: 0 };
  for (let i = from; i < hay.lines.length; i++) if (asciiPunctuation(hay.lines[i] as string).trim() === loose) return { index: i, fuzz: 2 };
  return undefined;
}

/** Where `pattern` would be if leading whitespace were ignored too (for a message that says indentation differs). */
export function seekIgnoringIndent(hay: Haystack, pattern: readonly string[], from: number): number | undefined {
  const key = (s: string): string => asciiPunctuation(s).trim();
  const p = pattern.map(key);
  for (let i = from; i <= hay.lines.length - p.length; i++) {
    let ok = true;
    for (let j = 0; j < p.length && ok; j++) ok = key(hay.lines[i + j] as string) === p[j];
    if (ok) return i;
  }
  return undefined;
}

/** Most line comparisons {@link closestWindow} makes before it compares only the pattern's first lines. */
const MAX_COMPARISONS = 2_000_000;

/**
 * The window of the file most like `pattern`: the start index whose lines, compared one to one with the pattern's
 * (surrounding whitespace ignored), are the most similar in sum; undefined when nothing is at all similar.
 */
export function closestWindow(lines: readonly string[], pattern: readonly string[]): number | undefined {
  if (lines.length === 0 || pattern.length === 0) return undefined;
  // A huge file with a long hunk would take long to compare whole: compare the first pattern lines only.
  const k = Math.max(1, Math.min(pattern.length, Math.floor(MAX_COMPARISONS / lines.length)));
  const pat = pattern.slice(0, k).map((p) => {
    const t = p.trim();
    return { t, g: bigrams(t) };
  });
  const file = lines.map((l) => {
    const t = l.trim();
    return { t, g: undefined as Map<string, number> | undefined };
  });
  const sim = (i: number, j: number): number => {
    const f = file[i];
    const p = pat[j];
    if (f === undefined || p === undefined) return 0;
    if (f.t === p.t) return f.t === '' ? 0.5 : 1;
    f.g ??= bigrams(f.t);
    return dice(f.g, f.t.length, p.g, p.t.length);
  };
  let best: { index: number; score: number } | undefined;
  const lastStart = Math.max(0, lines.length - Math.min(k, lines.length));
  for (let i = 0; i <= lastStart; i++) {
    let score = 0;
    for (let j = 0; j < k && i + j < lines.length; j++) score += sim(i + j, j);
    if (best === undefined || score > best.score) best = { index: i, score };
  }
  return best !== undefined && best.score / k >= 0.3 ? best.index : undefined;
}
