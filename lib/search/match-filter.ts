/**
 * The second look at what rg found: whether a match survives the project's .gitignore files and the request's
 * glob. rg prunes by them already; this catches what it lets through (see {@link MatchFilter}).
 */
import ignore, { type Ignore } from 'ignore';
import type { GitignoreRules } from '../gitignore.js';

/**
 * Whether a match in file `rel` survives the project's .gitignore files (and the request's glob, when rg could not
 * apply it). rg already prunes by them; this catches what rg lets through: files whose path a user glob matches
 * (rg's globs override ignore rules, so "src/**" would otherwise reach into an ignored src/node_modules) and
 * .gitignore files of the root and the folders between it and a searched subfolder.
 */
export class MatchFilter {
  readonly #rules: GitignoreRules | null;
  readonly #base: string;
  readonly #glob: { exclude: boolean; matcher: Ignore } | null;
  readonly #verdicts = new Map<string, Promise<boolean>>();

  /**
   * @param rules null to only keep .git out.
   * @param base the searched folder, project-relative ("." for the root).
   * @param glob a glob (gitignore syntax, "!" to exclude) that paths must match, or undefined.
   */
  constructor(rules: GitignoreRules | null, base: string, glob?: string) {
    this.#rules = rules;
    this.#base = base === '.' ? '' : `${base}/`;
    const exclude = glob?.startsWith('!') ?? false;
    this.#glob = glob === undefined ? null : { exclude, matcher: ignore().add(exclude ? glob.slice(1) : glob) };
  }

  /** True when `rel` (a file below the searched folder) is to be reported. Cached per file (a file has many matches). */
  keeps(rel: string): Promise<boolean> {
    let verdict = this.#verdicts.get(rel);
    if (!verdict) {
      verdict = this.verdict(rel);
      this.#verdicts.set(rel, verdict);
    }
    return verdict;
  }

  /** {@link keeps} without the cache, for a caller that asks once per file (a listing of the whole tree). */
  async verdict(rel: string): Promise<boolean> {
    if (!rel.startsWith(this.#base)) return true;
    const parts = rel.split('/');
    if (parts.includes('.git')) return false;
    if (this.#glob && this.#glob.matcher.ignores(rel) === this.#glob.exclude) return false;
    const rules = this.#rules;
    if (!rules) return true;
    const first = this.#base === '' ? 1 : this.#base.split('/').length; // parts[first - 1] is the first below base
    for (let i = first; i < parts.length; i++) {
      if (await rules.ignores(parts.slice(0, i).join('/'), true)) return false;
    }
    return !(await rules.ignores(rel, false));
  }
}
