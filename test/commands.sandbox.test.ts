import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';
import { expectResponsive, LeakGuard, skipBecause } from './helpers/jobs.js';
import { eventually, processesWith } from './helpers/procs.js';

const running = (marker: string): string => `until pgrep -f '^${marker}' > /dev/null; do sleep 0.02; done`;
const portOf = (url: string): number => Number(new URL(url).port);
const sh = async (command: string): Promise<string> => (await promisify(execFile)('bash', ['-c', command])).stdout.trim();

describe('commands: the bubblewrap sandbox', () => {
  let s: TestServer;
  const guard = new LeakGuard('sandbox');
  const exec = (command: string, project = 'sb') => s.api('/execute', { project_id: project, command, timeout_s: 30 });

  before(async function () {
    // No pids cgroup (processes: 0), so what dies with the job dies because of the pid namespace alone.
    s = await startServer({ commands: { sandbox: 'auto', limits: { processes: 0 } } });
    const health = (await s.api('/health')).body;
    if (health.containment.sandbox !== 'bwrap') {
      skipBecause(this, `/health reports containment.sandbox "${health.containment.sandbox}", not "bwrap" (is bubblewrap installed and usable?)`);
    }
    expect(health.containment.network).to.equal('off');
    expect((await s.putProject('sb', { 'a.txt': 'a\n' })).status).to.equal(201);
  });
  afterEach(async () => {
    if (!s) return;
    await guard.check();
    await expectResponsive(s, 'sb');
  });
  after(async () => s?.close({ force: true }));

  it('lets the command write its project and its HOME, and keeps HOME across commands', async () => {
    const r = await exec('echo hi > made.txt && mkdir -p d && echo x > d/y && echo kept > ~/.th-home-test && echo ok');
    expect(r.body).to.include({ exit_code: 0, stdout: 'ok\n' });
    const read = await s.api('/file/read', { project_id: 'sb', path: 'made.txt' });
    expect(read.body.content).to.equal('hi\n');
    expect((await s.api('/file/read', { project_id: 'sb', path: 'd/y' })).body.content).to.equal('x\n');
    expect((await exec('cat ~/.th-home-test')).body.stdout).to.equal('kept\n');
  });

  it('refuses writes outside the project: /etc, /usr, /var, /opt, /root', async () => {
    const name = guard.marker('write');
    const targets = ['/etc', '/usr', '/usr/local', '/var', '/opt', '/root'].map((d) => `${d}/${name}`);
    try {
      const command = targets.map((t) => `if touch ${t} 2>/dev/null; then echo "wrote ${t}"; else echo "refused ${t}"; fi`).join('; ');
      const r = await exec(command);
      expect(r.body.stdout.trim().split('\n')).to.deep.equal(targets.map((t) => `refused ${t}`));
      for (const t of targets) expect(existsSync(t), t).to.equal(false);
    } finally {
      for (const t of targets) await rm(t, { force: true });
    }
  });

  it('gives each command a private /tmp: not shared with the next command, nor with the host', async () => {
    const name = guard.marker('tmp');
    const hostFile = `/tmp/${name}-host`;
    await writeFile(hostFile, 'host\n');
    try {
      const first = await exec(`echo inside > /tmp/${name} && cat /tmp/${name} && (cat ${hostFile} 2>/dev/null || echo "host file hidden")`);
      expect(first.body).to.include({ exit_code: 0, stdout: 'inside\nhost file hidden\n' });
      expect(existsSync(`/tmp/${name}`), 'the file reached the host /tmp').to.equal(false);
      const second = await exec(`cat /tmp/${name} 2>/dev/null || echo gone`);
      expect(second.body.stdout).to.equal('gone\n');
    } finally {
      await rm(hostFile, { force: true });
      await rm(`/tmp/${name}`, { force: true });
    }
  });

  it('hides the data dir: other projects, their HOMEs, job logs and the store', async () => {
    const secret = `secret-${guard.marker('secret')}`;
    expect((await s.putProject('other', { 'secret.txt': secret })).status).to.equal(201);
    // A job of the other project leaves its output in a job log and a file in its HOME.
    const theirs = await exec(`cat secret.txt; cp secret.txt ~/secret-copy`, 'other');
    expect(theirs.body.stdout).to.equal(secret);

    const d = s.dataDir;
    const probes = [`${d}/projects/other`, `${d}/homes/other`, `${d}/jobs`, `${d}/store`];
    const command = [
      ...probes.map((p) => `if [ -e ${p} ]; then echo "visible ${p}"; else echo "hidden ${p}"; fi`),
      `ls -A ${d}/projects`,
      `grep -rlF "${secret}" ${d} /tmp 2>/dev/null | head -5 || true`,
    ].join('; ');
    const r = await exec(command);
    const lines = r.body.stdout.trim().split('\n');
    expect(lines.slice(0, probes.length)).to.deep.equal(probes.map((p) => `hidden ${p}`));
    expect(lines[probes.length]).to.equal('sb');
    expect(r.body.stdout).to.not.include(secret);
    expect(lines.slice(probes.length + 1), 'files holding the secret').to.deep.equal([]);
  });

  it("has no network by default; with commands.network: true it reaches out, never the host's own services", async function () {
    const connect = (host: string, port: number) =>
      `if timeout 5 bash -c 'echo > /dev/tcp/${host}/${port}' 2>/dev/null; then echo "connected ${host}"; else echo "refused ${host}"; fi`;
    const closed = await exec(connect('127.0.0.1', portOf(s.url)));
    expect(closed.body.stdout).to.equal('refused 127.0.0.1\n');

    let open: TestServer;
    try {
      open = await startServer({ commands: { sandbox: 'auto', network: true } });
    } catch (err) {
      // Refused at start is the documented answer where pasta cannot run; say why instead of passing silently.
      expect(String(err)).to.match(/passt|pasta|tun/);
      return skipBecause(this, `network for commands is not available here: ${String(err)}`);
    }
    try {
      expect((await open.api('/health')).body.containment).to.include({ sandbox: 'bwrap', network: 'pasta' });
      await open.putProject('net', { 'a.txt': 'a\n' });
      // Every address of this host, loopback or not, and its default gateways: toolhost's own API listens on
      // 127.0.0.1, a second listener on every interface stands in for Azurite or a local database.
      const wide = createServer((sock) => sock.end()).listen(0, '0.0.0.0');
      await once(wide, 'listening');
      let wide6: Server | undefined;
      try {
        const hosts = [
          '127.0.0.1',
          'localhost',
          ...Object.values(networkInterfaces())
            .flat()
            .filter((a) => a && a.family === 'IPv4')
            .map((a) => a!.address),
        ];
        const gateways = (await sh("ip -4 route | sed -n 's/^default via \\([0-9.]*\\).*/\\1/p'")).split('\n').filter(Boolean);
        // IPv6 too, link-local addresses with their interface (fe80::1%eth0): a listener on "::" answers there.
        const v6 = Object.entries(networkInterfaces()).flatMap(([name, as]) =>
          (as ?? []).filter((a) => a.family === 'IPv6' && !a.internal).map((a) => (a.address.startsWith('fe80') ? `${a.address}%${name}` : a.address)),
        );
        wide6 = createServer((sock) => sock.end()).listen(0, '::');
        await once(wide6, 'listening');
        const port6 = (wide6.address() as AddressInfo).port;
        const connect6 = (host: string) =>
          `if timeout 5 python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], ${port6}), 4)' '${host}' 2>/dev/null; then echo "connected ${host}"; else echo "refused ${host}"; fi`;
        const probes = [
          ...hosts.map((h) => connect(h, portOf(open.url))),
          ...[...hosts, ...gateways].map((h) => connect(h, (wide.address() as AddressInfo).port)),
          ...['::1', ...v6].map(connect6),
        ];
        const r = await open.api('/execute', { project_id: 'net', command: probes.join('; '), timeout_s: 120 });
        expect(r.body.stdout, 'the sandbox reached a service of the host').to.not.include('connected');
        expect(r.body.stdout.trim().split('\n')).to.have.length(probes.length);
      } finally {
        wide.close();
        wide6?.close();
      }
      // The instance metadata service (credentials of the machine) is unreachable at once, not merely silent.
      const imds = await open.api('/execute', { project_id: 'net', command: "timeout 5 bash -c 'echo > /dev/tcp/169.254.169.254/80' 2>&1; true" });
      expect(imds.body.stdout).to.match(/unreachable|no route to host/i);
      // Outbound: the package registry, when this machine itself reaches it (the only outside host there is here).
      const hostReaches = await sh('curl -s -o /dev/null -m 10 -w "%{http_code}" https://registry.npmjs.org/ || true');
      if (hostReaches === '200') {
        const out = await open.api('/execute', {
          project_id: 'net',
          command: 'curl -s -o /dev/null -m 20 -w "%{http_code}" https://registry.npmjs.org/',
          timeout_s: 60,
        });
        expect(out.body.stdout).to.equal('200');
      }
    } finally {
      await open.close({ force: true });
    }
  });

  it('kills background processes with the job through the pid namespace, even scrubbed and in a new session', async () => {
    const marker = guard.marker('pidns');
    const command = `setsid env -i bash -c 'exec -a ${marker} sleep 1000' < /dev/null > /dev/null 2>&1 & ${running(marker)}; echo started`;
    const r = await exec(command);
    expect(r.body).to.include({ exit_code: 0, stdout: 'started\n' });
    expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
  });

  it('cannot see or signal the supervisor: its own pid namespace', async () => {
    const r = await exec(
      `if kill -0 ${process.pid} 2>/dev/null; then echo "supervisor visible"; else echo "supervisor hidden"; fi; ls /proc | grep -c '^[0-9]'`,
    );
    const [seen, count] = r.body.stdout.trim().split('\n');
    expect(seen).to.equal('supervisor hidden');
    expect(Number(count)).to.be.lessThan(10);
  });
});
