/**
 * The agents scenario's baseline: the same short calls done directly by a plain Node process, as an agent that
 * ran its tools in-process would: fs for list, read and edit (temp file and rename), ripgrep (the binary toolhost
 * uses) for glob and search, `bash -c` for commands. No sandbox, no HTTP, no validation, no model text.
 *
 * Run as its own process (`node --import tsx agent-direct.ts <project> <mix.json> <rounds>`) so its CPU time is
 * that work's alone. Kind by kind (every list of a round, then every read...), it replays one warm-up round
 * (skipped when `rounds` is 1: smoke mode), then `rounds` rounds, and prints `{kind: {calls, self, children}}`
 * (CPU seconds of the measured rounds, its own and its reaped children's).
 */
import { spawn } from 'node:child_process';
import { lstat, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rgPath } from '@vscode/ripgrep';
import { type CpuByKind, cpuOf, cpuSince } from './agent-cpu.js';
import { type MixStep, shortByKind } from './agent-mix.js';
import { REPO_ROOT } from './supervisor.js';

/** Names the project's .gitignore excludes, skipped by the direct list as toolhost's list skips them. */
const IGNORED = new Set(['.git', 'node_modules', 'dist']);
const READ_LINES = 2000;
const GLOB_RESULTS = 100;
const SEARCH_RESULTS = 50;

/** Runs a program to its end; its stdout, or an error with its stderr when it exits non-zero (rg: 1 = no match). */
function run(file: string, args: string[], cwd: string, okCodes = [0]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (okCodes.includes(code ?? -1)) resolve(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${file} exited with ${code}: ${Buffer.concat(err).toString('utf8').slice(0, 300)}`));
    });
  });
}

async function list(root: string, path: string, depth: number): Promise<number> {
  let entries = 0;
  const walk = async (dir: string, level: number): Promise<void> => {
    const names = (await readdir(dir, { withFileTypes: true })).filter((d) => !IGNORED.has(d.name)).sort((a, b) => a.name.localeCompare(b.name));
    for (const d of names) {
      const abs = join(dir, d.name);
      await lstat(abs);
      entries++;
      if (d.isDirectory() && level < depth) await walk(abs, level + 1);
    }
  };
  await walk(join(root, path), 1);
  return entries;
}

async function glob(root: string, pattern: string): Promise<number> {
  const out = await run(rgPath, ['--files', '--null', '--hidden', `--glob=${pattern}`, '--glob=!.git'], root, [0, 1]);
  const paths = out.split('\0').filter(Boolean);
  const dated = await Promise.all(paths.map(async (p) => ({ p, t: (await stat(join(root, p))).mtimeMs })));
  dated.sort((a, b) => b.t - a.t || a.p.localeCompare(b.p));
  return dated.slice(0, GLOB_RESULTS).length;
}

async function search(root: string, pattern: string, regex: boolean): Promise<number> {
  const args = ['--line-number', '--column', '--no-heading', '--hidden', '--sort=path', '--glob=!.git', ...(regex ? [] : ['-F']), '-e', pattern, '.'];
  const out = await run(rgPath, args, root, [0, 1]);
  return out.split('\n').filter(Boolean).slice(0, SEARCH_RESULTS).length;
}

async function read(root: string, path: string, start = 1, end?: number): Promise<number> {
  const lines = (await readFile(join(root, path), 'utf8')).split('\n');
  return lines.slice(start - 1, end ?? start - 1 + READ_LINES).join('\n').length;
}

async function edit(root: string, path: string, oldStr: string, newStr: string): Promise<number> {
  const abs = join(root, path);
  const text = await readFile(abs, 'utf8');
  const at = text.indexOf(oldStr);
  if (at < 0 || text.indexOf(oldStr, at + 1) >= 0) throw new Error(`edit of ${path}: old_str does not match exactly once`);
  const tmp = `${abs}.tmp-${process.pid}`;
  await writeFile(tmp, text.slice(0, at) + newStr + text.slice(at + oldStr.length));
  await rename(tmp, abs);
  return 1;
}

/** Does one call of the mix directly on the project at `root`. */
export function direct(root: string, s: MixStep): Promise<unknown> {
  switch (s.kind) {
    case 'list':
      return list(root, s.path, s.depth);
    case 'glob':
      return glob(root, s.pattern);
    case 'search':
      return search(root, s.pattern, s.regex);
    case 'read':
      return read(root, s.path, s.start_line, s.end_line);
    case 'edit':
      return edit(root, s.path, s.old_str, s.new_str);
    case 'exec':
    case 'test':
      return run('bash', ['-c', s.command], root);
  }
}

/**
 * Runs the baseline in its own process on the project at `root` (already written), replaying the short calls of
 * `mix` (written to `mixFile` for it); resolves with what it printed.
 */
export async function runDirect(root: string, mix: readonly MixStep[], mixFile: string, rounds: number): Promise<CpuByKind> {
  await writeFile(mixFile, JSON.stringify(mix));
  const out = await run(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), root, mixFile, String(rounds)], REPO_ROOT);
  return JSON.parse(out) as CpuByKind;
}

async function main(root: string, mixFile: string, rounds: number): Promise<void> {
  const mix = JSON.parse(await readFile(mixFile, 'utf8')) as MixStep[];
  const out: CpuByKind = {};
  for (const [kind, steps] of shortByKind(mix)) {
    if (rounds > 1) for (const s of steps) await direct(root, s);
    const before = cpuOf();
    for (let r = 0; r < rounds; r++) for (const s of steps) await direct(root, s);
    out[kind] = { calls: rounds * steps.length, ...cpuSince(before, cpuOf()) };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main(process.argv[2]!, process.argv[3]!, Number(process.argv[4])).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
