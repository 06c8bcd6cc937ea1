/**
 * file_glob: the files of a project a glob matches, newest first. ripgrep lists them (`rg --files`), launched as
 * a search is (rg-launch.ts: the sandbox or the opened target as fd 3, its memory limit, the deadline, the kill of
 * its tree), with the same ignore rules (the project's .gitignore files, never .git) applied again by MatchFilter.
 * Every match is counted; only the `max` newest are kept, so memory stays bounded whatever the tree.
 */
import { closeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { rgPath } from '@vscode/ripgrep';
import { cancelled, ToolhostError } from '../errors.js';
import { boundedSpawn } from '../process/bounded-spawn.js';
import { reach } from '../safe-fs.js';
import { MatchFilter } from './match-filter.js';
import { rgFilesArgs } from './rg-args.js';
import { rgLaunch, rgTreeMembers } from './rg-launch.js';
import { ignoreScope, openTarget } from './target.js';
import type { SearchContext } from './types.js';

/** What to list: the tool's validated request. */
export interface GlobQuery {
  pattern: string;
  path: string;
  max_results?: number | undefined;
}

/** What file_glob answers. */
export interface GlobResult {
  /** Project-relative paths, newest first (then by path). */
  paths: string[];
  /** Files the pattern matches in all; a lower bound when timed_out. */
  total: number;
  /** True when more files matched than paths holds. */
  truncated: boolean;
  /** Present and true when the listing was stopped at search.timeoutS. */
  timed_out?: boolean;
}

const MAX_STDERR_BYTES = 16 * 1024;

/** Lists the files `req.pattern` matches under `req.path`; see the module comment. */
export async function globFiles(req: GlobQuery, ctx: SearchContext): Promise<GlobResult> {
  const { root, config, signal } = ctx;
  if (signal.aborted) throw cancelled(signal, 'the listing');
  checkPattern(req.pattern);
  const max = Math.min(req.max_results ?? config.budgets.globResults, config.search.maxResults);
  const target = openTarget(root, req.path);
  try {
    if (!target.isDir) {
      throw new ToolhostError('not_a_directory', `"${req.path}" is a file, not a folder; pass its folder as path, or read it with file_read`, {
        path: req.path,
      });
    }
    const { rules, ignoreFile } = await ignoreScope(root, target);
    const launch = rgLaunch(rgFilesArgs, req.pattern, ctx, target, ignoreFile);
    const filter = new MatchFilter(rules, target.rel, launch.filterGlob);
    let pid: number | undefined;
    const proc = boundedSpawn({
      launch: launch.launch,
      treeMembers: rgTreeMembers(() => pid),
      passFds: launch.passFds,
      deadlineMs: config.search.timeoutS * 1000,
      signal,
      killGraceMs: 0,
      jobId: ctx.jobId,
      drainMs: config.search.timeoutS * 1000,
    });
    pid = proc.pid;
    const exited = proc.done.catch((err: Error) => {
      throw new ToolhostError('internal', `cannot run ripgrep (${rgPath}): ${err.message}`);
    });
    exited.catch(() => {}); // awaited below
    let stderr = '';
    proc.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR_BYTES) stderr += chunk.toString('utf8');
    });
    const newest = new Newest(max);
    // Decoded across chunks: a name whose UTF-8 bytes straddle two reads must not turn into U+FFFD.
    const decoder = new StringDecoder('utf8');
    let rest = '';
    for await (const chunk of proc.stdout) {
      const names = (rest + decoder.write(chunk as Buffer)).split('\0');
      rest = names.pop() ?? '';
      for (const name of names) {
        const rel = launch.toRel(name);
        // Each file is asked about once: no verdict cache, which would grow with the tree.
        if (await filter.verdict(rel)) newest.add(rel, mtimeOf(root, rel));
      }
    }
    const { code } = await exited;
    if (proc.stopped === 'abort') throw cancelled(signal, 'the listing');
    const first = (stderr.split('\n').find((l) => l.trim() !== '') ?? '').replace(/^rg: /, '').slice(0, 300);
    if (code === 2 && newest.total === 0 && /error parsing glob/.test(stderr)) {
      throw new ToolhostError('bad_request', `pattern "${req.pattern}" is not a valid glob: ${first}; fix it, e.g. "**/*.ts"`, {
        pattern: req.pattern,
      });
    }
    if (proc.stopped === null && code !== 0 && code !== 1 && newest.total === 0) {
      throw new ToolhostError('search_failed', `listing the files failed (${first || `exit code ${code}`}); try a subfolder (path)`, { path: req.path });
    }
    const paths = newest.sorted();
    return {
      paths,
      total: newest.total,
      truncated: newest.total > paths.length,
      ...(proc.stopped === 'deadline' ? { timed_out: true } : {}),
    };
  } finally {
    closeSync(target.fd); // the child has its own copy
  }
}

/** Refuses a pattern that names files outside the project (absolute, or climbing with ".."), or spans lines. */
function checkPattern(pattern: string): void {
  const body = pattern.replace(/^!/, '');
  if (body.startsWith('/') || body.split('/').includes('..')) {
    throw new ToolhostError(
      'path_outside_project',
      `pattern "${pattern}" reaches outside the folder it is matched in; patterns are relative to path (default the project root), without a leading "/" or ".." (to list another folder, pass it as path)`,
      { pattern },
    );
  }
  if (/[\0\r\n]/.test(pattern)) {
    throw new ToolhostError('bad_request', 'pattern contains a NUL or a line break; pass one glob such as "**/*.ts"', { pattern });
  }
}

/**
 * The file's mtime in ms, 0 when it is gone (listed, then deleted) or now lies outside the project: reached name by
 * name through held folders (lib/safe-fs.ts), so a folder a command swaps for a symlink meanwhile cannot make this
 * thread stat a file of the host.
 */
function mtimeOf(root: string, rel: string): number {
  try {
    const at = reach(root, rel);
    try {
      return at.stat?.mtimeMs ?? 0;
    } finally {
      at.close();
    }
  } catch {
    return 0;
  }
}

/** The `max` newest of the files added, counting all. */
class Newest {
  readonly #max: number;
  #kept: { path: string; mtime: number }[] = [];
  total = 0;

  constructor(max: number) {
    this.#max = max;
  }

  add(path: string, mtime: number): void {
    this.total++;
    this.#kept.push({ path, mtime });
    if (this.#kept.length >= 2 * this.#max + 1024) this.#kept = this.#order().slice(0, this.#max);
  }

  sorted(): string[] {
    return this.#order()
      .slice(0, this.#max)
      .map((f) => f.path);
  }

  #order(): { path: string; mtime: number }[] {
    return this.#kept.sort((a, b) => b.mtime - a.mtime || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
