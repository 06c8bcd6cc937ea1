/**
 * Deterministic data sets: a seeded PRNG, a generator of source-like project trees (same seed, same bytes), and
 * archives of them built with the system's tar and zip, as a user would build them.
 */
import { execFile } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** sfc32: a small, fast, seedable PRNG (not for cryptography). */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** `n` random bytes (incompressible). */
  bytes(n: number): Buffer {
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) words[i] = this.next();
    return Buffer.from(words.buffer, 0, n);
  }
}

/** A vocabulary of lowercase identifiers (letters only, so planted needles with "_" never occur by chance). */
function vocabulary(prng: Prng, size = 2000): string[] {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const words: string[] = [];
  for (let i = 0; i < size; i++) {
    let w = '';
    for (let n = 3 + prng.int(8); n > 0; n--) w += letters[prng.int(26)];
    words.push(w);
  }
  return words;
}

/** About `bytes` bytes of source-like ASCII text, whole lines, exactly `bytes` long. */
export function sourceText(prng: Prng, words: readonly string[], bytes: number): string {
  const w = (): string => words[prng.int(words.length)]!;
  const lines: string[] = [];
  let size = 0;
  let depth = 0;
  while (size < bytes) {
    const pad = '  '.repeat(depth);
    let line: string;
    switch (prng.int(6)) {
      case 0:
        line = `${pad}const ${w()} = ${w()}(${w()}, ${prng.int(1000)});`;
        break;
      case 1:
        line = depth < 4 ? `${pad}if (${w()}.${w()} > ${prng.int(100)}) {` : `${pad}${w()}.${w()}();`;
        if (depth < 4) depth++;
        break;
      case 2:
        line = depth > 0 ? `${'  '.repeat(--depth)}}` : `${pad}export function ${w()}(${w()}) {`;
        if (line.endsWith('{')) depth++;
        break;
      case 3:
        line = `${pad}// ${w()} ${w()} ${w()} ${w()} ${w()}`;
        break;
      case 4:
        line = `${pad}return ${w()}.${w()}(${w()}, '${w()}');`;
        break;
      default:
        line = `${pad}${w()} = ${w()} + ${w()} * ${prng.int(64)};`;
    }
    lines.push(line);
    size += line.length + 1;
  }
  const text = `${lines.join('\n')}\n`.slice(0, bytes - 1);
  return `${text}\n`;
}

/** What tree to generate. */
export interface TreeSpec {
  files: number;
  /** Approximate total bytes of file content. */
  totalBytes: number;
  seed: number;
  /** Share of files filled with random bytes (like images or jars), the rest source-like text. Default 0. */
  binaryShare?: number;
}

/**
 * The project of the cold-start and save figures: 100 MiB in 10,000 files, 80% source-like text, 20% random bytes,
 * always the same (seed 6); 2 MiB in 200 files in smoke mode.
 */
export function benchProject(smoke: boolean): TreeSpec {
  const size = smoke ? { files: 200, totalBytes: 2 * 2 ** 20 } : { files: 10_000, totalBytes: 100 * 2 ** 20 };
  return { ...size, seed: 6, binaryShare: 0.2 };
}

/** A generated tree. */
export interface GeneratedTree {
  root: string;
  /** Project-relative paths, in creation order. */
  files: string[];
  /** Bytes of file content written. */
  bytes: number;
}

/** Writes a deterministic tree of `spec.files` files (about 25 per folder, two folder levels) under `root`. */
export async function generateTree(root: string, spec: TreeSpec): Promise<GeneratedTree> {
  const prng = new Prng(spec.seed);
  const words = vocabulary(prng);
  const dirs = Math.max(1, Math.ceil(spec.files / 25));
  const mean = spec.totalBytes / spec.files;
  const files: string[] = [];
  let bytes = 0;
  for (let i = 0; i < spec.files; i++) {
    const d = i % dirs;
    const binary = prng.float() < (spec.binaryShare ?? 0);
    const rel = `src/m${d % 20}/p${Math.floor(d / 20)}/f${i}.${binary ? 'bin' : 'ts'}`;
    const size = Math.max(16, Math.floor(mean * (0.25 + 1.5 * prng.float())));
    const content = binary ? prng.bytes(size) : sourceText(prng, words, size);
    const abs = join(root, rel);
    if (i < dirs) await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content);
    files.push(rel);
    bytes += size;
  }
  return { root, files, bytes };
}

/** Builds `out` from the contents of `dir` with the system's zip or tar (gzip at `gzipLevel`, default 6). */
export async function buildArchive(dir: string, out: string, format: 'zip' | 'tar.gz', gzipLevel = 6): Promise<number> {
  if (format === 'zip') await run('zip', ['-qr', `-${gzipLevel}`, out, '.'], { cwd: dir });
  else await run('tar', [`--use-compress-program=gzip -${gzipLevel}`, '-cf', out, '-C', dir, '.']);
  return (await stat(out)).size;
}

/** One source-like text file of exactly `bytes` bytes. */
export function sourceFile(seed: number, bytes: number): string {
  const prng = new Prng(seed);
  return sourceText(prng, vocabulary(prng), bytes);
}
