/**
 * The file system side of an extraction: creates the tree below a fresh root one archive entry at a time, in
 * archive order, refusing any entry that could write outside it and cutting off bombs on the bytes actually
 * written.
 *
 * Every call is synchronous on purpose. This runs in a pool thread whose job is blocking work, and a project is
 * thousands of small files: queueing each open, write, chmod and close on libuv's four-thread file pool (which
 * every thread of the process shares) costs a thread hand-off per call, several times what the call itself does.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { errnoCode, ToolhostError } from '../errors.js';
import { isInside } from '../paths.js';
import { show, tooManyEntries, unsafe } from './refusals.js';
import type { ArchiveLimits } from './types.js';

/** Longest symlink target accepted (PATH_MAX less its NUL). */
export const MAX_LINK_TARGET = 4095;

/**
 * Expansion an archive is always allowed, whatever its ratio: a small archive of repetitive text legitimately
 * compresses better than `maxRatio`, and a bomb this small is harmless.
 */
const RATIO_FLOOR_BYTES = 1024 * 1024;

/** O_EXCL: never an existing file; O_NOFOLLOW: never through a link in the last component. */
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Errors of creating an entry that come from its own name or a clash with another entry. */
const ENTRY_ERRNOS = new Set(['EEXIST', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG', 'EINVAL', 'EILSEQ']);

const RELATIVE_LINKS = 'repack the archive without it, or with a relative symlink that stays inside the project';

/**
 * The open file of one entry being extracted: its content goes in chunk by chunk, each checked against the limits
 * first. Not to be confused with `ArchiveFileSink` (`types.ts`), a file entry of an archive being written.
 */
export interface TreeFileSink {
  /** Writes the next chunk of content, or throws `archive_too_large` before writing past a limit. */
  write(chunk: Buffer): void;
  /** Closes the file; safe to call more than once. */
  close(): void;
}

/** Creates the tree under `root` (a fresh, real folder), one archive entry at a time, refusing unsafe ones. */
export class TreeWriter {
  /** Entries counted so far. */
  entries = 0;
  /** Content bytes written so far. */
  bytes = 0;
  /** Everything this archive created, by root-relative path; the root holds nothing else. */
  readonly #kinds = new Map<string, 'dir' | 'file' | 'symlink'>();
  readonly #links: { entry: string; abs: string }[] = [];
  readonly #root: string;
  readonly #limits: ArchiveLimits;
  readonly #ratioLimit: number;

  constructor(root: string, limits: ArchiveLimits, archiveBytes: number) {
    this.#root = root;
    this.#limits = limits;
    this.#ratioLimit = ratioLimit(limits, archiveBytes);
  }

  /** Most entries the archive may hold. */
  get maxEntries(): number {
    return this.#limits.maxEntries;
  }

  /** Most content bytes allowed: the total cap or the ratio cap, whichever is lower. */
  get contentLimit(): number {
    return Math.min(this.#limits.maxTotalBytes, this.#ratioLimit);
  }

  /** Counts one entry of the archive; call it first for every entry. */
  count(entry: string): void {
    this.entries += 1;
    if (this.entries > this.#limits.maxEntries) throw tooManyEntries(this.#limits.maxEntries, entry);
  }

  /** A folder; "./" (the root itself) and a folder met again are accepted and do nothing. */
  directory(entry: string): void {
    const parts = entryParts(entry);
    if (parts.length === 0) return;
    const rel = parts.join('/');
    if (this.#kinds.get(rel) === 'dir') return;
    this.#guard(entry, () => {
      this.#claim(entry, rel);
      this.#parents(entry, parts);
      this.#mkdir(rel);
    });
  }

  /**
   * Creates a file (0644, or 0755 when `mode` has an execute bit) and returns the sink for its content, which the
   * caller must close, whatever happens. `declared` is its announced size, refused up front when past a limit.
   */
  file(entry: string, mode: number, declared?: number): TreeFileSink {
    const rel = this.#leaf(entry);
    if (declared !== undefined) this.#account(entry, declared, false);
    const fileMode = (mode & 0o111) !== 0 ? 0o755 : 0o644;
    let fd = -1;
    this.#guard(entry, () => {
      this.#claim(entry, rel);
      this.#parents(entry, rel.split('/'));
      fd = openSync(`${this.#root}/${rel}`, WRITE_FLAGS, fileMode);
      this.#kinds.set(rel, 'file');
      try {
        // The umask may have taken bits off; the tree's modes are exact.
        fchmodSync(fd, fileMode);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    });
    return {
      write: (chunk) => {
        this.#account(entry, chunk.length, true);
        for (let offset = 0; offset < chunk.length; ) offset += writeSync(fd, chunk, offset);
      },
      close: () => {
        if (fd === -1) return;
        const open = fd;
        fd = -1;
        closeSync(open);
      },
    };
  }

  /** A symlink whose relative target stays inside the root, lexically here and for real in verifyLinks. */
  symlink(entry: string, target: string): void {
    const rel = this.#leaf(entry);
    const abs = `${this.#root}/${rel}`;
    const problem = linkTargetProblem(target);
    if (problem !== null) throw unsafe(entry, `is a symlink to ${show(target)}, which ${problem}`, RELATIVE_LINKS);
    if (!isInside(this.#root, resolve(dirname(abs), target))) {
      throw unsafe(entry, `is a symlink to ${show(target)}, outside the project`, RELATIVE_LINKS);
    }
    this.#guard(entry, () => {
      this.#claim(entry, rel);
      this.#parents(entry, rel.split('/'));
      symlinkSync(target, abs);
      this.#kinds.set(rel, 'symlink');
      this.#links.push({ entry, abs });
    });
  }

  /** A tar hard link: allowed only to a file this archive already extracted, and made as a real hard link. */
  hardlink(entry: string, target: string): void {
    const rel = this.#leaf(entry);
    const targetRel = nameProblem(target) === null ? entryPartsOf(target).join('/') : null;
    if (targetRel === null || this.#kinds.get(targetRel) !== 'file') {
      throw unsafe(
        entry,
        `is a hard link to ${show(target)}, which is not a file extracted earlier from this archive`,
        'repack the archive with the file itself in place of the link',
      );
    }
    this.#guard(entry, () => {
      this.#claim(entry, rel);
      this.#parents(entry, rel.split('/'));
      linkSync(`${this.#root}/${targetRel}`, `${this.#root}/${rel}`);
      this.#kinds.set(rel, 'file');
    });
  }

  /**
   * A file made as a hard link to `from` (restoring a checkpoint reuses the unchanged files of the working copy
   * this way, through `/proc/self/fd/<folder fd>/<name>`). `from` may have been swapped since the caller looked
   * (for a symlink, which link(2) links as itself): the link is kept only when it is a regular file with inode
   * `ino`, and removed otherwise. Resolves whether the entry was made; when not, it can still be written.
   */
  linkFrom(entry: string, from: string, ino: number): boolean {
    const rel = this.#leaf(entry);
    if (this.#kinds.has(rel)) return false;
    const abs = `${this.#root}/${rel}`;
    try {
      this.#parents(entry, rel.split('/'));
      linkSync(from, abs);
    } catch {
      return false; // gone, another file system, too many links: the caller writes it instead
    }
    const st = lstatSync(abs);
    if (!st.isFile() || st.ino !== ino) {
      unlinkSync(abs);
      return false;
    }
    this.#kinds.set(rel, 'file');
    return true;
  }

  /**
   * Checks, once every entry exists, that each symlink leads inside the root through whatever other links it
   * crosses (`s -> .` then `t -> s/..` passes the lexical check but lands in the parent). A dangling link is
   * judged by its deepest existing ancestor, with the rest of its path applied lexically, so it cannot start
   * leading outside when the missing part is created later.
   */
  verifyLinks(): void {
    for (const { entry, abs } of this.#links) {
      const target = readlinkSync(abs);
      let probe = `${dirname(abs)}/${target}`;
      const rest: string[] = [];
      for (;;) {
        let real: string;
        try {
          real = realpathSync.native(probe);
        } catch (err) {
          const code = errnoCode(err);
          if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') throw err;
          rest.unshift(basename(probe));
          probe = dirname(probe);
          continue;
        }
        if (!isInside(this.#root, resolve(real, ...rest))) {
          throw unsafe(entry, `is a symlink to ${show(target)}, which leads outside the project through other symlinks`, RELATIVE_LINKS);
        }
        break;
      }
    }
  }

  /** Adds `n` content bytes (or only checks them, for a declared size), refusing when a limit is passed. */
  #account(entry: string, n: number, commit: boolean): void {
    const total = this.bytes + n;
    const { maxTotalBytes, maxRatio } = this.#limits;
    if (total > maxTotalBytes) {
      throw new ToolhostError(
        'archive_too_large',
        `archive expands past the limit of ${maxTotalBytes} bytes at entry ${show(entry)}; repack the archive without large files (build outputs, dependencies, data)`,
        { entry, limit: maxTotalBytes },
      );
    }
    if (total > this.#ratioLimit) {
      throw new ToolhostError(
        'archive_too_large',
        `archive entry ${show(entry)} expands the archive past ${maxRatio} times its own size, like a decompression bomb; repack the archive without it`,
        { entry, limit: this.#ratioLimit },
      );
    }
    if (commit) this.bytes = total;
  }

  /** The root-relative path of an entry that must name something below the root. */
  #leaf(entry: string): string {
    const parts = entryParts(entry);
    if (parts.length === 0) throw unsafe(entry, 'names the project root itself', 'repack the archive without it');
    return parts.join('/');
  }

  #claim(entry: string, rel: string): void {
    if (this.#kinds.has(rel)) {
      throw unsafe(entry, `conflicts with an earlier entry at the same path ("${rel}")`, 'repack the archive without duplicate entries');
    }
  }

  /** Creates the missing parent folders of an entry, never through a link or a file the archive made. */
  #parents(entry: string, parts: string[]): void {
    let rel = '';
    for (let i = 0; i < parts.length - 1; i++) {
      rel = i === 0 ? parts[0]! : `${rel}/${parts[i]!}`;
      const kind = this.#kinds.get(rel);
      if (kind === 'dir') continue;
      if (kind === 'symlink') {
        throw unsafe(
          entry,
          `lies below "${rel}", a symlink earlier in the archive`,
          'repack the archive without entries below symlinks (nothing may be written through a link)',
        );
      }
      if (kind === 'file') {
        throw unsafe(entry, `lies below "${rel}", a file earlier in the archive`, 'repack the archive without the conflicting entries');
      }
      this.#mkdir(rel);
    }
  }

  #mkdir(rel: string): void {
    const abs = `${this.#root}/${rel}`;
    // Not recursive: EEXIST here means a path we did not create under that name (a case-insensitive file system
    // folding two names into one), which must not be written through.
    mkdirSync(abs, { mode: 0o755 });
    chmodSync(abs, 0o755);
    this.#kinds.set(rel, 'dir');
  }

  /** Runs the file system steps of one entry, turning errors caused by its name into refusals. */
  #guard(entry: string, steps: () => void): void {
    try {
      steps();
    } catch (err) {
      const code = errnoCode(err);
      if (code !== undefined && ENTRY_ERRNOS.has(code)) throw unsafe(entry, `cannot be created (${code})`, 'repack the archive without it');
      throw err;
    }
  }
}

/** Most content bytes an archive of `archiveBytes` may expand to under `limits.maxRatio` (not counting maxTotalBytes). */
export function ratioLimit(limits: ArchiveLimits, archiveBytes: number): number {
  return Math.max(limits.maxRatio * archiveBytes, RATIO_FLOOR_BYTES);
}

/** Why an archive name (or a hard link target) is unsafe, or null. */
function nameProblem(name: string): string | null {
  if (name === '') return 'is empty';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'is an absolute path';
  if (name.split('/').includes('..')) return 'has a ".." segment';
  return null;
}

/** Why a symlink target is unsafe before any resolution (".." is allowed: resolution is checked against the root). */
function linkTargetProblem(target: string): string | null {
  if (target === '') return 'is empty';
  if (target.length > MAX_LINK_TARGET) return `is longer than ${MAX_LINK_TARGET} characters`;
  if (target.includes('\0')) return 'contains a NUL byte';
  if (target.includes('\\')) return 'contains a backslash';
  if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) return 'is an absolute path';
  return null;
}

/**
 * The path segments of a safe entry name; empty and "." segments (a leading "./", a trailing "/") dropped, so
 * the segments joined with "/" and appended to the root are already a normalized path below it.
 */
function entryParts(entry: string): string[] {
  const problem = nameProblem(entry);
  if (problem !== null) {
    throw unsafe(
      entry,
      `${problem}, so it could be written outside the project`,
      'repack the archive with plain relative paths ("dir/file", "/" as separator, no "..")',
    );
  }
  return entryPartsOf(entry);
}

function entryPartsOf(name: string): string[] {
  return name.split('/').filter((p) => p !== '' && p !== '.');
}
