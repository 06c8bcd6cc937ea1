/**
 * Containment as decided once at start: which sandbox really works on this machine (bubblewrap is probed with a
 * real launch, user namespaces and all), whether the network can be given safely, which uid commands run as, and
 * what is left unprotected. Refuses to start where the configuration asks for what cannot be had, or where an
 * unsandboxed service would face the network without the operator having said so. Also makes the data dir
 * private: commands (other uids) may pass through it to their own project and HOME, and read nothing else.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { cgroupBase } from './cgroup.js';
import type { Containment } from './containment-types.js';
import { ownedDir, runningAsRoot, uidsDir } from './owner.js';
import { launchArgv, PRELUDE_ENV, planOf, type SandboxPlan, untraversable, which } from './sandbox.js';
import { prepareEtc } from './sandbox-etc.js';

/** A start-time refusal: the message says what to install or set. */
export class ContainmentError extends Error {
  override readonly name = 'ContainmentError';
}

/** What {@link resolveContainment} decided. */
export interface ResolvedContainment {
  /** The config with `commands.sandbox` resolved to what works here ("auto" never reaches the pools). */
  config: Config;
  plan: SandboxPlan;
  report: Containment;
}

const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** Decides the containment of this machine's commands, or throws {@link ContainmentError}. */
export function resolveContainment(config: Config): ResolvedContainment {
  const c = config.commands;
  if (c.sandbox !== 'none' && which('bwrap')) prepareEtc(config.dataDir);
  const root = runningAsRoot();
  const warnings: string[] = [];
  let mode: 'bwrap' | 'none' = 'none';
  if (c.sandbox !== 'none') {
    const why = which('bwrap') ? probe(config, false) : 'bubblewrap is not installed (apt-get install bubblewrap)';
    if (why === null) mode = 'bwrap';
    else if (c.sandbox === 'bwrap') throw new ContainmentError(`commands.sandbox is "bwrap" but it cannot run here: ${why}`);
    else
      warnings.push(
        `NO SANDBOX: ${why}. Commands run on the host file system${root ? ' as per-project uids' : " as toolhost's own uid, and can read and change every project, the data dir and anything else this user can"}. Install bubblewrap and restart.`,
      );
  }
  if (mode === 'none' && !isLoopback(config.host) && c.sandbox !== 'none') {
    throw new ContainmentError(
      `host is ${config.host} (reachable from the network) but commands would run without a sandbox; install bubblewrap (apt-get install bubblewrap), or set commands.sandbox to "none" to accept that explicitly`,
    );
  }
  if (c.network) {
    if (mode !== 'bwrap')
      throw new ContainmentError(
        'commands.network is true, but network for commands needs the bwrap sandbox; install bubblewrap or set commands.network to false',
      );
    const why = !which('pasta')
      ? 'pasta is not installed (apt-get install passt)'
      : !which('ip')
        ? 'ip is not installed (apt-get install iproute2)'
        : probe(config, true);
    if (why !== null) {
      throw new ContainmentError(
        `commands.network is true but user-mode networking does not work here: ${why}; install passt (apt-get install passt), make /dev/net/tun usable by unprivileged users (mode 0666), or set commands.network to false`,
      );
    }
  }
  if (mode === 'none' && c.sandbox === 'none') warnings.push('commands.sandbox is "none": commands run on the host file system without a sandbox.');
  if (mode === 'none')
    warnings.push(
      root
        ? 'Without a sandbox, commands can read whatever their uid may read on the host (world-readable files).'
        : 'toolhost is not root: commands cannot be given uids of their own.',
    );
  if (root && mode === 'bwrap') {
    for (const p of c.readOnlyPaths) {
      const blocked = untraversable(join(p, '.'), true);
      if (blocked)
        throw new ContainmentError(
          `commands.readOnlyPaths: commands run as per-project uids and cannot reach ${p} (${blocked} is not readable and traversable by other users); install the toolchain elsewhere (e.g. /opt) or chmod o+rx ${blocked}`,
        );
    }
  }
  if (root && mode === 'none') {
    const blocked = untraversable(config.dataDir);
    if (blocked)
      warnings.push(
        `${blocked} is not traversable by other users: without a sandbox, commands (which run as per-project uids) start in their project but cannot reach it or their HOME by path; chmod o+x ${blocked} or move dataDir (TOOLHOST_DATA_DIR), e.g. to /var/lib/toolhost.`,
      );
  }
  const resolved = Object.freeze({ ...config, commands: Object.freeze({ ...c, sandbox: mode }) }) as Config;
  const plan = planOf(resolved.commands, config.dataDir);
  return {
    config: resolved,
    plan,
    report: {
      sandbox: mode,
      user: root ? 'project-uid' : 'toolhost-uid',
      capabilities: mode === 'bwrap' || root ? 'none' : 'inherited',
      network: plan.network ? 'pasta' : 'off',
      process_limit: cgroupBase() ? 'cgroup' : 'rlimit',
      read_only: mode === 'bwrap' ? readOnlyShown(plan) : [],
      warnings,
    },
  };
}

/** The host folders a sandboxed command sees read-only. */
function readOnlyShown(plan: SandboxPlan): string[] {
  return ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/opt', '/etc (system entries only)', ...plan.readOnlyPaths].filter((p) => {
    try {
      return p.startsWith('/etc') || lstatSync(p) !== undefined;
    } catch {
      return false;
    }
  });
}

/**
 * Launches `true` the way a command would be launched (as an unprivileged uid when root), in a scratch project;
 * null when it worked, else why not. Runs once at start, before the server listens.
 */
function probe(config: Config, network: boolean): string | null {
  const scratch = mkdtempSync(join(tmpdir(), 'toolhost-probe-'));
  try {
    const owner = runningAsRoot()
      ? { uid: config.commands.uidBase + config.commands.uidCount - 1, gid: config.commands.uidBase + config.commands.uidCount - 1 }
      : null;
    chmodSync(scratch, 0o711);
    const proj = join(scratch, 'p');
    const home = join(scratch, 'h');
    ownedDir(proj, owner);
    ownedDir(home, owner);
    const plan = planOf({ ...config.commands, sandbox: 'bwrap', network });
    const { file, args, env, user, cwd } = launchArgv({
      command: 'true',
      cwd: proj,
      root: proj,
      home,
      env: { PATH: PRELUDE_ENV.PATH!, HOME: home },
      limits: { addressSpaceBytes: 0, cpuSeconds: 0, processes: 0, openFiles: 0, fileSizeBytes: 0 },
      owner,
      plan,
    });
    const r = spawnSync(file, args, { env, cwd, encoding: 'utf8', timeout: 15_000, ...user });
    if (r.status === 0) return null;
    const said = (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`)
      .split('\n')
      .filter((l) => l && !/syslog/.test(l))
      .slice(0, 3)
      .join('; ');
    return `${network ? 'pasta' : 'bwrap'} failed: ${said}`;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Makes the data dir private (toolhost as root): the dir itself and projects/ and homes/ are 0711 (a uid can pass
 * through to its own project and HOME, which are 0700 and its own, but list nothing); everything else is 0700.
 */
export function prepareDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true });
  if (!runningAsRoot()) return;
  chmodSync(dataDir, 0o711);
  for (const d of ['projects', 'homes']) {
    mkdirSync(join(dataDir, d), { recursive: true });
    chmodSync(join(dataDir, d), 0o711);
  }
  for (const d of ['jobs', 'tmp', 'store', uidsDir(dataDir)]) {
    const p = join(dataDir, d.startsWith(dataDir) ? d.slice(dataDir.length) : d);
    mkdirSync(p, { recursive: true });
    chmodSync(p, 0o700);
  }
}
