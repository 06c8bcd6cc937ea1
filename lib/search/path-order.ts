/**
 * rg's path order, and the first items in that order of a stream of files that arrive in any order. rg searches in
 * parallel and prints each file's records together, files in whatever order its threads finish them; the answer
 * lists what `rg --sort=path` would have listed first, so the cut at max_results is the same on every run.
 */

const SLASH = 0x2f;

/**
 * Compares two paths as `rg --sort=path` orders them: it sorts the entries of each folder by their name's bytes as
 * it walks, so "a/x" comes before "a b" and "a-c" (a whole string compare would put those first), and "Ａ" (EF BC A1)
 * before "😀" (F0 9F 98 80), which UTF-16 code units would put the other way. Equal to comparing the paths
 * name by name: the first byte that differs decides, with "/" (the end of a name) before every other byte.
 */
export function comparePaths(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}

/** One file's items in a {@link PathOrderedTop}. */
interface Group<T> {
  key: Uint8Array;
  items: T[];
}

/**
 * The first `limit` items, in path order then in the order each file gave them, of files added in any order, each
 * once with its items in order. Holds at most the groups that can still be among the first `limit`: fewer than
 * `2 * limit` items whatever the number of files.
 */
export class PathOrderedTop<T> {
  readonly #limit: number;
  /** In path order; files with the same path (a path rg printed that did not parse) keep the order they came in. */
  readonly #groups: Group<T>[] = [];
  #held = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /**
   * How many items of a file at `key` can still be among the first `limit`: `limit` less the items held for files
   * before it. Files added later only lower it, so a file may stop keeping items past it.
   */
  room(key: Uint8Array): number {
    if (this.#limit === 0 || this.#past(key)) return 0;
    let before = 0;
    const end = this.#after(key);
    for (let i = 0; i < end && before < this.#limit; i++) before += this.#groups[i]!.items.length;
    return Math.max(0, this.#limit - before);
  }

  /** Adds a file's items (at most {@link room} of them are needed), then lets go of files now past the first `limit`. */
  add(key: Uint8Array, items: T[]): void {
    if (items.length === 0 || this.#limit === 0 || this.#past(key)) return;
    const groups = this.#groups;
    const lo = this.#after(key);
    groups.splice(lo, 0, { key, items });
    this.#held += items.length;
    while (groups.length > 0 && this.#held - groups[groups.length - 1]!.items.length >= this.#limit) {
      this.#held -= groups.pop()!.items.length;
    }
  }

  /** The index of the first group whose key is past `key` (binary search: they are in path order). */
  #after(key: Uint8Array): number {
    const groups = this.#groups;
    let lo = 0;
    let hi = groups.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePaths(groups[mid]!.key, key) > 0) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** True when `limit` items are held before `key` (or with it): a file there has nothing to add, the usual case. */
  #past(key: Uint8Array): boolean {
    const last = this.#groups[this.#groups.length - 1];
    return this.#held >= this.#limit && last !== undefined && comparePaths(key, last.key) >= 0;
  }

  /** The first `limit` items. */
  items(): T[] {
    const out: T[] = [];
    for (const g of this.#groups) {
      for (const item of g.items) {
        if (out.length === this.#limit) return out;
        out.push(item);
      }
    }
    return out;
  }
}
