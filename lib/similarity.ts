/**
 * How alike two lines are, for the "closest lines" of an edit or a patch that did not match: the Dice coefficient
 * of their character bigrams (0: nothing shared, 1: the same). Bigram sets can be made once and compared often.
 */

/** The bigrams of `s`, with their counts. */
export function bigrams(s: string): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < s.length - 1; i++) {
    const g = s.slice(i, i + 2);
    m.set(g, (m.get(g) ?? 0) + 1);
  }
  return m;
}

/** Dice similarity of two bigram sets made from strings of `aLen` and `bLen` characters, 0..1. */
export function dice(a: Map<string, number>, aLen: number, b: Map<string, number>, bLen: number): number {
  if (aLen < 2 || bLen < 2) return 0;
  let shared = 0;
  for (const [g, n] of b) {
    const k = a.get(g);
    if (k) shared += Math.min(k, n);
  }
  return (2 * shared) / (aLen + bLen - 2);
}

/** Dice similarity of two strings' bigrams, 0..1. */
export function similarity(a: string, b: string): number {
  return a === b ? 1 : dice(bigrams(a), a.length, bigrams(b), b.length);
}
