/**
 * How rg is started for a search, and how the paths it prints map back to the project: through the sandbox plan
 * (lib/process/sandbox.ts) as commands are, or, without bubblewrap, behind a bash prelude that sets its limits and
 * hands it the opened target as fd 3.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { posix, resolve } from 'node:path';
import { rgPath } from '@vscode/ripgrep';
import { projectRelative } from '../paths.js';
import { projectOwner } from '../process/owner.js';
import { processSubtree } from '../process/process-tree.js';
import { type Launch, launchArgv, PRELUDE_ENV, planOf, ulimit } from '../process/sandbox.js';
import type { OpenTarget } from './target.js';
import type { SearchContext } from './types.js';

/**
 * rg's arguments for what it is to do on `target` (a path, or "." in its working folder), given the ignore file
 * it is to read (rg-args.ts) and the glob it is to apply (undefined when MatchFilter applies it instead).
 */
export type RgArgsFor = (target: string, ignoreFile: 'walk' | string | null, glob: string | undefined) => string[];

/** Where rg finds the target opened here when there is no sandbox (the fd is passed as fd 3). */
const FD_TARGET = '/proc/self/fd/3';

/**
 * How rg is started and how its paths map back to the project.
 * - In the sandbox rg sees the project at its own path, works in it and gets the target by its real
 *   relative name, so globs and .gitignore files apply exactly as on the host; a name can still change under it,
 *   but every name resolves inside the project.
 * - Without it rg gets the opened target as fd 3: a folder becomes its working folder (`cd /proc/self/fd/3`,
 *   done before exec) and it searches "."; a file it searches as /proc/self/fd/3. rg's paths are then relative to
 *   the target, not the root, so for a subfolder the root .gitignore and a glob anchored at the root ("src/**")
 *   cannot be handed to rg (rg would match "*" then "!src/**" against "a.ts" and prune all of src): MatchFilter
 *   applies them instead. rg runs as the project's uid, as its commands do when toolhost is root: a swap inside
 *   rg's walk then reaches nothing the project's own commands cannot read anyway.
 */
export interface RgLaunch {
  /** What to spawn, with its environment (the sandbox's fixed prelude environment, or PATH and LANG). */
  launch: Launch;
  /** The fds rg gets as fd 3 on: the opened target, without a sandbox. */
  passFds: number[];
  /** rg's path of a file -> project-relative path. */
  toRel(p: string): string;
  /** The request's glob when rg did not get it: MatchFilter applies it. */
  filterGlob: string | undefined;
}

/** A glob anchored at the folder it is matched from: a "/" before its end, and not starting with "**\/". */
function anchored(glob: string): boolean {
  const g = glob.replace(/^!/, '').replace(/\/$/, '');
  return g.includes('/') && !(g.startsWith('**/') && !g.slice(3).includes('/'));
}

/**
 * How to start rg with the arguments `argsFor` makes, the user's `glob` (if any), on the opened `target`.
 * @param ignoreFile `walk`: the .gitignore files rg meets; `root`: the root's as well (a subfolder is searched);
 *   null: none (a folder .gitignore excludes, named as path, is searched whole).
 */
export function rgLaunch(argsFor: RgArgsFor, glob: string | undefined, ctx: SearchContext, target: OpenTarget, ignoreFile: 'walk' | 'root' | null): RgLaunch {
  const { root, config } = ctx;
  // Searches run in the sandbox commands run in (the config's sandbox is the one resolved at start).
  const plan = { ...planOf(config.commands, config.dataDir), network: false };
  const owner = projectOwner(config, ctx.projectId);
  if (plan.mode === 'bwrap') {
    const rgIgnore = ignoreFile === 'root' ? `${root}/.gitignore` : ignoreFile;
    const args = argsFor(target.rel, rgIgnore, glob);
    const rg = realRgPath();
    const launch = launchArgv({
      command: '',
      exec: [rg, ...args],
      cwd: root,
      root,
      home: null,
      env: {},
      limits: { addressSpaceBytes: config.search.maxMemoryBytes, cpuSeconds: 0, processes: 0, openFiles: 0, fileSizeBytes: 0 },
      owner,
      plan,
      projectReadOnly: true,
      extraReadOnly: [rg],
    });
    return { launch, passFds: [], toRel: (p) => projectRelative(root, posix.resolve(root, p)), filterGlob: undefined };
  }
  const prelude = (args: string[], cdToFd3: boolean): Launch => ({
    file: plan.launchers.bash,
    args: [...BASH, limitPrelude(config.search.maxMemoryBytes, cdToFd3), 'toolhost', rgPath, ...args],
    env: { PATH: PRELUDE_ENV.PATH as string, LANG: 'C.UTF-8' }, // the system's: never toolhost's node_modules/.bin
    cwd: '/',
    ...(owner ? { user: owner } : {}),
  });
  if (!target.isDir) {
    const args = argsFor(FD_TARGET, ignoreFile, glob);
    return { launch: prelude(args, false), passFds: [target.fd], toRel: () => target.rel, filterGlob: undefined };
  }
  const below = target.rel !== '.';
  const filterGlob = below && glob !== undefined && anchored(glob) ? glob : undefined;
  const args = argsFor('.', ignoreFile === 'root' ? 'walk' : ignoreFile, filterGlob ? undefined : glob);
  return {
    launch: prelude(args, true),
    passFds: [target.fd],
    toRel: (p) => projectRelative(root, resolve(root, target.rel, p)),
    filterGlob,
  };
}

/**
 * The processes of rg's tree, for its kill (bounded-spawn's `treeMembers`), in place of the scan of every process
 * on the machine that looks for the job's marker variable: rg runs with an empty environment, so that scan could
 * only ever find the members of rg's process group, which the kill signals as a group anyway, and it cost each
 * search a read of two files per process of the host (the largest cost of a search in the worker's profile). The
 * tree is that of the spawned process, while it still leads its own group (after it exited and was reaped, its pid
 * may be another's): with bubblewrap the whole sandbox, whose pid namespace dies with it (--die-with-parent), so
 * nothing of rg's outlives it; without, rg itself (bash execs it), which starts no processes (no --pre, no
 * --search-zip, --no-config).
 * @param pidOf the spawned process's pid, once known.
 */
export function rgTreeMembers(pidOf: () => number | undefined): () => Promise<number[]> {
  return async () => {
    const pid = pidOf();
    if (pid === undefined) return [];
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pid) return [];
    } catch {
      return []; // gone
    }
    return processSubtree(pid);
  };
}

let rgReal: string | undefined;
/** The rg binary's real path (node_modules may link it): bwrap binds it read-only at that path. */
function realRgPath(): string {
  rgReal ??= realpathSync(rgPath);
  return rgReal;
}

/**
 * bash's flags for the prelude: no rc files, ever (bash reads ~/.bashrc when its stdin is a socket, taking it for
 * rshd; stdin is /dev/null here, but the rule costs nothing).
 */
const BASH = ['--norc', '--noprofile', '-c'];

/**
 * The bash prelude that sets rg's limits, optionally enters the folder passed as fd 3, and execs the rest of its
 * arguments with an empty environment (bash itself would add PWD and SHLVL; rg needs none). A failed step exits
 * 125, never 1 (rg's "no match"); an rg that never ran prints no stats, so it cannot pass for a finished search
 * anyway. No core dumps: an rg out of memory aborts, and a 1 GiB core would be written for nothing.
 */
function limitPrelude(maxMemoryBytes: number, cdToFd3: boolean): string {
  const steps = ['ulimit -S -H -c 0'];
  const memory = ulimit('-v', 'Max address space', maxMemoryBytes, 1024);
  if (memory) steps.push(memory);
  if (cdToFd3) steps.push(`cd ${FD_TARGET}`);
  return `${steps.join(' && ')} || exit 125; exec -c "$@"`;
}
