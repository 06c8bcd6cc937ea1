import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';
import { expectResponsive, FINAL_STATES, follow, LeakGuard, poll, processesNamed, skipBecause } from './helpers/jobs.js';
import { eventually, processesWith } from './helpers/procs.js';

const MAX_OUTPUT = 10_000;
const MAX_LOG = 1024 * 1024;
const PROCESS_LIMIT = 64;
const PYTHON = '/usr/bin/python3';

/** Bash that waits, inside the command, until a process whose argv[0] is `marker` runs. */
const running = (marker: string): string => `until pgrep -f '^${marker}' > /dev/null; do sleep 0.02; done`;

// Every adversarial command runs with and without the bubblewrap sandbox: without it, the process-group kill,
// the marker scan and the pids cgroup must do all the work.
for (const sandbox of ['none', 'bwrap'] as const) {
  describe(`commands: adversarial commands (sandbox ${sandbox})`, () => {
    let s: TestServer;
    let health: { containment: { sandbox: string; process_limit: string } };
    const guard = new LeakGuard(`adv-${sandbox}`);

    before(async function () {
      s = await startServer({
        commands: {
          sandbox: sandbox === 'bwrap' ? 'auto' : 'none',
          killGraceS: 1,
          maxOutputBytes: MAX_OUTPUT,
          maxLogBytes: MAX_LOG,
          limits: { processes: PROCESS_LIMIT, addressSpaceBytes: 512 * 1024 * 1024 },
        },
      });
      health = (await s.api('/health')).body;
      if (health.containment.sandbox !== sandbox) {
        skipBecause(this, `/health reports containment.sandbox "${health.containment.sandbox}", not "${sandbox}" (is bubblewrap installed and usable?)`);
      }
      expect((await s.putProject('adv', { 'a.txt': 'a\n' })).status).to.equal(201);
    });
    afterEach(async () => {
      if (!s) return;
      await guard.check();
      // The server still serves a plain file read after each of them.
      await expectResponsive(s, 'adv');
    });
    after(async () => s?.close({ force: true }));

    const exec = (body: Record<string, unknown>) => s.api('/execute', { project_id: 'adv', ...body });

    it('`yes`: cut by timeout_s, a bounded answer, and other requests served meanwhile', async () => {
      const marker = guard.marker('yes');
      const order: string[] = [];
      const flood = exec({ command: `exec -a ${marker} yes`, timeout_s: 1 }).then((r) => {
        order.push('yes answered');
        return r;
      });
      expect(await eventually(() => processesNamed(marker).length === 1)).to.equal(true);
      await expectResponsive(s, 'adv');
      order.push('read answered');
      const r = await flood;
      expect(order).to.deep.equal(['read answered', 'yes answered']);

      expect(r.status).to.equal(200);
      expect(r.body).to.include({ status: 'timed_out', timed_out: true });
      expect(r.body.exit_code).to.not.equal(0);
      expect(JSON.stringify(r.body).length).to.be.lessThan(2 * MAX_OUTPUT + 2000);
      expect(r.body.truncated.stdout).to.equal(true);
      expect(r.body.stdout.startsWith('y\ny\ny\n')).to.equal(true);
      expect(r.body.stdout.endsWith('y\n')).to.equal(true);
      // The log keeps commands.maxLogBytes and counts the rest.
      expect(r.body.stdout_offset).to.equal(MAX_LOG);
      expect(r.body.log_dropped_bytes.stdout).to.be.greaterThan(0);
      expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
    });

    it("`trap '' TERM; sleep 1000`: killed with KILL after the grace", async () => {
      const marker = guard.marker('trap');
      const r = await exec({ command: `trap '' TERM; exec -a ${marker} sleep 1000`, timeout_s: 1 });
      expect(r.body).to.include({ status: 'timed_out', timed_out: true });
      expect(r.body.exit_code).to.not.equal(0);
      // Without a sandbox the command itself ignores TERM, so only KILL can have ended it.
      if (sandbox === 'none') expect(r.body.signal).to.equal('SIGKILL');
      expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
    });

    it('a leftover that ignores TERM after the command exited is killed too', async () => {
      const marker = guard.marker('trapbg');
      const r = await exec({ command: `(trap '' TERM; exec -a ${marker} sleep 1000) & ${running(marker)}; echo started`, timeout_s: 30 });
      expect(r.body).to.include({ status: 'completed', exit_code: 0, stdout: 'started\n' });
      expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
    });

    it('`(sleep 1000 &)`: the orphaned grandchild does not survive the command', async () => {
      const marker = guard.marker('subshell');
      const r = await exec({ command: `(exec -a ${marker} sleep 1000 &); ${running(marker)}; echo started`, timeout_s: 30 });
      expect(r.body).to.include({ status: 'completed', exit_code: 0, stdout: 'started\n' });
      expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
    });

    it('`setsid sleep 1000 &`: a new session does not survive the command', async () => {
      const marker = guard.marker('setsid');
      const r = await exec({ command: `setsid bash -c 'exec -a ${marker} sleep 1000' & ${running(marker)}; echo started`, timeout_s: 30 });
      expect(r.body).to.include({ status: 'completed', exit_code: 0, stdout: 'started\n' });
      expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
    });

    it("a nohup'd daemon does not survive the command", async () => {
      const marker = guard.marker('nohup');
      const command = `nohup bash -c 'exec -a ${marker} sleep 1000' > /dev/null 2>&1 & ${running(marker)}; echo started`;
      const r = await exec({ command, timeout_s: 30 });
      expect(r.body).to.include({ status: 'completed', exit_code: 0, stdout: 'started\n' });
      expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
    });

    it('a daemon that leaves the session and scrubs its environment does not survive the command', async function () {
      if (sandbox === 'none' && health.containment.process_limit !== 'cgroup') {
        skipBecause(this, 'no pids cgroup and no sandbox: a documented gap of lib/process/process-tree.ts, nothing can find such a process');
      }
      const marker = guard.marker('scrubbed');
      const command = `setsid env -i bash -c 'exec -a ${marker} sleep 1000' < /dev/null > /dev/null 2>&1 & ${running(marker)}; echo started`;
      const r = await exec({ command, timeout_s: 30 });
      expect(r.body).to.include({ status: 'completed', exit_code: 0, stdout: 'started\n' });
      expect(await eventually(() => processesWith(marker).length === 0)).to.equal(true);
    });

    it('a fork bomb stays under the process limit, the server keeps serving, nothing is left after', async function () {
      if (health.containment.process_limit !== 'cgroup' && process.getuid?.() === 0) {
        skipBecause(this, 'no pids cgroup, and RLIMIT_NPROC does not bind root: a fork bomb would take the machine down');
      }
      const marker = guard.marker('bomb');
      const r = await exec({ command: `: ${marker}; bomb() { bomb | bomb & }; bomb; sleep 1000`, background: true, timeout_s: 2 });
      const id = r.body.job_id as string;
      // The bomb is running (many processes) when the server is asked for other work.
      expect(await eventually(() => processesWith(marker).length > 8)).to.equal(true);
      let most = 0;
      const sample = (): void => {
        most = Math.max(most, processesWith(marker).length);
      };
      sample();
      await expectResponsive(s, 'adv');
      sample();
      expect((await s.api('/health')).status).to.equal(200);
      sample();
      const during = await poll(s, id, { stdout: 0, stderr: 0 }, 0);
      sample();
      expect(during.status, 'the read was answered while the bomb ran').to.equal('running');
      // Every process of the command (wrappers included) counts against the limit.
      expect(most).to.be.at.most(PROCESS_LIMIT);

      const end = await follow(s, id);
      expect(FINAL_STATES).to.include(end.last.status);
      expect(end.last.status).to.not.equal('failed');
      expect(await eventually(() => processesWith(marker).length === 0, 10_000)).to.equal(true);
    });

    it('a memory hog fails under the address-space limit with a non-zero exit', async () => {
      // One 2 GiB allocation each, so the failure comes at once (a growing string would take seconds of paging).
      const perl = await exec({ command: `perl -e '$| = 1; print "start\\n"; my $x = "a" x $ARGV[0]; print "allocated\\n"' ${2 * 1024 ** 3}`, timeout_s: 30 });
      expect(perl.body).to.include({ status: 'completed', timed_out: false, stdout: 'start\n' });
      expect(perl.body.exit_code).to.not.equal(0);
      expect(perl.body.stderr).to.include('Out of memory');
      if (existsSync(PYTHON)) {
        const py = await exec({ command: `${PYTHON} -c "print('start', flush=True); b = bytearray(2 * 1024**3); print('allocated')"`, timeout_s: 30 });
        expect(py.body).to.include({ status: 'completed', exit_code: 1, stdout: 'start\n' });
        expect(py.body.stderr).to.include('MemoryError');
      }
      // Within the limit, the same program works: it is the limit that stopped it.
      const small = await exec({ command: `perl -e 'my $x = "a" x $ARGV[0]; print length($x), "\\n"' ${64 * 1024 ** 2}`, timeout_s: 30 });
      expect(small.body).to.include({ exit_code: 0, stdout: `${64 * 1024 ** 2}\n` });
    });

    it('prompts on stdin fail fast when stdin is null', async () => {
      const command = 'read -r a; echo "read:$?"; cat; echo "cat:$?"; head -c 1; echo "head:$?"';
      const r = await exec({ command, timeout_s: 30 });
      expect(r.body).to.include({ status: 'completed', timed_out: false, exit_code: 0, stdout: 'read:1\ncat:0\nhead:0\n' });
      if (existsSync(PYTHON)) {
        const py = await exec({ command: `${PYTHON} -c "input('name? ')"`, timeout_s: 30 });
        expect(py.body).to.include({ status: 'completed', timed_out: false, exit_code: 1 });
        expect(py.body.stderr).to.include('EOFError');
      }
    });

    it('invalid UTF-8 output: valid JSON with replacement characters, flagged in the answer and by GET /jobs/:id', async () => {
      const r = await exec({ command: "printf '\\xff\\xfe ok\\n'; printf 'bad \\xc3\\n' >&2" });
      expect(r.body, 'the answer is JSON').to.be.an('object');
      expect(r.body.invalid_utf8).to.deep.equal({ stdout: true, stderr: true });
      expect(r.body.exit_code).to.equal(0);
      expect(r.body.stdout).to.equal('\uFFFD\uFFFD ok\n');
      expect(r.body.stderr).to.equal('bad \uFFFD\n');
      const v = await poll(s, r.body.job_id, { stdout: 0, stderr: 0 }, 0);
      expect(v.invalid_utf8).to.deep.equal({ stdout: true, stderr: true });
      expect(v.stdout).to.equal('\uFFFD\uFFFD ok\n');
      expect(v.stdout_offset).to.equal(6);
    });
  });
}
