/** A project's .gitignore rules, as git applies them, for the list and search tools. */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ignore from 'ignore';
import { errnoCode } from './errors.js';

/** A .gitignore larger than this is treated as absent rather than read into memory. */
const MAX_GITIGNORE_BYTES = 1024 * 1024;

/**
 * The .gitignore files of one project, each applying relative to its own folder, loaded lazily and cached for the
 * life of the object (one job). Only `.gitignore` files inside the project count: not those of folders above
 * the project root, not `.git/info/exclude`, not the user's global excludes file, so a project behaves the same
 * wherever it is stored.
 */
export class GitignoreRules {
  readonly #root: string;
  readonly #byDir = new Map<string, Promise<ignore.Ignore | null>>();

  /** @param root Absolute real path of the project root. */
  constructor(root: string) {
    this.#root = root;
  }

  /**
   * True when `rel` (project-relative, forward slashes, not ".") is excluded by the .gitignore files of the
   * folders above it. Deeper files take precedence over shallower ones, and a path inside an ignored folder is
   * ignored, as in git. `.git` itself is not a .gitignore matter: callers skip it.
   */
  async ignores(rel: string, isDir: boolean): Promise<boolean> {
    const parts = rel.split('/');
    let ignored = false;
    for (let i = 0; i < parts.length; i++) {
      const rules = await this.#rulesOf(parts.slice(0, i).join('/'));
      if (!rules) continue;
      const result = rules.test(parts.slice(i).join('/') + (isDir ? '/' : ''));
      if (result.ignored) ignored = true;
      else if (result.unignored) ignored = false;
    }
    return ignored;
  }

  #rulesOf(dir: string): Promise<ignore.Ignore | null> {
    let rules = this.#byDir.get(dir);
    if (!rules) {
      rules = this.#load(dir);
      this.#byDir.set(dir, rules);
    }
    return rules;
  }

  async #load(dir: string): Promise<ignore.Ignore | null> {
    const file = join(this.#root, dir, '.gitignore');
    let fd: number;
    try {
      // O_NOFOLLOW: a .gitignore that is a symlink could point outside the project (git does not follow it
      // either). O_NONBLOCK and fstat of what was opened: a command may swap in a FIFO at any moment, and a read of
      // a FIFO would block this thread for good.
      fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'ELOOP' || code === 'ENXIO') return null;
      throw err;
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.size > MAX_GITIGNORE_BYTES) return null;
      return ignore().add(readFileSync(fd, 'utf8'));
    } finally {
      closeSync(fd);
    }
  }
}
