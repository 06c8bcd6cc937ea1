/**
 * The bounded spawn with real processes: a stop (deadline, abort, owner) kills the whole tree, TERM then KILL; the
 * run ends at the child's exit even while a grandchild holds its pipes, yet reads everything the child wrote; a
 * process that escaped the tree cannot hold the run open; the cgroup join comes before the child runs.
 */

import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { type BoundedProcess, type BoundedSpawnOptions, boundedSpawn } from '../lib/process/bounded-spawn.js';
import { JOB_MARKER_VAR } from '../lib/process/process-tree.js';
import { alive, eventually, processesWith } from './helpers/procs.js';

describe('process: bounded spawn', function () {
  this.timeout(20_000);
  let dir: string;
  /** In the command line of every process a test starts (`$1` of its script): the leak check looks for it. */
  let marker: string;
  let jobId: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'th-bounded-'));
    marker = `bounded-spawn-test-${randomBytes(6).toString('hex')}`;
    jobId = `job-${randomBytes(6).toString('hex')}`;
  });
  afterEach(async () => {
    const left = processesWith(marker);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    expect(left, 'processes of the test outlived it').to.deep.equal([]);
  });

  /** What a test may set besides the bounds: `$2` on of the script, and a cgroup.procs file to join (any file will do). */
  type RunOptions = Partial<BoundedSpawnOptions> & { args?: string[]; joinCgroup?: string };

  /** Runs `script` with bash, its `$1` the test's marker, marked with the test's job id; collects its stdout. */
  function run<Why extends string = never>(script: string, opts: RunOptions = {}) {
    const { args = [], joinCgroup, ...bounds } = opts;
    const proc = boundedSpawn<Why>({
      launch: {
        file: 'bash',
        args: ['-c', script, 'bash', marker, ...args],
        env: { PATH: process.env.PATH!, [JOB_MARKER_VAR]: jobId },
        cwd: dir,
        ...(joinCgroup ? { joinCgroup } : {}),
      },
      deadlineMs: 30_000,
      killGraceMs: 2000,
      jobId,
      ...bounds,
    });
    return { proc, out: collect(proc) };
  }

  it('kills the whole tree at the deadline, a grandchild holding the pipes included, and ends', async () => {
    const { proc, out } = run('(exec -a "$1" sleep 60) & echo "gc $!"; wait', { deadlineMs: 300 });
    const exit = await proc.done;
    expect(proc.stopped).to.equal('deadline');
    expect(exit).to.deep.equal({ code: null, signal: 'SIGTERM' });
    const gc = pidAfter('gc', out.text());
    expect(alive(gc), 'the grandchild survived').to.equal(false);
  });

  it('sends TERM first, then KILL to what survives the grace', async () => {
    // The grandchild says when TERM reaches it, and goes on: only KILL can end it.
    const script = `(trap 'echo got-term' TERM; while :; do sleep 0.05; done) & echo "gc $!"; echo ready; wait`;
    const { proc, out } = run<'enough'>(script, { killGraceMs: 500 });
    await eventually(() => out.text().includes('ready'));
    proc.stop('enough');
    await proc.done;
    expect(out.text()).to.include('got-term');
    expect(alive(pidAfter('gc', out.text())), 'the grandchild survived').to.equal(false);
  });

  it('kills the tree when its signal fires, and when it had fired before the spawn', async () => {
    const ac = new AbortController();
    const { proc, out } = run('(exec -a "$1" sleep 60) & echo "gc $!"; echo ready; wait', { signal: ac.signal });
    await eventually(() => out.text().includes('ready'));
    ac.abort();
    expect((await proc.done).signal).to.equal('SIGTERM');
    expect(proc.stopped).to.equal('abort');
    expect(alive(pidAfter('gc', out.text()))).to.equal(false);

    const early = run('echo started; exec -a "$1" sleep 60', { signal: AbortSignal.abort() });
    expect((await early.proc.done).code).to.equal(null);
    expect(early.proc.stopped).to.equal('abort');
  });

  it('ends at the exit of a child that leaves a grandchild holding its pipes, and kills that grandchild', async () => {
    // `close` would not come for 60 s: the run must end at `exit`.
    const { proc, out } = run('(exec -a "$1" sleep 60) & echo "gc $!"; exit 3');
    expect(await proc.done).to.deep.equal({ code: 3, signal: null });
    expect(proc.stopped).to.equal(null);
    expect(alive(pidAfter('gc', out.text())), 'the leftover grandchild survived').to.equal(false);
  });

  it('waits for the pipes to close after the exit: every byte the child wrote is read, however slowly', async () => {
    // A slow reader: when the child exits, much of what it wrote is still in the pipe.
    const { proc, out } = run('head -c 1000000 /dev/zero; printf end', { drainMs: 10_000 });
    proc.stdout.on('data', () => {
      proc.stdout.pause();
      setTimeout(() => proc.stdout.resume(), 50);
    });
    expect((await proc.done).code).to.equal(0);
    expect(out.bytes()).to.equal(1_000_003);
    expect(out.text().endsWith('end')).to.equal(true);
  });

  it('gives up on pipes held by a process that escaped the tree, after drainMs', async () => {
    // Its own session and no job marker: neither the group kill nor the marker scan finds it.
    const script = `setsid -f env -u ${JOB_MARKER_VAR} bash -c 'echo "esc $$"; exec -a "$0" sleep 60' "$1"; sleep 0.2; echo bye`;
    const { proc, out } = run(script, { drainMs: 300 });
    expect((await proc.done).code).to.equal(0);
    const escaped = pidAfter('esc', out.text());
    expect(alive(escaped), 'the escaped process was expected to live on (the test kills it)').to.equal(true);
    expect(proc.stdout.destroyed).to.equal(true);
    process.kill(escaped, 'SIGKILL');
  });

  it('keeps the first stop cause: a deadline that passes while the tree is being killed does not replace it', async () => {
    // TERM is ignored, so the child lives through the grace, and the deadline passes meanwhile.
    const { proc, out } = run<'enough'>(`trap '' TERM; echo ready; exec -a "$1" sleep 60`, { deadlineMs: 300, killGraceMs: 1500 });
    await eventually(() => out.text().includes('ready'));
    expect(proc.stop('enough')).to.equal(true);
    expect(proc.stop('enough')).to.equal(false);
    expect(await proc.done).to.deep.equal({ code: null, signal: 'SIGKILL' });
    expect(proc.stopped).to.equal('enough');
  });

  it('disarms the deadline and the signal at the exit: a run that ended on its own was not stopped', async () => {
    const ac = new AbortController();
    const { proc } = run('exit 0', { deadlineMs: 200, signal: ac.signal });
    await proc.done;
    ac.abort();
    await new Promise((r) => setTimeout(r, 400)); // past the deadline
    expect(proc.stopped).to.equal(null);
  });

  it('puts the child into its cgroup before it runs anything', async () => {
    const procs = join(dir, 'cgroup.procs');
    await writeFile(procs, '');
    const { proc, out } = run('read -r _ <&3 && exec 3<&- && echo "$(cat "$2") $$"', { args: [procs], joinCgroup: procs });
    expect((await proc.done).code).to.equal(0);
    const [joined, self] = out.text().trim().split(' ');
    expect(joined).to.equal(self);
  });

  it('never runs a child it could not put into its cgroup', async () => {
    const { proc, out } = run('read -r _ <&3 && echo ran', { joinCgroup: join(dir, 'no', 'cgroup.procs') });
    let failure: unknown;
    await proc.done.catch((err) => (failure = err));
    expect(String(failure)).to.match(/could not put the command into its cgroup/);
    expect(out.text()).not.to.include('ran');
  });

  it('hands passed fds over from fd 3 on, and refuses them with a cgroup join', async () => {
    const file = join(dir, 'target');
    await writeFile(file, 'the target\n');
    const fd = openSync(file, 'r');
    try {
      const { proc, out } = run('cat <&3', { passFds: [fd] });
      await proc.done;
      expect(out.text()).to.equal('the target\n');
      expect(() => run('true', { passFds: [fd], joinCgroup: join(dir, 'procs') })).to.throw(/fd 3/);
    } finally {
      closeSync(fd);
    }
  });

  it('rejects when the launch cannot be spawned', async () => {
    const proc = boundedSpawn({ launch: { file: join(dir, 'missing'), args: [], env: {}, cwd: dir }, deadlineMs: 1000, killGraceMs: 0, jobId });
    let failure: NodeJS.ErrnoException | undefined;
    await proc.done.catch((err) => (failure = err));
    expect(failure?.code).to.equal('ENOENT');
  });
});

/** Everything a process writes to stdout, as it arrives. */
function collect(proc: BoundedProcess<string>): { text(): string; bytes(): number } {
  const chunks: Buffer[] = [];
  proc.stdout.on('data', (c: Buffer) => chunks.push(c));
  return { text: () => Buffer.concat(chunks).toString('utf8'), bytes: () => chunks.reduce((n, c) => n + c.length, 0) };
}

/** The pid a script printed after `label`. */
function pidAfter(label: string, text: string): number {
  const m = new RegExp(`${label} (\\d+)`).exec(text);
  expect(m, `no "${label} <pid>" in ${JSON.stringify(text)}`).not.to.equal(null);
  return Number(m![1]);
}
