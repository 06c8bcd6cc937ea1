/**
 * A search of a project: ripgrep over it on all cores (rg-args.ts: rgThreads), its output parsed record by record as
 * it streams, the first max_results matches in path order kept whatever order rg's threads finish the files in
 * (path-order.ts), and every matching line counted (rg is stopped at COUNT_CAP of them, at the deadline, or on
 * cancel). A run that stopped at COUNT_CAP or died is run again with `--sort=path` (one thread), so that what such a
 * run lists does not depend on the threads either. What counts as ignored is what `file.list` ignores: the project's
 * own .gitignore files, `.git` never searched.
 *
 * The project's files and names may be written by a hostile command running at the same time, and this thread
 * is root, so:
 * - The target (the root or the request's `path`) is opened and the opened object is checked to be inside the
 *   project, a folder or a regular file (target.ts); a name swapped for a symlink after a check by name would win
 *   a race.
 * - With bubblewrap (`commands.sandbox`), rg is launched as a command is (lib/process/sandbox.ts): as the
 *   project's uid, in a user namespace without capabilities, seeing the system folders, the project (read-only)
 *   and rg itself. rg opens the folders and files of its walk by name after reading them from their folder, so a
 *   folder replaced by a symlink to /etc in between would be followed (no `-L` only spares links rg sees as
 *   links); in that namespace such a link points at nothing. Without bubblewrap rg gets the opened target as fd 3
 *   and searches that, so the named target cannot be redirected, and runs as the project's uid (when toolhost is
 *   root), so a swap inside its walk reaches nothing the project's own commands could not read (rg-launch.ts).
 * - rg runs with RLIMIT_AS = `search.maxMemoryBytes`, no core dumps, and an empty environment.
 * - Lines longer than `search.maxLineBytes` are not printed by rg (`--max-columns`): the answer counts them.
 *   Such lines, files rg could not read, a timeout, an rg that died and the cut at max_results all make the
 *   answer say `complete: false`, with the reasons (answer.ts); an answer never looks complete when something was
 *   skipped.
 */
import { closeSync } from 'node:fs';
import { cancelled, ToolhostError } from '../errors.js';
import { answer } from './answer.js';
import { MatchFilter } from './match-filter.js';
import { type RgOrder, rgArgs, rgThreads } from './rg-args.js';
import { rgLaunch } from './rg-launch.js';
import { type RgRunOutcome, runRg } from './run-rg.js';
import { ignoreScope, openTarget } from './target.js';
import type { SearchContext, SearchQuery, SearchResult } from './types.js';

/**
 * rg prints no line longer than `search.maxLineBytes` (it prints a placeholder instead); a record longer than
 * that plus this slack is dropped without being held in memory, and counted as a skipped long line.
 */
const RECORD_SLACK_BYTES = 64 * 1024;

/** Searches the project with ripgrep; see the module comment for what the answer promises. */
export async function searchProject(req: SearchQuery, ctx: SearchContext): Promise<SearchResult> {
  const { root, config, signal } = ctx;
  if (signal.aborted) throw cancelled(signal, 'the search');
  if (/[\r\n]/.test(req.pattern)) {
    throw new ToolhostError('bad_request', 'pattern contains a line break; search matches one line at a time, so search for a single line of the text', {
      pattern: req.pattern,
    });
  }
  const max = Math.min(req.max_results ?? config.budgets.searchResults, config.search.maxResults);
  const target = openTarget(root, req.path);
  let run: RgRunOutcome;
  try {
    const { rules, ignoreFile } = await ignoreScope(root, target);
    const maxLine = config.search.maxLineBytes;
    // Listing files needs no context lines: rg would print them all only for them to be dropped.
    const query = req.output === 'files' ? { ...req, context_lines: 0 } : req;
    const deadline = performance.now() + config.search.timeoutS * 1000;
    const runWith = (order: RgOrder): Promise<RgRunOutcome> => {
      const launch = rgLaunch((t, i, g) => rgArgs(query, t, i, g, maxLine, order), req.glob, ctx, target, ignoreFile);
      return runRg(launch, {
        context: req.output === 'files' ? 0 : req.context_lines,
        maxResults: req.output === 'files' ? 0 : max,
        maxFiles: req.output === 'files' ? max : 0,
        timeoutMs: Math.max(1, deadline - performance.now()),
        maxRecordBytes: config.search.maxLineBytes + RECORD_SLACK_BYTES,
        signal,
        jobId: ctx.jobId,
        filter: target.isDir ? new MatchFilter(rules, target.rel, launch.filterGlob) : null,
        fixedPath: target.isDir ? null : target.rel,
      });
    };
    run = await runWith(target.isDir ? { threads: rgThreads(config.search.maxMemoryBytes) } : 'sorted');
    // What a run that stopped early found depends on the order rg's threads took the files in; the answer must not.
    // Searched again in path order, it is today's answer to the letter, and what it costs is paid only by a search
    // of COUNT_CAP matching lines or one that killed rg (out of memory on a huge line, or a crash).
    if (target.isDir && (run.end === 'full' || run.end === 'aborted')) run = await runWith('sorted');
  } finally {
    closeSync(target.fd); // the child has its own copy
  }
  return answer(run, req, { ...config.search, searchResults: config.budgets.searchResults }, signal);
}
