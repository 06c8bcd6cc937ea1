/**
 * Containment of commands against a hostile agent: request variables that shells, the loader and interpreters
 * honour never reach the launch machinery; a command holds no capability and is never the host's root; it sees
 * only system folders, an /etc without secrets, its project and its HOME; without bubblewrap it still runs as
 * its project's own uid and reads no other project, the data dir or the supervisor's environment; and unsafe
 * combinations are refused at start. Real commands, real bubblewrap where installed.
 */

import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { startSupervisor } from '../supervisor/supervisor.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { skipBecause } from './helpers/jobs.js';
import { eventually, processesWith } from './helpers/procs.js';

const isRoot = process.getuid?.() === 0;

/** A host path the hostile payloads try to create; never created by anything else. */
async function hostMarker(tag: string): Promise<{ path: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), `th-escape-${tag}-`));
  return { path: join(dir, 'pwned'), dir };
}

const exists = async (p: string): Promise<boolean> =>
  readFile(p).then(
    () => true,
    () => false,
  );

/**
 * Tries, as a request's env, every variable class that made a privileged prelude run agent code: shell startup
 * files, shell options with a trace prompt that runs a command substitution, the loader, a PATH full of fake
 * launchers. Each payload would create `marker` on the host if it ran outside the sandbox.
 */
async function envAttacks(s: TestServer, project: string, marker: string): Promise<void> {
  const payload = `#!/bin/sh\ntouch ${marker}\n`;
  await s.api('/file/write', { project_id: project, path: 'evil.sh', content: payload });
  const root = (await s.api('/execute', { project_id: project, command: 'pwd' })).body.stdout.trim();
  // Fake launchers: if the prelude looked programs up on the request's PATH, these would run as root.
  const fakes = ['bwrap', 'setpriv', 'env', 'unshare', 'pasta', 'bash', 'ulimit', 'sh'];
  await s.api('/execute', {
    project_id: project,
    command: `mkdir -p fake && for f in ${fakes.join(' ')}; do cp evil.sh fake/$f; done && chmod +x evil.sh fake/*`,
  });
  const attacks: Record<string, string>[] = [
    { BASH_ENV: `${root}/evil.sh` },
    { ENV: `${root}/evil.sh` },
    { SHELLOPTS: 'xtrace', PS4: `$(touch ${marker})` },
    { BASHOPTS: 'extdebug', SHELLOPTS: 'xtrace', PS4: `\`touch ${marker}\`` },
    { PATH: `${root}/fake:/usr/bin:/bin` },
    { LD_PRELOAD: `${root}/evil.sh`, LD_LIBRARY_PATH: `${root}/fake` },
    { GCONV_PATH: `${root}/fake`, LD_AUDIT: `${root}/evil.sh` },
    { PROMPT_COMMAND: `touch ${marker}`, IFS: '/', CDPATH: `${root}/fake` },
    { PYTHONSTARTUP: `${root}/evil.sh`, PERL5OPT: `-e'system("touch ${marker}")'`, NODE_OPTIONS: `--require ${root}/evil.sh` },
  ];
  for (const env of attacks) {
    const r = await s.api('/execute', { project_id: project, command: 'echo ran', env, timeout_s: 30 });
    expect(r.status, JSON.stringify(env)).to.equal(200);
    // The variables do reach the command itself: that is where they belong.
    const name = Object.keys(env)[0]!;
    // (PATH and IFS would change how the probe itself runs; SHELLOPTS and BASHOPTS are normalized by bash.)
    if (!['PATH', 'IFS', 'SHELLOPTS', 'BASHOPTS'].includes(name)) {
      const seen = await s.api('/execute', { project_id: project, command: `printf '%s' "$${name}"`, env: { [name]: env[name]! }, timeout_s: 30 });
      expect(seen.body.stdout, name).to.equal(env[name]);
    }
    expect(r.body.stderr, `the launch machinery was traced with ${JSON.stringify(env)}`).to.not.match(/ulimit|setpriv|bwrap|cgroup/);
    expect(await exists(marker), `${JSON.stringify(env)} ran agent code on the host`).to.equal(false);
  }
}

describe('commands: containment in the bubblewrap sandbox', () => {
  let s: TestServer;
  before(async function () {
    s = await startServer({ commands: { sandbox: 'auto' } });
    const c = (await s.api('/health')).body.containment;
    if (c.sandbox !== 'bwrap') skipBecause(this, `/health reports sandbox "${c.sandbox}" (bubblewrap missing or unusable): ${c.warnings.join(' ')}`);
    expect(c).to.include({ capabilities: 'none', network: 'off' });
    expect(c.user).to.equal(isRoot ? 'project-uid' : 'toolhost-uid');
    expect((await s.putProject('c1', { 'a.txt': 'a\n' })).status).to.equal(201);
    expect((await s.putProject('c2', { 'secret.txt': 'the other project\n' })).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  it('keeps the request env away from everything that runs before the sandbox', async () => {
    const m = await hostMarker('env');
    try {
      await envAttacks(s, 'c1', m.path);
    } finally {
      await rm(m.dir, { recursive: true, force: true });
    }
  });

  it('refuses env names a shell would read as functions or that are not names at all', async () => {
    for (const name of ['BASH_FUNC_echo%%', 'A=B', '1X', 'X Y', '']) {
      const r = await s.api('/execute', { project_id: 'c1', command: 'true', env: { [name]: '() { id; }' } });
      expect(r.status, name).to.equal(400);
      expect(r.body.error.message).to.match(/env/);
    }
  });

  it('holds no capability, is not root, and cannot unmount, remount, enter namespaces or make new ones', async () => {
    const r = await s.api('/execute', {
      project_id: 'c1',
      command: [
        "grep -E '^Cap(Eff|Prm|Bnd|Amb):' /proc/self/status | awk '{print $2}' | sort -u",
        'id -u',
        'umount -l /tmp 2>/dev/null && echo UMOUNTED',
        'mount -o remount,bind,rw / 2>/dev/null && echo REMOUNTED',
        'mount -t tmpfs x /mnt 2>/dev/null && echo MOUNTED',
        'unshare -U true 2>/dev/null && echo USERNS',
        'unshare -r true 2>/dev/null && echo ROOTNS',
        'nsenter --net=/proc/1/ns/net true 2>/dev/null && echo NSENTER',
        'chroot / true 2>/dev/null && echo CHROOT',
        'echo done',
      ].join('; '),
    });
    const lines = r.body.stdout.trim().split('\n');
    expect(lines[0]).to.equal('0000000000000000');
    expect(lines[1]).to.equal('1000');
    expect(lines.slice(2)).to.deep.equal(['done']);
  });

  it("runs as an unprivileged uid of the project's own on the host, and its files belong to it", async function () {
    if (!isRoot) this.skip(); // not root: commands keep toolhost's uid, which is no privilege to drop
    const tag = `th-uid-${process.pid}-${Date.now()}`;
    const started = s.api('/execute', { project_id: 'c1', command: `exec -a ${tag} sleep 3`, timeout_s: 30 });
    expect(await eventually(() => processesWith(tag).length > 0)).to.equal(true);
    const pid = processesWith(tag)[0]!;
    const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m
      .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))!
      .slice(1)
      .map(Number);
    const cap = /^CapEff:\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
    await started;
    expect(new Set(uids).size, 'real, effective, saved and fs uids agree').to.equal(1);
    expect(uids[0]).to.be.at.least(s.sup.config.commands.uidBase);
    expect(cap).to.equal('0000000000000000');
    await s.api('/execute', { project_id: 'c1', command: 'echo x > mine.txt && mkdir -p sub' });
    const root = join(s.dataDir, 'projects', 'c1');
    expect(statSync(join(root, 'mine.txt')).uid).to.equal(uids[0]);
    expect(statSync(root).uid).to.equal(uids[0]);
    expect(statSync(root).mode & 0o777).to.equal(0o700);
    // Another project has another uid.
    const other = await s.api('/execute', { project_id: 'c2', command: 'stat -c %u .' });
    expect(other.body.exit_code).to.equal(0);
    expect(statSync(join(s.dataDir, 'projects', 'c2')).uid).to.not.equal(uids[0]);
  });

  it('reaches a project whose data dir sits below a folder other users cannot pass through (a data dir under /root)', async function () {
    if (!isRoot) this.skip();
    const parent = await mkdtemp(join(tmpdir(), 'th-private-')); // mode 0700, as /root is
    const t = await startServer({ dataDir: join(parent, 'data'), commands: { sandbox: 'auto' } });
    try {
      if ((await t.api('/health')).body.containment.sandbox !== 'bwrap') return;
      await t.putProject('deep', { 'a.txt': 'a\n' });
      const r = await t.api('/execute', { project_id: 'deep', command: 'cat a.txt && echo made > b.txt && echo kept > ~/.k && cat ~/.k && id -u' });
      expect(r.body).to.include({ exit_code: 0, stdout: 'a\nkept\n1000\n' });
      expect((await t.api('/file/read', { project_id: 'deep', path: 'b.txt' })).body.content).to.equal('made\n');
      // The staging mounts live in the launch's own mount namespace only.
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).to.not.include('toolhost-stage');
    } finally {
      await t.close({ force: true });
      await rm(parent, { recursive: true, force: true });
    }
  });

  it("hands a working copy and HOME made before per-project uids (root's) over to the project on its first command", async function () {
    if (!isRoot) this.skip();
    expect((await s.putProject('legacy', { 'a.txt': 'a\n' })).status).to.equal(201);
    const root = join(s.dataDir, 'projects', 'legacy');
    const home = join(s.dataDir, 'homes', 'legacy');
    // As an older toolhost left them: everything root's.
    await promisify(execFile)('bash', [
      '-c',
      `chown -R 0:0 '${root}' && chmod 755 '${root}' && mkdir -p '${home}/.cache/tool' && echo old > '${home}/.cache/tool/state'`,
    ]);
    const r = await s.api('/execute', { project_id: 'legacy', command: 'echo new >> a.txt && echo more >> ~/.cache/tool/state && cat ~/.cache/tool/state' });
    expect(r.body).to.include({ exit_code: 0, stdout: 'old\nmore\n' });
    expect(statSync(root).mode & 0o777).to.equal(0o700);
  });

  it('sees no secrets of the host: no shadow, no /root or /home, no data dir, no toolhost config, no other project', async () => {
    const secretFile = `/etc/th-secret-${process.pid}.json`;
    await writeFile(secretFile, '{"token": "not for commands"}');
    try {
      const probes = [
        '/etc/shadow',
        '/etc/gshadow',
        '/etc/sudoers',
        '/etc/ssh',
        secretFile,
        '/root',
        '/home',
        '/var/lib',
        '/var/log',
        s.dataDir,
        join(s.dataDir, 'projects', 'c2'),
        join(s.dataDir, 'token'),
        '/sys/fs/cgroup',
      ];
      const r = await s.api('/execute', {
        project_id: 'c1',
        command: probes.map((p) => `if [ -e '${p}' ]; then echo "visible ${p}"; else echo "hidden ${p}"; fi`).join('; '),
      });
      const lines = r.body.stdout.trim().split('\n');
      // The data dir path itself exists inside (the project is mounted below it) but holds only that.
      const dataLine = `visible ${s.dataDir}`;
      expect(lines.filter((l: string) => l.startsWith('visible') && l !== dataLine)).to.deep.equal([]);
      const listing = await s.api('/execute', { project_id: 'c1', command: `ls -A '${s.dataDir}' '${s.dataDir}/projects'` });
      expect(listing.body.stdout).to.not.match(/c2|token|store|jobs|cache-index|uids/);
      // What toolchains need is there.
      const tools = await s.api('/execute', {
        project_id: 'c1',
        command: 'test -r /etc/ssl/certs/ca-certificates.crt -o -d /etc/ssl && getent passwd $(id -u) | cut -d: -f1 && ls /usr/bin/env >/dev/null && echo ok',
      });
      expect(tools.body.stdout).to.equal('agent\nok\n');
    } finally {
      await rm(secretFile, { force: true });
    }
  });
});

describe('commands: containment without a sandbox (commands.sandbox "none")', () => {
  let s: TestServer;
  before(async function () {
    if (!isRoot) this.skip(); // per-project uids need root; not root, "none" is documented as no isolation
    s = await startServer({ commands: { sandbox: 'none' } });
    expect((await s.putProject('n1', { 'a.txt': 'a\n' })).status).to.equal(201);
    expect((await s.putProject('n2', { 'secret.txt': 'other project secret\n' })).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  it('says so on /health, with what is unprotected', async () => {
    const c = (await s.api('/health')).body.containment;
    expect(c).to.include({ sandbox: 'none', user: 'project-uid', capabilities: 'none', network: 'off' });
    expect(c.warnings.join(' ')).to.match(/without a sandbox/);
  });

  it("runs as the project's uid with no capability, and reads no other project, the data dir or the supervisor", async () => {
    const other = join(s.dataDir, 'projects', 'n2', 'secret.txt');
    const r = await s.api('/execute', {
      project_id: 'n1',
      command: [
        'id -u',
        "grep '^CapEff:' /proc/self/status | awk '{print $2}'",
        `cat '${other}' 2>/dev/null || echo "other project unreadable"`,
        `ls '${s.dataDir}' 2>/dev/null || echo "data dir unlistable"`,
        `cat '${s.dataDir}/token' '${s.dataDir}/cache-index.json' 2>/dev/null || echo "data files unreadable"`,
        `ls '${s.dataDir}/jobs' '${s.dataDir}/store' '${s.dataDir}/tmp' '${s.dataDir}/uids' 2>/dev/null || echo "logs and store unreadable"`,
        `tr '\\0' '\\n' < /proc/${process.pid}/environ 2>/dev/null | head -1 || true`,
        'echo end',
      ].join('; '),
    });
    const lines = r.body.stdout.trim().split('\n');
    expect(Number(lines[0])).to.be.at.least(s.sup.config.commands.uidBase);
    expect(lines.slice(1)).to.deep.equal([
      '0000000000000000',
      'other project unreadable',
      'data dir unlistable',
      'data files unreadable',
      'logs and store unreadable',
      'end',
    ]);
    expect(r.body.stdout).to.not.include('other project secret');
  });

  it("enters the request's cwd as the project's uid: a cwd swapped for a symlink to a root-only folder leads nowhere", async () => {
    // A world-readable folder below a root-only one (as /root/x is): reachable only by a process already inside.
    const parent = await mkdtemp(join(tmpdir(), 'th-cwd-secret-'));
    const secret = join(parent, 'inner');
    await mkdir(secret, { mode: 0o755 });
    await writeFile(join(secret, 'loot.txt'), 'root-only content\n', { mode: 0o644 });
    const swapper = [
      'import ctypes, os, sys',
      'libc = ctypes.CDLL(None, use_errno=True)',
      `os.mkdir("sub"); os.symlink(${JSON.stringify(secret)}, ".sub.lnk")`,
      'while True: libc.renameat2(-100, b"sub", -100, b".sub.lnk", 2)',
    ].join('\n');
    await s.api('/file/write', { project_id: 'n1', path: 'swap.py', content: swapper });
    const bg = await s.api('/execute', { project_id: 'n1', command: 'exec python3 swap.py', background: true, timeout_s: 120, wait_s: 0 });
    try {
      const outcomes = new Map<string, number>();
      for (let i = 0; i < 60; i++) {
        const r = await s.api('/execute', { project_id: 'n1', cwd: 'sub', command: 'cat loot.txt 2>/dev/null; pwd -P' });
        const key =
          r.status !== 200
            ? `${r.status} ${r.body.error?.code}`
            : r.body.stdout.includes('root-only')
              ? 'LEAKED'
              : r.body.exit_code === 0
                ? 'ran'
                : `exit ${r.body.exit_code}`;
        outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        expect(r.body.stdout ?? '', 'a command read a root-only folder through a swapped cwd').to.not.include('root-only');
      }
      // Both states of the swap were met (else the test proved nothing).
      expect([...outcomes.keys()].length, JSON.stringify([...outcomes])).to.be.greaterThan(1);
    } finally {
      await s.api(`/jobs/${bg.body.job_id}`, undefined, { method: 'DELETE' });
      await rm(parent, { recursive: true, force: true });
    }
  });

  it("cannot reach toolhost's API (or anything) on loopback: the network is unshared", async () => {
    const port = new URL(s.url).port;
    const r = await s.api('/execute', {
      project_id: 'n1',
      command: `if timeout 5 bash -c 'echo > /dev/tcp/127.0.0.1/${port}' 2>/dev/null; then echo connected; else echo refused; fi`,
    });
    expect(r.body.stdout).to.equal('refused\n');
  });

  it('keeps the request env away from the launch machinery here too', async () => {
    const m = await hostMarker('none');
    try {
      await envAttacks(s, 'n1', m.path);
    } finally {
      await rm(m.dir, { recursive: true, force: true });
    }
  });
});

describe('commands: unsafe combinations are refused at start', () => {
  let bin: string;
  let savedPath: string | undefined;
  /** Runs `fn` with a PATH that lacks `missing` (and has the rest of what the launch uses). */
  async function without(missing: string[], fn: () => Promise<void>): Promise<void> {
    bin = await mkdtemp(join(tmpdir(), 'th-path-'));
    for (const tool of ['bash', 'env', 'setpriv', 'unshare', 'bwrap', 'pasta', 'sh']) {
      if (missing.includes(tool)) continue;
      for (const dir of ['/usr/bin', '/bin', '/usr/sbin']) {
        try {
          statSync(join(dir, tool));
          await symlink(join(dir, tool), join(bin, tool));
          break;
        } catch {
          // not in this folder
        }
      }
    }
    savedPath = process.env.PATH;
    process.env.PATH = bin;
    try {
      await fn();
    } finally {
      process.env.PATH = savedPath;
      await rm(bin, { recursive: true, force: true });
    }
  }
  const start = async (overrides: Record<string, unknown>) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'th-refuse-'));
    try {
      const config = loadConfig({ overrides: { port: 0, logLevel: 'silent', dataDir, ...overrides } });
      const sup = await startSupervisor(config);
      await sup.close({ force: true });
      return null;
    } catch (err) {
      return err as Error;
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  };

  it('binding beyond loopback with no sandbox to be had needs commands.sandbox "none" said explicitly', async () => {
    await without(['bwrap'], async () => {
      const refused = await start({ host: '0.0.0.0', commands: { sandbox: 'auto' } });
      expect(refused?.message).to.match(/without a sandbox.*install bubblewrap.*"none"/);
      expect(await start({ host: '0.0.0.0', commands: { sandbox: 'none' } })).to.equal(null);
    });
  });

  it('"bwrap" without bubblewrap is refused, naming the package', async () => {
    await without(['bwrap'], async () => {
      expect((await start({ commands: { sandbox: 'bwrap' } }))?.message).to.match(/bubblewrap/);
    });
  });

  it('commands.network without pasta, or without a sandbox, is refused with what to install', async () => {
    await without(['pasta'], async () => {
      expect((await start({ commands: { sandbox: 'auto', network: true } }))?.message).to.match(/apt-get install passt/);
    });
    expect((await start({ commands: { sandbox: 'none', network: true } }))?.message).to.match(/network.*bwrap/);
  });

  it("commands.readOnlyPaths that the commands' uids cannot reach are refused; reachable ones are shown read-only", async function () {
    if (!isRoot) this.skip();
    const hidden = await mkdtemp(join(tmpdir(), 'th-ro-hidden-')); // mkdtemp: mode 0700
    const shown = await mkdtemp(join(tmpdir(), 'th-ro-shown-'));
    try {
      await writeFile(join(hidden, 'tool'), 'x');
      const refused = await start({ commands: { sandbox: 'bwrap', readOnlyPaths: [join(hidden)] } });
      expect(refused?.message).to.match(/readOnlyPaths.*cannot reach/);
      await chmod(shown, 0o755);
      await writeFile(join(shown, 'tool'), 'toolchain\n');
      const s = await startServer({ commands: { sandbox: 'auto', readOnlyPaths: [shown] } });
      try {
        if ((await s.api('/health')).body.containment.sandbox !== 'bwrap') return;
        await s.putProject('ro', { 'a.txt': 'a\n' });
        const r = await s.api('/execute', { project_id: 'ro', command: `cat ${shown}/tool; touch ${shown}/new 2>/dev/null && echo WROTE; true` });
        expect(r.body.stdout).to.equal('toolchain\n');
      } finally {
        await s.close({ force: true });
      }
    } finally {
      await rm(hidden, { recursive: true, force: true });
      await rm(shown, { recursive: true, force: true });
    }
  });

  it('"auto" without bubblewrap on loopback starts, loudly: /health names what is unprotected', async () => {
    await without(['bwrap'], async () => {
      const s = await startServer({ commands: { sandbox: 'auto' } });
      try {
        const c = (await s.api('/health')).body.containment;
        expect(c.sandbox).to.equal('none');
        expect(c.warnings.join(' ')).to.match(/NO SANDBOX.*bubblewrap/);
      } finally {
        await s.close({ force: true });
      }
    });
  });
});
