/**
 * One rg run of a search: rg started under its bound (lib/process/bounded-spawn.ts: the deadline, the job's
 * cancel signal, the kill of its process group), its output parsed as it streams and folded into matches, the
 * matches past max_results counted, and rg stopped once COUNT_CAP (types.ts) matching lines were counted.
 */
import { rgPath } from '@vscode/ripgrep';
import { ToolhostError } from '../errors.js';
import { boundedSpawn } from '../process/bounded-spawn.js';
import { MatchCollector } from './collector.js';
import type { MatchFilter } from './match-filter.js';
import { type RgLaunch, rgTreeMembers } from './rg-launch.js';
import { finished, RgErrors, RgOutput } from './rg-output.js';
import type { SearchFile, SearchMatch } from './types.js';

const MAX_STDERR_BYTES = 64 * 1024;

/** What an rg run collects, and its bounds. */
export interface RgRunOptions {
  /** Context lines before and after each match. */
  context: number;
  maxResults: number;
  /** Most files listed (output "files"; 0 otherwise). */
  maxFiles: number;
  timeoutMs: number;
  /** A record longer than this is dropped (rg printed a line it should have left out): it counts as long. */
  maxRecordBytes: number;
  signal: AbortSignal;
  /** The search's job id: the kill of rg's tree looks for it (rg's environment is empty, so its group is what counts). */
  jobId: string;
  filter: MatchFilter | null;
  /** The project-relative path of a file target: every record is in it. */
  fixedPath: string | null;
}

/**
 * How a run ended. States, each set once, the first one wins:
 *   done      rg got to the end (its stats block was printed), whatever its exit code (2: some files unreadable)
 *   full      COUNT_CAP matching lines counted, rg killed (the total is a lower bound)
 *   timeout   search.timeoutS passed, rg killed
 *   cancelled ctx.signal fired, rg killed
 *   failed    rg exited 2 without printing anything (bad regex, bad glob)
 *   aborted   rg ended without its stats by itself: killed by a signal (out of memory), or a launch failure
 */
export type RgRunEnd = 'done' | 'full' | 'timeout' | 'cancelled' | 'failed' | 'aborted';

/** What an rg run found, and how it ended. */
export interface RgRunOutcome {
  end: RgRunEnd;
  matches: SearchMatch[];
  files: SearchFile[];
  /** Matching lines and files counted, and those left out by max_results. */
  total: number;
  totalFiles: number;
  overflow: number;
  skippedLong: number;
  longLines: { path: string; line: number }[];
  /** rg's first MAX_LISTED (types.ts) error messages, in path order, paths project-relative. */
  errors: string[];
  /** rg's error messages in all. */
  errorCount: number;
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Runs rg and folds its output into matches; returns once rg has exited, its tree is gone and its pipes are closed. */
export async function runRg(rg: RgLaunch, o: RgRunOptions): Promise<RgRunOutcome> {
  let pid: number | undefined;
  const proc = boundedSpawn<'full' | 'failed'>({
    launch: rg.launch,
    treeMembers: rgTreeMembers(() => pid),
    passFds: rg.passFds,
    deadlineMs: o.timeoutMs,
    // Checked here too: it may have fired while the target was checked, and then no event will come.
    signal: o.signal,
    killGraceMs: 0, // rg keeps no state worth a graceful exit
    jobId: o.jobId,
    // Nothing outside rg's group holds its pipes, and what it wrote before it ended is part of the answer: the
    // parser gets as long as a search may take to read it.
    drainMs: o.timeoutMs,
  });
  pid = proc.pid;
  const exited = proc.done.catch((err: Error) => {
    throw new ToolhostError('internal', `cannot run ripgrep (${rgPath}): ${err.message}`);
  });
  exited.catch(() => {}); // awaited below; this only keeps an early rejection from being reported as unhandled

  const stderr = new RgErrors(rg.toRel, MAX_STDERR_BYTES);
  proc.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));

  const collector = new MatchCollector({ ...o, toRel: rg.toRel });
  const output = new RgOutput(o.maxRecordBytes);
  try {
    outer: for await (const chunk of proc.stdout) {
      for (const r of output.push(chunk as Buffer)) {
        if (proc.stopped !== null) break outer;
        await collector.add(r);
        if (collector.full) proc.stop('full');
      }
      if (proc.stopped !== null) break;
    }
  } catch (err) {
    proc.stop('failed');
    await exited.catch(() => {});
    throw err;
  }
  const { code, signal } = await exited;
  const stopped = proc.stopped;
  let end: RgRunEnd;
  if (stopped === 'deadline') end = 'timeout';
  else if (stopped === 'abort') end = 'cancelled';
  else if (stopped !== null) end = stopped;
  else if (finished(output.tail)) end = 'done';
  else if (code === 2 && collector.records === 0 && output.tail === '') end = 'failed';
  else end = 'aborted';
  const c = collector;
  const { matches, files, longLines, overflow } = c.finish();
  return {
    end,
    matches,
    files,
    total: c.total,
    totalFiles: c.totalFiles,
    overflow,
    skippedLong: c.skippedLong,
    longLines,
    errors: end === 'failed' ? [] : stderr.listed(),
    errorCount: end === 'failed' ? 0 : stderr.count,
    stderr: stderr.text,
    code,
    signal,
  };
}
