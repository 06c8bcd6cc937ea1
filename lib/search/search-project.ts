/**
 * A search of a project: ripgrep over it, its output parsed record by record as it streams, max_results matches
 * kept and every matching line counted (rg is stopped at COUNT_CAP of them, at the deadline, or on cancel). What counts as ignored is what `file.list` ignores:
 * the project's own .gitignore files, `.git` never searched.
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
import { rgArgs } from './rg-args.js';
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
    const launch = rgLaunch((t, i, g) => rgArgs(query, t, i, g, maxLine), req.glob, ctx, target, ignoreFile);
    const filter = target.isDir ? new MatchFilter(rules, target.rel, launch.filterGlob) : null;
    run = await runRg(launch, {
      context: req.output === 'files' ? 0 : req.context_lines,
      maxResults: req.output === 'files' ? 0 : max,
      maxFiles: req.output === 'files' ? max : 0,
      timeoutMs: config.search.timeoutS * 1000,
      maxRecordBytes: config.search.maxLineBytes + RECORD_SLACK_BYTES,
      signal,
      jobId: ctx.jobId,
      filter,
      fixedPath: target.isDir ? null : target.rel,
    });
  } finally {
    closeSync(target.fd); // the child has its own copy
  }
  return answer(run, req, { ...config.search, searchResults: config.budgets.searchResults }, signal);
}
