/**
 * How a command is launched. A short prelude (a dash or bash script, run with a fixed environment: nothing of the
 * request reaches it) sets the command's resource limits and waits to be put into its pids cgroup, then execs the
 * sandbox. With bubblewrap the prelude is spawned as the project's uid already:
 *
 *   prelude (project uid, fixed env)
 *     -> [pasta: a network namespace with outbound user-mode networking, no address of the host reachable]
 *     -> bwrap (user namespace, every capability dropped; only system folders read-only, an /etc without secrets,
 *        the project and its HOME read-write, private /tmp, own pid/ipc/uts/net namespaces)
 *     -> bash -c <command>, with the request's env set by bwrap inside the sandbox.
 *
 * It starts as root only where it must: to stage a data dir the project's uid cannot pass (a private mount
 * namespace, see stageArgs), or without bubblewrap ("none"), where it unshares the network, drops to the project's
 * uid with setpriv and enters the cwd with `env -i -C`. Not root: no uid change is possible, and the command runs
 * as toolhost's own uid (the start banner and /health say so). Search launches ripgrep through the same code.
 */
import { accessSync, constants, existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import type { Owner } from './owner.js';
import { allowedEtc, ETC_LIVE, preparedEtc } from './sandbox-etc.js';

/** Which sandbox commands run in. */
export type SandboxMode = 'none' | 'bwrap';

/** Resource limits of one command process (0 = unlimited). */
export interface CommandLimits {
  addressSpaceBytes: number;
  cpuSeconds: number;
  processes: number;
  openFiles: number;
  fileSizeBytes: number;
}

/** The absolute path of an executable on the supervisor's own PATH, or null. */
export function which(name: string): string | null {
  for (const dir of (process.env.PATH ?? PRELUDE_ENV.PATH!).split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

/**
 * The sandbox a setting names, by what is installed: `auto` means bwrap when installed. Whether bwrap really
 * works here (user namespaces) is probed once at start (containment.ts), which then hands the pools a config
 * whose `commands.sandbox` is the resolved mode.
 */
export function resolveSandbox(setting: 'none' | 'bwrap' | 'auto'): { mode: SandboxMode; bwrap: string | null } {
  const bwrap = setting === 'none' ? null : which('bwrap');
  if (setting === 'bwrap' && !bwrap) {
    throw new Error(
      'commands.sandbox is "bwrap" but bwrap is not installed; install bubblewrap (apt-get install bubblewrap) or set commands.sandbox to "auto"',
    );
  }
  return { mode: bwrap ? 'bwrap' : 'none', bwrap };
}

/** The launch plan of a config whose sandbox setting is already resolved; programs looked up once per thread. */
export function planOf(c: { sandbox: 'none' | 'bwrap' | 'auto'; network: boolean; readOnlyPaths: readonly string[] }, dataDir?: string): SandboxPlan {
  launchersOnce ??= {
    bash: which('bash') ?? '/bin/bash',
    dash: which('dash'),
    env: which('env') ?? '/usr/bin/env',
    bwrap: which('bwrap'),
    setpriv: which('setpriv'),
    unshare: which('unshare'),
    pasta: which('pasta'),
    ip: which('ip'),
    mount: which('mount'),
  };
  // Resolved at start already (containment.ts): no PATH lookup per launch when bwrap was found.
  const mode = c.sandbox === 'none' ? 'none' : launchersOnce.bwrap ? 'bwrap' : resolveSandbox(c.sandbox).mode;
  const etc = dataDir === undefined ? null : preparedEtc(dataDir);
  return { mode, network: c.network && mode === 'bwrap', launchers: launchersOnce, readOnlyPaths: c.readOnlyPaths, etc };
}

let launchersOnce: Launchers | undefined;

/** Absolute paths of the programs the launch uses, found once on the supervisor's own PATH. */
export interface Launchers {
  bash: string;
  /** A POSIX shell that starts faster than bash (dash), for the prelude when it needs nothing of bash's. */
  dash: string | null;
  env: string;
  bwrap: string | null;
  setpriv: string | null;
  unshare: string | null;
  pasta: string | null;
  ip: string | null;
  mount: string | null;
}

/** The sandbox as resolved at start: what every launch on this machine does. */
export interface SandboxPlan {
  mode: SandboxMode;
  /** Outbound network through pasta (only with bwrap). */
  network: boolean;
  launchers: Launchers;
  /** Host folders shown read-only besides the system ones (commands.readOnlyPaths). */
  readOnlyPaths: readonly string[];
  /** The prepared copy of /etc ({@link prepareEtc}), or null to bind the allowed entries one by one. */
  etc?: string | null;
}

/** Everything needed to build the argv of one command. */
export interface LaunchSpec {
  command: string;
  cwd: string;
  /** The project root: writable inside the sandbox. */
  root: string;
  /** HOME of the command: writable inside the sandbox; null for none (search). */
  home: string | null;
  /** The command's whole environment (the request's variables included); reaches only the command. */
  env: Record<string, string>;
  limits: CommandLimits;
  /** A cgroup.procs file the command joins before anything else runs. */
  cgroupProcs?: string | undefined;
  /** The uid the command runs as (toolhost is root), or null to keep toolhost's own. */
  owner: Owner | null;
  plan: SandboxPlan;
  /** Run this argv instead of `bash -c command` (ripgrep for the search tool). */
  exec?: string[] | undefined;
  /** Show the project read-only (search). */
  projectReadOnly?: boolean | undefined;
  /** Host files or folders shown read-only at their own path (the ripgrep binary). */
  extraReadOnly?: string[] | undefined;
}

/** The PATH of the prelude: system folders only, whatever the supervisor's or the request's PATH says. */
export const PRELUDE_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
});

/** The uid and gid a command has inside a sandbox without network (mapped to the project's uid outside). */
export const SANDBOX_UID = 1000;

const KiB = 1024;

/** What to spawn for one command. */
export interface Launch {
  file: string;
  args: string[];
  /** The launch's environment: fixed, never the request's. */
  env: Record<string, string>;
  /**
   * Spawn as this uid and gid (the project's): the sandbox needs no root to start, so none is kept. The prelude
   * then waits on fd 3 for the spawner to have put it into `joinCgroup` (it could not join a root cgroup itself).
   */
  user?: { uid: number; gid: number };
  /** The cgroup.procs file the spawner writes the child's pid to before it writes a line to its fd 3. */
  joinCgroup?: string;
  /**
   * Where to spawn: a folder no command can swap (the project root, whose parent is root's, or /). The command's
   * own cwd, which a command may swap for a symlink at any moment, is entered only by the unprivileged side:
   * bwrap's --chdir inside the sandbox, or `env -C` after setpriv.
   */
  cwd: string;
}

/**
 * The file, argv and environment to spawn. The environment is fixed (see {@link PRELUDE_ENV}); the command's
 * own environment is handed over as arguments (bwrap's --setenv, env -i) that only the last exec applies.
 */
export function launchArgv(spec: LaunchSpec): Launch {
  const l = spec.limits;
  const { launchers: x } = spec.plan;
  // RLIMIT_NPROC counts every process of the uid, all of the project's commands at once: only where no pids cgroup
  // counts this command's own. dash has no `ulimit -u`, so that case keeps bash for the prelude.
  const nproc = spec.cgroupProcs ? undefined : ulimit('-u', 'Max processes', l.processes, 1);
  const steps = [
    '{ [ -z "$1" ] || echo $$ > "$1"; }', // joining first means every process the command starts is counted
    'ulimit -S -c 0', // no core files in the project unless the command asks for them
    ulimit('-v', 'Max address space', l.addressSpaceBytes, KiB),
    ulimit('-t', 'Max cpu time', l.cpuSeconds, 1),
    nproc,
    ulimit('-n', 'Max open files', l.openFiles, 1),
    ulimit('-f', 'Max file size', l.fileSizeBytes, KiB),
  ].filter((s): s is string => s !== undefined);
  const shell = nproc === undefined && x.dash ? x.dash : x.bash;
  // --norc: bash sources ~/.bashrc when its stdin is a socket (it takes that for rshd), which a piped stdin is.
  const inner = spec.exec ?? [x.bash, '--norc', '-c', spec.command];
  if (spec.plan.mode === 'bwrap' && x.bwrap) {
    const uid = spec.plan.network ? 0 : SANDBOX_UID;
    // passwd and group name the sandbox's own user only: tools that look themselves up (git, ssh) find it. They
    // reach bwrap as here-documents on fds 5 and 6 (the rest of the line follows them).
    steps.push('exec 5<<PASSWD 6<<GROUP');
    const docs = ['$2', 'PASSWD', '$3', 'GROUP'];
    const sources = [spec.root, ...(spec.home ? [spec.home] : []), ...(spec.extraReadOnly ?? [])];
    const staged = spec.owner && x.unshare && x.mount && needsStaging(sources) ? sources.map((_, i) => `/run/s${i}`) : null;
    const sandbox = [x.bwrap, ...bwrapArgs(spec, uid, staged ?? sources, staged !== null), '--', ...inner];
    const net = spec.plan.network && x.pasta ? pastaArgs(x) : [];
    const params = [spec.cgroupProcs ?? '', passwd(uid, spec.home ?? '/'), `agent:x:${uid}:`];
    if (spec.owner && !staged) {
      // Nothing here needs root: spawned as the project's uid, with no setpriv to exec (a tenth of a launch).
      if (spec.cgroupProcs) steps[0] = 'read -r _ <&3 && exec 3<&-';
      return {
        ...prelude(shell, x, steps, params, [...net, ...sandbox], docs),
        user: spec.owner,
        ...(spec.cgroupProcs ? { joinCgroup: spec.cgroupProcs } : {}),
      };
    }
    return prelude(shell, x, steps, params, [...(staged ? stageArgs(x, sources) : []), ...dropRoot(spec), ...net, ...sandbox], docs);
  }
  // No sandbox: as root, no network namespace of the host's (unshare) and the project's uid (setpriv).
  const unshare = spec.owner && x.unshare ? [x.unshare, '--net', '--'] : [];
  const cd = relative(spec.root, spec.cwd) || '.';
  const argv = [...unshare, ...dropRoot(spec), x.env, '-i', '-C', cd, ...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`), ...inner];
  return { ...prelude(shell, x, steps, [spec.cgroupProcs ?? '', '', ''], argv), cwd: spec.root };
}

/**
 * The privileged prelude, a POSIX shell script (dash where it will do): no rc file (root's ~/.bashrc is no input
 * of ours either), positional parameters only. A failed step exits 125, which no command's own failure is
 * mistaken for (and never 1, ripgrep's "no match"). `docs` are here-document lines that follow the script's line.
 */
function prelude(shell: string, x: Launchers, steps: string[], params: string[], argv: string[], docs: string[] = []): Launch {
  const script = [`${steps.join(' && ')} || exit 125`, ...docs, 'shift 3', 'exec "$@"'].join('\n');
  const flags = shell === x.bash ? ['--norc', '--noprofile', '-c'] : ['-c'];
  return { file: shell, args: [...flags, script, 'toolhost', ...params, ...argv], env: { ...PRELUDE_ENV }, cwd: '/' };
}

/**
 * The first folder on the way to `dir` (its ancestors; `dir` itself too with `self`, which must be readable as
 * well) that other users cannot pass through, or null.
 */
export function untraversable(dir: string, self = false): string | null {
  const target = resolve(dir);
  for (let p = self ? target : dirname(target); ; p = dirname(p)) {
    try {
      const need = p === target ? 0o005 : 0o001;
      if ((statSync(p).mode & need) !== need) return p;
    } catch {
      return p;
    }
    if (p === dirname(p)) return null;
  }
}

const staging = new Map<string, boolean>();
/** True when the project's uid could not reach one of `sources` by path (a data dir under /root, say). */
function needsStaging(sources: string[]): boolean {
  const key = sources.map((p) => dirname(p)).join('\0');
  let need = staging.get(key);
  if (need === undefined) {
    need = sources.some((p) => untraversable(p) !== null);
    staging.set(key, need);
  }
  return need;
}

/**
 * bwrap runs as the project's uid and finds its bind sources by path, so every folder above them must be
 * traversable by that uid. Where one is not (a data dir under /root), the prelude, still root, makes a private
 * mount namespace, puts a tmpfs on /run there and binds each source onto /run/s<i>; bwrap then binds them from
 * there to their usual paths. Nothing of this is seen outside the launch.
 */
function stageArgs(x: Launchers, sources: string[]): string[] {
  const script = [
    `${x.mount} -t tmpfs -o mode=0755,size=64k toolhost-stage /run`,
    'i=0',
    `for src in "\${@:1:${sources.length}}"; do { if [ -d "$src" ]; then mkdir /run/s$i; else : > /run/s$i; fi && ${x.mount} --bind -- "$src" /run/s$i; } || exit 125; i=$((i + 1)); done`,
    `shift ${sources.length}`,
    'exec "$@"',
  ].join(' && ');
  return [x.unshare!, '--mount', '--propagation', 'private', '--', x.bash, '--norc', '--noprofile', '-c', script, 'toolhost', ...sources];
}

/** setpriv to the project's uid with no groups, no capabilities (inheritable, bounding) and no_new_privs. */
function dropRoot(spec: LaunchSpec): string[] {
  const { owner } = spec;
  const setpriv = spec.plan.launchers.setpriv;
  if (!owner || !setpriv) return [];
  return [setpriv, `--reuid=${owner.uid}`, `--regid=${owner.gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--'];
}

/**
 * pasta runs the sandbox in a user and network namespace of its own with outbound IPv4 connections through
 * user-mode networking. No port is forwarded either way and the gateway is not mapped to the host (--no-map-gw),
 * so the host's loopback services (toolhost itself, Azurite, databases) are out of reach. pasta opens outbound
 * connections from the host, so every other address of the host (a docker bridge, a second interface) would lead
 * to its services too: inside, before bwrap drops the namespace's capabilities, each of them is made unreachable,
 * and so are link-local addresses (the cloud's instance metadata service hands out the machine's credentials to
 * whoever asks). IPv6 is left off (-4): link-local addresses of the host cannot be closed by a route there.
 */
function pastaArgs(x: Launchers): string[] {
  const pasta = [x.pasta!, '-4', '--config-net', '--quiet', '--foreground', '--no-map-gw', '-t', 'none', '-u', 'none', '-T', 'none', '-U', 'none', '--'];
  const routes = [METADATA_V4, ...hostAddresses().map((a) => `${a}/32`)].map((r) => `route add unreachable ${r}`).join('\n');
  return [...pasta, x.bash, '--norc', '--noprofile', '-c', `${x.ip} -batch - <<<"$1" || exit 125; shift; exec "$@"`, 'toolhost', routes];
}

/** The host's IPv4 addresses but loopback (looked up per launch: interfaces come and go). */
function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
}

/** Link-local IPv4, where instance metadata services answer (169.254.169.254). */
const METADATA_V4 = '169.254.0.0/16';

/** Folders of programs and libraries, shown read-only (a symlink such as /bin -> usr/bin is recreated as one). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/opt'];

let systemArgs: string[] | undefined;
/** The binds of {@link SYSTEM_DIRS}, looked at once per thread (a dozen lstat and readlink calls a launch otherwise). */
function systemDirArgs(): string[] {
  systemArgs ??= SYSTEM_DIRS.flatMap(showReadOnly);
  return systemArgs;
}

/** bind (or recreate as a symlink) a host path read-only at the same place. */
function showReadOnly(path: string): string[] {
  try {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return ['--symlink', readlinkSync(path), path];
    return ['--ro-bind', path, path];
  } catch {
    return [];
  }
}

/** bwrap's arguments; `from` holds the host paths of the project, HOME and extra read-only paths, in that order. */
function bwrapArgs(spec: LaunchSpec, uid: number, from: string[], staged: boolean): string[] {
  const { plan } = spec;
  // With network, pasta's user namespace is the sandbox's (uid 0 there, mapped to the project's uid, and every
  // capability dropped below); without, bwrap makes its own and forbids nested ones.
  const ns = plan.network
    ? ['--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try']
    : ['--unshare-all', '--unshare-user', '--disable-userns', '--uid', String(uid), '--gid', String(uid)];
  const args = [...ns, '--cap-drop', 'ALL', '--die-with-parent', '--hostname', 'toolhost'];
  args.push(...systemDirArgs());
  if (plan.etc && !staged) {
    args.push('--ro-bind', plan.etc, '/etc');
    for (const name of ETC_LIVE) args.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
  } else {
    for (const name of allowedEtc()) args.push(...showReadOnly(`/etc/${name}`));
  }
  args.push('--ro-bind-data', '5', '/etc/passwd', '--ro-bind-data', '6', '/etc/group');
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', '/var/tmp', '--tmpfs', '/run');
  for (const p of plan.readOnlyPaths) if (existsSync(p)) args.push('--ro-bind', p, p);
  const [root, ...rest] = from;
  args.push(spec.projectReadOnly ? '--ro-bind' : '--bind', root!, spec.root);
  if (spec.home) args.push('--bind', rest.shift()!, spec.home);
  for (const [i, p] of (spec.extraReadOnly ?? []).entries()) args.push('--ro-bind', rest[i]!, p);
  args.push('--remount-ro', '/', '--chdir', spec.cwd);
  args.push('--clearenv');
  for (const [k, v] of Object.entries(spec.env)) args.push('--setenv', k, v);
  return args;
}

function passwd(uid: number, home: string): string {
  const root = uid === 0 ? '' : 'root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n';
  return `${root}agent:x:${uid}:${uid}:agent:${home}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`;
}

let hardLimits: Map<string, number> | undefined;

/** This process's hard limits (children inherit them), from /proc/self/limits; Infinity for unlimited. */
function hardLimit(name: string): number {
  if (!hardLimits) {
    hardLimits = new Map();
    try {
      for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
        const m = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
        if (m) hardLimits.set(m[1]!.trim(), m[3] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[3]));
      }
    } catch {
      // not Linux: assume nothing is capped
    }
  }
  return hardLimits.get(name) ?? Number.POSITIVE_INFINITY;
}

/**
 * A `ulimit` that lowers one limit to `value` (in the limit's own unit, bytes or counts), never above the hard
 * limit the supervisor has (raising it needs privileges a container rarely has); 0 leaves it alone. Computed
 * here, not in the shell, so the prelude forks nothing.
 */
export function ulimit(flag: string, name: string, value: number, unit: number): string | undefined {
  if (value <= 0) return undefined;
  const v = Math.min(value, hardLimit(name));
  // Soft first, then hard (dash takes one of -S and -H at a time; a hard limit below the soft one is refused).
  return Number.isFinite(v) ? `ulimit -S ${flag} ${Math.ceil(v / unit)} && ulimit -H ${flag} ${Math.ceil(v / unit)}` : undefined;
}
