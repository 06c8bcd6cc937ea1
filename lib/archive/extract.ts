/**
 * Safe extraction of a project archive (zip or tar.gz) into a fresh folder. Runs in a pool thread and streams
 * every entry to disk, so no archive is ever held in memory. Nothing outside the destination is written: names
 * that climb out, absolute names, devices and fifos, links that lead outside and writes through links the
 * archive made itself are refused, and bombs are cut off on the bytes actually written, whatever sizes the
 * archive declares. On any failure the destination is removed: a caller sees a complete tree or none.
 */
import { constants, createReadStream } from 'node:fs';
import { chmod, link, mkdir, open, readlink, realpath, rm, stat, symlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createGunzip } from 'node:zlib';
import tar, { type ExtractEvents } from 'tar-stream';
import yauzl from 'yauzl';
import { ToolhostError, errnoCode, toToolhostError } from '../errors.js';
import { isInside } from '../paths.js';
import type { ArchiveFormat } from './format.js';

/** Bomb limits of one extraction: the `archive` section of the configuration. */
export interface ArchiveLimits {
  /** Most entries (files, folders, links) the archive may hold. */
  maxEntries: number;
  /** Most bytes of file content the archive may expand to. */
  maxTotalBytes: number;
  /** Largest ratio of expanded bytes to the archive file's size. */
  maxRatio: number;
}

/** What {@link extractArchive} extracts, and where to. */
export interface ExtractOptions {
  /** The archive file. */
  file: string;
  /** Its format, usually from `sniffFile`. */
  format: ArchiveFormat;
  /** The folder to create and fill; it must not exist yet. */
  dest: string;
  /** Bomb limits. */
  limits: ArchiveLimits;
}

/** What an extraction produced. */
export interface ExtractResult {
  /** Entries read from the archive, of every kind. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

/**
 * Expansion an archive is always allowed, whatever its ratio: a small archive of repetitive text legitimately
 * compresses better than `maxRatio`, and a bomb this small is harmless.
 */
const RATIO_FLOOR_BYTES = 1024 * 1024;
/**
 * Tar bytes per entry beyond its content (header, pax header, padding); with the slack, how far the raw tar
 * stream may run past the content limits before it counts as a bomb made of padding or skipped blocks.
 */
const TAR_OVERHEAD_PER_ENTRY = 3 * 1024;
const TAR_SLACK_BYTES = 1024 * 1024;
/** Longest symlink target accepted (PATH_MAX less its NUL). */
const MAX_LINK_TARGET = 4095;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const SPECIAL_TYPES: Record<number, string> = {
  0o010000: 'fifo',
  0o020000: 'character device',
  0o060000: 'block device',
  0o140000: 'socket',
};

/** One entry of tar-stream's extract iterator: its header and its content stream. */
type TarEntry = ExtractEvents['entry'][1];

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Errors of creating an entry that come from its own name or a clash with another entry. */
const ENTRY_ERRNOS = new Set(['EEXIST', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG', 'EINVAL', 'EILSEQ']);

const RELATIVE_LINKS = 'repack the archive without it, or with a relative symlink that stays inside the project';

/**
 * Extracts the archive `file` into `dest`, which is created and must not exist. Resolves with the number of
 * entries read and the bytes of content written.
 *
 * @throws ToolhostError `unsafe_archive_entry` (details `{ entry }`) for an entry that could write outside `dest`
 *   or is not a plain file, folder or safe link; `archive_too_large` when the entry count, the expanded bytes or
 *   their ratio to the archive's size pass `limits`; `bad_archive` when the archive is corrupt or unreadable.
 *   In all these cases `dest` has been removed. When `dest` already exists it is left alone (`internal`).
 */
export async function extractArchive(opts: ExtractOptions): Promise<ExtractResult> {
  const dest = resolve(opts.dest);
  let archiveBytes: number;
  try {
    archiveBytes = (await stat(opts.file)).size;
  } catch (err) {
    throw corrupt(err);
  }
  try {
    await mkdir(dirname(dest), { recursive: true });
  } catch (err) {
    throw toToolhostError(err);
  }
  try {
    await mkdir(dest, { mode: 0o755 });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw toToolhostError(err);
    throw new ToolhostError('internal', `extraction target ${dest} already exists; extract into a path that does not exist yet`);
  }
  try {
    await chmod(dest, 0o755);
    const out = new TreeWriter(await realpath(dest), opts.limits, archiveBytes);
    await (opts.format === 'zip' ? readZip(opts.file, out) : readTarGz(opts.file, out));
    await out.verifyLinks();
    return { entries: out.entries, bytes: out.bytes };
  } catch (err) {
    const failure = toToolhostError(err);
    try {
      await rm(dest, { recursive: true, force: true });
    } catch (rmErr) {
      throw new ToolhostError('internal', `${failure.message}; and ${dest} could not be removed: ${String(rmErr)}`);
    }
    throw failure;
  }
}

/** Creates the tree under `root` (a fresh, real folder), one archive entry at a time, refusing unsafe ones. */
class TreeWriter {
  entries = 0;
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
    this.#ratioLimit = Math.max(limits.maxRatio * archiveBytes, RATIO_FLOOR_BYTES);
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
  async directory(entry: string): Promise<void> {
    const parts = entryParts(entry);
    if (parts.length === 0) return;
    const rel = parts.join('/');
    if (this.#kinds.get(rel) === 'dir') return;
    await this.#guard(entry, async () => {
      this.#claim(entry, rel);
      await this.#parents(entry, parts);
      await this.#mkdir(rel);
    });
  }

  /** A file written from `data`, the limits checked before each chunk; `declared` is its announced size. */
  async file(entry: string, mode: number, data: AsyncIterable<Buffer>, declared?: number): Promise<void> {
    const rel = this.#leaf(entry);
    if (declared !== undefined) this.#account(entry, declared, false);
    const fileMode = (mode & 0o111) !== 0 ? 0o755 : 0o644;
    await this.#guard(entry, async () => {
      this.#claim(entry, rel);
      await this.#parents(entry, rel.split('/'));
      const fh = await open(join(this.#root, rel), WRITE_FLAGS, fileMode);
      this.#kinds.set(rel, 'file');
      try {
        for await (const chunk of data) {
          this.#account(entry, chunk.length, true);
          await writeAll(fh, chunk);
        }
        await fh.chmod(fileMode);
      } finally {
        await fh.close();
      }
    });
  }

  /** A symlink whose relative target stays inside the root, lexically here and for real in verifyLinks. */
  async symlink(entry: string, target: string): Promise<void> {
    const rel = this.#leaf(entry);
    const abs = join(this.#root, rel);
    const problem = linkTargetProblem(target);
    if (problem !== null) throw unsafe(entry, `is a symlink to ${show(target)}, which ${problem}`, RELATIVE_LINKS);
    if (!isInside(this.#root, resolve(dirname(abs), target))) {
      throw unsafe(entry, `is a symlink to ${show(target)}, outside the project`, RELATIVE_LINKS);
    }
    await this.#guard(entry, async () => {
      this.#claim(entry, rel);
      await this.#parents(entry, rel.split('/'));
      await symlink(target, abs);
      this.#kinds.set(rel, 'symlink');
      this.#links.push({ entry, abs });
    });
  }

  /** A tar hard link: allowed only to a file this archive already extracted, and made as a real hard link. */
  async hardlink(entry: string, target: string): Promise<void> {
    const rel = this.#leaf(entry);
    const targetRel = nameProblem(target) === null ? entryPartsOf(target).join('/') : null;
    if (targetRel === null || this.#kinds.get(targetRel) !== 'file') {
      throw unsafe(
        entry,
        `is a hard link to ${show(target)}, which is not a file extracted earlier from this archive`,
        'repack the archive with the file itself in place of the link',
      );
    }
    await this.#guard(entry, async () => {
      this.#claim(entry, rel);
      await this.#parents(entry, rel.split('/'));
      await link(join(this.#root, targetRel), join(this.#root, rel));
      this.#kinds.set(rel, 'file');
    });
  }

  /**
   * Checks, once every entry exists, that each symlink leads inside the root through whatever other links it
   * crosses (`s -> .` then `t -> s/..` passes the lexical check but lands in the parent). A dangling link is
   * judged by its deepest existing ancestor, with the rest of its path applied lexically, so it cannot start
   * leading outside when the missing part is created later.
   */
  async verifyLinks(): Promise<void> {
    for (const { entry, abs } of this.#links) {
      const target = await readlink(abs);
      let probe = `${dirname(abs)}/${target}`;
      const rest: string[] = [];
      for (;;) {
        let real: string;
        try {
          real = await realpath(probe);
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
  async #parents(entry: string, parts: string[]): Promise<void> {
    let rel = '';
    for (const part of parts.slice(0, -1)) {
      rel = rel === '' ? part : `${rel}/${part}`;
      const kind = this.#kinds.get(rel);
      if (kind === 'dir') continue;
      if (kind === 'symlink') {
        throw unsafe(entry, `lies below "${rel}", a symlink earlier in the archive`, 'repack the archive without entries below symlinks (nothing may be written through a link)');
      }
      if (kind === 'file') {
        throw unsafe(entry, `lies below "${rel}", a file earlier in the archive`, 'repack the archive without the conflicting entries');
      }
      await this.#mkdir(rel);
    }
  }

  async #mkdir(rel: string): Promise<void> {
    const abs = join(this.#root, rel);
    // Not recursive: EEXIST here means a path we did not create under that name (a case-insensitive file system
    // folding two names into one), which must not be written through.
    await mkdir(abs, { mode: 0o755 });
    await chmod(abs, 0o755);
    this.#kinds.set(rel, 'dir');
  }

  /** Runs the file system steps of one entry, turning errors caused by its name into refusals. */
  async #guard(entry: string, steps: () => Promise<void>): Promise<void> {
    try {
      await steps();
    } catch (err) {
      const code = errnoCode(err);
      if (code !== undefined && ENTRY_ERRNOS.has(code)) throw unsafe(entry, `cannot be created (${code})`, 'repack the archive without it');
      throw err;
    }
  }
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

/** The path segments of a safe entry name; empty and "." segments (a leading "./", a trailing "/") dropped. */
function entryParts(entry: string): string[] {
  const problem = nameProblem(entry);
  if (problem !== null) {
    throw unsafe(entry, `${problem}, so it could be written outside the project`, 'repack the archive with plain relative paths ("dir/file", "/" as separator, no "..")');
  }
  return entryPartsOf(entry);
}

function entryPartsOf(name: string): string[] {
  return name.split('/').filter((p) => p !== '' && p !== '.');
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, offset);
    offset += bytesWritten;
  }
}

// ---- zip ------------------------------------------------------------------------------------------------------

async function readZip(file: string, out: TreeWriter): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    // decodeStrings: false because yauzl's own name check fails the whole archive with a message naming no entry;
    // names are decoded below as yauzl would, strictly: a backslash stays a backslash, and is refused.
    zip = await yauzl.openPromise(file, {
      lazyEntries: true,
      autoClose: true,
      decodeStrings: false,
      validateEntrySizes: true,
      strictFileNames: true,
    });
  } catch (err) {
    throw corrupt(err);
  }
  // The reader can report a failed close of its fd after we are done; unheard, that would kill the pool thread.
  zip.on('error', () => undefined);
  try {
    if (zip.entryCount > out.maxEntries) throw tooManyEntries(out.maxEntries, undefined, zip.entryCount);
    let last: string | undefined;
    for (;;) {
      let entry: yauzl.Entry | null;
      try {
        entry = await nextZipEntry(zip);
      } catch (err) {
        throw corrupt(err, undefined, last);
      }
      if (entry === null) return;
      last = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
      await zipEntry(zip, entry, last, out);
    }
  } finally {
    zip.close();
  }
}

function nextZipEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | null> {
  return new Promise((settle, reject) => {
    const done = (): void => {
      zip.off('entry', onEntry).off('end', onEnd).off('error', onError);
    };
    const onEntry = (entry: yauzl.Entry): void => {
      done();
      settle(entry);
    };
    const onEnd = (): void => {
      done();
      settle(null);
    };
    const onError = (err: unknown): void => {
      done();
      reject(err);
    };
    zip.on('entry', onEntry).on('end', onEnd).on('error', onError);
    zip.readEntry();
  });
}

async function zipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string, out: TreeWriter): Promise<void> {
  out.count(name);
  // The high 16 bits of the external attributes hold a Unix st_mode when the archiver was Unix-aware.
  const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
  const type = mode & S_IFMT;
  if (name.endsWith('/') && type !== 0 && type !== S_IFDIR) {
    throw unsafe(name, 'is named as a folder but marked as another kind of entry', 'repack the archive without it');
  }
  if (name.endsWith('/') || type === S_IFDIR) return out.directory(name);
  if (type === 0 || type === S_IFREG) return out.file(name, mode, zipData(zip, entry, name), entry.uncompressedSize);
  if (type === S_IFLNK) return out.symlink(name, await readLinkTarget(zipData(zip, entry, name), name));
  throw special(name, SPECIAL_TYPES[type] ?? `entry of unknown type 0o${type.toString(8)}`);
}

/** The decoded content of a zip entry, checked against its CRC-32 at the end (yauzl does not). */
async function* zipData(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string): AsyncGenerator<Buffer> {
  if (entry.isEncrypted()) {
    throw new ToolhostError('bad_archive', `archive entry ${show(name)} is encrypted; repack the archive without a password`, { entry: name });
  }
  if (!entry.canDecodeFileData()) {
    throw new ToolhostError(
      'bad_archive',
      `archive entry ${show(name)} uses compression method ${entry.compressionMethod}, which cannot be read; repack the archive with deflate (the default of zip tools)`,
      { entry: name },
    );
  }
  let stream: Readable;
  try {
    stream = await zip.openReadStreamPromise(entry);
  } catch (err) {
    throw corrupt(err, name);
  }
  let crc = 0;
  for await (const chunk of chunksOf(stream, name)) {
    crc = crc32(chunk, crc);
    yield chunk;
  }
  if (crc !== entry.crc32) throw corrupt(new Error('CRC-32 mismatch'), name);
}

async function readLinkTarget(data: AsyncIterable<Buffer>, name: string): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of data) {
    length += chunk.length;
    if (length > MAX_LINK_TARGET) {
      throw unsafe(name, `is a symlink with a target longer than ${MAX_LINK_TARGET} bytes`, 'repack the archive without it');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// ---- tar.gz ---------------------------------------------------------------------------------------------------

async function readTarGz(file: string, out: TreeWriter): Promise<void> {
  // The raw tar stream is bounded too: padding, zero blocks and skipped headers cost gunzip time but never reach
  // an entry, so the content checks alone would let a gzip of zeros run for as long as it likes.
  const guard = new InflateGuard(() => out.contentLimit + TAR_OVERHEAD_PER_ENTRY * (out.entries + 1) + TAR_SLACK_BYTES);
  const extract = tar.extract();
  const abort = new AbortController();
  let feedError: unknown = null;
  const fed = pipeline(createReadStream(file), createGunzip(), guard, extract, { signal: abort.signal }).catch(
    (err: unknown) => {
      feedError = err;
    },
  );
  const entries = extract[Symbol.asyncIterator]();
  let last: string | undefined;
  try {
    for (;;) {
      let next: IteratorResult<TarEntry>;
      try {
        next = await entries.next();
      } catch (err) {
        throw corrupt(feedError ?? err, undefined, last);
      }
      if (next.done === true) break;
      last = next.value.header.name;
      await tarEntry(next.value, out);
    }
    await fed;
    if (feedError !== null) throw corrupt(feedError, undefined, last);
  } catch (err) {
    // Whatever surfaced (an entry stream destroyed, a premature close), a tripped guard is the real cause.
    throw guard.error ?? err;
  } finally {
    abort.abort();
    await fed;
  }
}

async function tarEntry(entry: TarEntry, out: TreeWriter): Promise<void> {
  const { name, type, mode, linkname, size } = entry.header;
  out.count(name);
  if (type === 'file' || type === 'contiguous-file') {
    // Old tars mark folders by a trailing "/" alone, and tar-stream types those as files.
    if (name.endsWith('/') && size === 0) return out.directory(name);
    return out.file(name, mode, chunksOf(entry, name));
  }
  // Entries without content still have to be drained for the parser to move on.
  entry.resume();
  switch (type) {
    case 'directory':
      return out.directory(name);
    case 'symlink':
      return out.symlink(name, linkname ?? '');
    case 'link':
      return out.hardlink(name, linkname ?? '');
    case 'character-device':
      throw special(name, 'character device');
    case 'block-device':
      throw special(name, 'block device');
    case 'fifo':
      throw special(name, 'fifo');
    default:
      throw special(name, `entry of unknown type ${String(type)}`);
  }
}

/** Passes the decompressed tar stream through, failing it once it grows past `limit()`. */
class InflateGuard extends Transform {
  error: ToolhostError | null = null;
  #seen = 0;
  readonly #limit: () => number;

  constructor(limit: () => number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    const limit = this.#limit();
    if (this.#seen <= limit) {
      callback(null, chunk);
      return;
    }
    this.error = new ToolhostError(
      'archive_too_large',
      `archive decompresses to more than ${limit} bytes of tar data without file content to match, like a decompression bomb; repack the archive`,
      { limit },
    );
    callback(this.error);
  }
}

// ---- shared ---------------------------------------------------------------------------------------------------

/** The chunks of an entry's content, read errors turned into `bad_archive` naming the entry. */
async function* chunksOf(stream: AsyncIterable<unknown>, entry: string): AsyncGenerator<Buffer> {
  const it = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await it.next();
      } catch (err) {
        throw corrupt(err, entry);
      }
      if (next.done === true) return;
      yield next.value as Buffer;
    }
  } finally {
    await it.return?.();
  }
}

/** An entry name for a message: quoted, escaped, and cut when absurdly long. */
function show(name: string): string {
  const quoted = JSON.stringify(name);
  return quoted.length > 300 ? `${quoted.slice(0, 300)}..."` : quoted;
}

function unsafe(entry: string, problem: string, remedy: string): ToolhostError {
  return new ToolhostError('unsafe_archive_entry', `archive entry ${show(entry)} ${problem}; ${remedy}`, { entry });
}

function special(entry: string, kind: string): ToolhostError {
  return unsafe(entry, `is a ${kind}, not a file, folder or symlink`, 'repack the archive without device files, fifos, sockets or other special entries');
}

function tooManyEntries(limit: number, entry?: string, declared?: number): ToolhostError {
  const what = entry === undefined
    ? `holds ${declared ?? 'too many'} entries, more than the limit of ${limit}`
    : `has more than ${limit} entries (stopped at ${show(entry)})`;
  return new ToolhostError(
    'archive_too_large',
    `archive ${what}; repack the archive with fewer files (leave out dependencies and build outputs)`,
    entry === undefined ? { limit } : { entry, limit },
  );
}

/** `bad_archive` for an error of the archive libraries (a ToolhostError passes through unchanged). */
function corrupt(err: unknown, entry?: string, after?: string): ToolhostError {
  if (err instanceof ToolhostError) return err;
  const why = err instanceof Error ? err.message : String(err);
  if (entry !== undefined) {
    return new ToolhostError('bad_archive', `archive entry ${show(entry)} is corrupt or truncated (${why}); repack the archive and upload it again`, { entry });
  }
  const where = after === undefined ? '' : ` after entry ${show(after)}`;
  return new ToolhostError(
    'bad_archive',
    `archive is corrupt, truncated or not in the format it claims${where} (${why}); repack the archive and upload it again`,
    after === undefined ? undefined : { after },
  );
}
