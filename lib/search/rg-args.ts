/**
 * rg's command line for a search request: its standard printer in a form lib/search/rg-output.ts can split
 * record by record, the project's own ignore rules only, and the request's pattern, case, context and glob.
 */
import { availableParallelism } from 'node:os';
import type { SearchQuery } from './types.js';

/**
 * How rg goes through the files: `sorted` is `--sort=path`, one thread, files in path order; `threads` searches
 * that many files at once and prints each file's records together when it is done, files in any order (the
 * collector puts them in path order, path-order.ts).
 */
export type RgOrder = 'sorted' | { threads: number };

/** rg's own bound on its default thread count. */
const MAX_THREADS = 12;
/**
 * Address space allowed per thread of rg: each takes about 5 MiB of it before it reads anything, and an rg that
 * cannot start a thread under RLIMIT_AS hangs (measured with rg 15) instead of failing, until search.timeoutS.
 */
const BYTES_PER_THREAD = 16 * 2 ** 20;

/** The threads rg gets under `maxMemoryBytes` of address space: its default (the cores, at most 12) if it fits. */
export function rgThreads(maxMemoryBytes: number): number {
  return Math.max(1, Math.min(availableParallelism(), MAX_THREADS, Math.floor(maxMemoryBytes / BYTES_PER_THREAD)));
}

/**
 * The rg command line. Output is rg's standard printer, not --json: --max-columns works only there, and --json
 * builds each match with all its submatches in memory (670 MB for one 21 MB line). Each record is
 * `path NUL line:column:text LF` (a match) or `path NUL line-text LF` (a context line); text holds neither NUL nor
 * LF, a path may hold LF. The user pattern goes through `-e` so a leading "-" is never read as a flag.
 *
 * @param target what rg searches (a path, or "." in its working folder).
 * @param ignoreFile `walk`: the .gitignore files rg meets on its walk; a path: that file as well; null: none.
 * @param glob the request's glob when rg applies it, undefined when it does not.
 * @param order files in path order on one thread, or in any order on several (see {@link RgOrder}).
 */
export function rgArgs(
  req: SearchQuery,
  target: string,
  ignoreFile: 'walk' | string | null,
  glob: string | undefined,
  maxLineBytes: number,
  order: RgOrder,
): string[] {
  const args = [
    '--no-config', // RIPGREP_CONFIG_PATH of the host must not change results
    order === 'sorted' ? '--sort=path' : `--threads=${order.threads}`,
    '--null',
    '--line-number',
    '--column',
    '--with-filename',
    '--no-heading',
    '--color=never',
    '--no-context-separator',
    '--stats', // printed only when rg got to the end: the proof that a search finished
    // Each line as it is found (sorted), or each file as it is done (threads): a pipe would get rg's output in 8 KiB
    // blocks, and the block not yet written when rg is killed (timeout) or dies (out of memory) would be lost from
    // the partial answer.
    '--line-buffered',
    `--max-columns=${maxLineBytes}`,
    ...ignoreArgs(ignoreFile),
  ];
  if (!req.regex) args.push('--fixed-strings');
  if (!req.case_sensitive) args.push('--ignore-case');
  if (req.context_lines > 0) args.push(`--context=${req.context_lines}`);
  if (glob) args.push(`--glob=${glob}`);
  // Last, so it wins over a user glob such as "**": .git is never searched.
  args.push('--glob=!.git', '-e', req.pattern, '--', target);
  return args;
}

/**
 * What counts as ignored, as file_list sees it: hidden files searched, the project's own .gitignore files only.
 * @param ignoreFile `walk`: the .gitignore files rg meets on its walk; a path: that file as well; null: none.
 */
function ignoreArgs(ignoreFile: 'walk' | string | null): string[] {
  const args = [
    // rg would quote lines of an ignore file it cannot parse; without a sandbox that file may be a link to any
    // file of the host. The rules are applied again by MatchFilter anyway.
    '--no-ignore-messages',
    '--hidden',
    // Only the project's own .gitignore files count: --no-require-git for projects shipped without .git, and
    // --no-ignore-parent because with it rg would also apply .gitignore files of folders above the searched one
    // (the data dir's, the host's), since it stops at a repository boundary only when it requires git.
    '--no-require-git',
    '--no-ignore-parent',
    '--no-ignore-global',
    '--no-ignore-exclude',
    '--no-ignore-dot', // .ignore/.rgignore are rg's own; file.list does not read them either
  ];
  if (ignoreFile === null) args.push('--no-ignore-vcs');
  else if (ignoreFile !== 'walk') args.push(`--ignore-file=${ignoreFile}`);
  return args;
}

/**
 * rg's command line for file_glob: the files under `target` (NUL after each) that `glob` matches, with the same
 * ignore rules as a search, never .git.
 */
export function rgFilesArgs(target: string, ignoreFile: 'walk' | string | null, glob: string | undefined): string[] {
  const args = ['--no-config', '--files', '--null', '--color=never', ...ignoreArgs(ignoreFile)];
  if (glob) args.push(`--glob=${glob}`);
  args.push('--glob=!.git', '--', target);
  return args;
}
