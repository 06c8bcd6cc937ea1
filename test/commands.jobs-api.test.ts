import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { MessageChannel } from 'node:worker_threads';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { type ExecuteResult, executeRequest, executeTool } from '../handlers/execute.js';
import { ToolhostError } from '../lib/errors.js';
import { jobLogPaths, jobLogsDir } from '../lib/process/job-logs.js';
import { CommandJobs } from '../supervisor/command-jobs.js';
import { newJob } from '../supervisor/http/tools.js';
import { createLogger } from '../supervisor/logger.js';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';
import { FINAL_STATES, follow, LeakGuard, openSse, poll, processesNamed, type SseEvent } from './helpers/jobs.js';
import { eventually } from './helpers/procs.js';

/** Waits in bash until the project file `name` exists (written by the test through /file/write). */
const gate = (name: string): string => `until [ -e ${name} ]; do sleep 0.02; done`;

describe('commands: the jobs API', () => {
  let s: TestServer;
  const guard = new LeakGuard('jobs');
  const open = (name: string) => s.api('/file/write', { project_id: 'p1', path: name, content: '' });
  /** Gate files of the current test, each a fresh name so no test sees another's. */
  let gates: string[] = [];
  let gateCount = 0;
  const newGate = (): string => {
    const name = `gate-${++gateCount}`;
    gates.push(name);
    return name;
  };

  before(async () => {
    s = await startServer({ commands: { killGraceS: 1, maxOutputBytes: 1000, maxPerProject: 1 } });
    for (const id of ['p1', 'p2', 'q']) expect((await s.putProject(id, { 'a.txt': 'a\n' })).status).to.equal(201);
  });
  afterEach(async () => {
    // Open every gate so a command of a failed test ends on its own, then prove nothing is left.
    for (const g of gates) await open(g);
    gates = [];
    await guard.check();
  });
  after(async () => s?.close({ force: true }));

  it('yields at wait_s with status "running", then long-polls the rest in order across offsets', async () => {
    const [go1, go2] = [newGate(), newGate()];
    const command = `echo one; echo e1 >&2; ${gate(go1)}; echo two; ${gate(go2)}; echo three >&2; exit 3`;
    const r = await s.api('/execute', { project_id: 'p1', command, wait_s: 0.5, timeout_s: 30 });
    expect(r.status).to.equal(200);
    expect(r.body.status).to.be.oneOf(['queued', 'running']);
    expect(r.body.exit_code).to.equal(null);
    expect('one\n'.startsWith(r.body.stdout)).to.equal(true);
    const id = r.body.job_id as string;

    // Up to the first gate: the job is still running and its output so far is there.
    const first = await follow(s, id, { stdout: 0, stderr: 0 }, (f) => f.stdout === 'one\n' && f.stderr === 'e1\n');
    expect(first.last.status).to.equal('running');
    expect(first.last.stdout_offset).to.equal(4);
    expect(first.last.stderr_offset).to.equal(3);

    await open(go1);
    const second = await follow(s, id, { stdout: 4, stderr: 3 }, (f) => f.stdout === 'two\n');
    expect(second.last.status).to.equal('running');
    expect(second.last.stdout_offset).to.equal(8);
    expect(second.stderr).to.equal('');

    await open(go2);
    const rest = await follow(s, id, { stdout: 8, stderr: 3 });
    expect(rest.stdout).to.equal('');
    expect(rest.stderr).to.equal('three\n');
    expect(rest.last).to.include({ status: 'completed', exit_code: 3, stdout_offset: 8, stderr_offset: 9, timed_out: false, cancelled: false });

    // The whole log from offset 0 is the concatenation of the pieces.
    const all = await poll(s, id, { stdout: 0, stderr: 0 }, 0);
    expect(all.stdout).to.equal('one\ntwo\n');
    expect(all.stderr).to.equal('e1\nthree\n');
    expect(all.more_bytes).to.deep.equal({ stdout: 0, stderr: 0 });
  });

  it('streams stdout and stderr as Server-Sent Events while the command runs, then an end event', async () => {
    const go = newGate();
    const command = `echo a; echo b >&2; ${gate(go)}; echo c; printf 'd' >&2; exit 4`;
    const r = await s.api('/execute', { project_id: 'p1', command, background: true, timeout_s: 30 });
    const id = r.body.job_id as string;
    const sse = await openSse(s, `/jobs/${id}/stream`);
    try {
      expect(sse.status).to.equal(200);
      expect(sse.contentType).to.match(/^text\/event-stream/);
      const events: SseEvent[] = [];
      const text = (name: string) =>
        events
          .filter((e) => e.event === name)
          .map((e) => e.data.text as string)
          .join('');
      // Live: both lines arrive while the command is held at its gate.
      while (text('stdout') !== 'a\n' || text('stderr') !== 'b\n') {
        const e = await sse.next();
        expect(e, 'stream ended early').to.not.equal(null);
        expect(e!.event).to.be.oneOf(['stdout', 'stderr']);
        events.push(e!);
      }
      expect((await s.api(`/jobs/${id}?wait_s=0`)).body.status).to.equal('running');
      await open(go);
      for (;;) {
        const e = await sse.next();
        expect(e, 'stream ended without an end event').to.not.equal(null);
        events.push(e!);
        if (e!.event === 'end') break;
      }
      expect(await sse.next(), 'the server closes the stream after end').to.equal(null);

      expect(text('stdout')).to.equal('a\nc\n');
      expect(text('stderr')).to.equal('b\nd');
      // Each stream's events continue exactly where the previous one stopped.
      for (const name of ['stdout', 'stderr']) {
        let at = 0;
        for (const e of events.filter((x) => x.event === name)) {
          expect(e.data.offset).to.equal(at);
          expect(e.data.next_offset).to.equal(at + Buffer.byteLength(e.data.text));
          at = e.data.next_offset;
        }
      }
      const end = events.at(-1)!;
      expect(end.data).to.include({ status: 'completed', exit_code: 4 });
      expect(events.filter((e) => e.event === 'end')).to.have.length(1);
    } finally {
      await sse.close();
    }
  });

  it('streams a finished job from the given offsets: only the later output, then end', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'echo first; echo second; echo err >&2; exit 1' });
    expect(r.body.status).to.equal('completed');
    const sse = await openSse(s, `/jobs/${r.body.job_id}/stream?stdout_offset=6&stderr_offset=4`);
    try {
      const events: SseEvent[] = [];
      for (let e = await sse.next(); e; e = await sse.next()) events.push(e);
      expect(events.map((e) => e.event)).to.deep.equal(['stdout', 'end']);
      expect(events[0]!.data).to.deep.equal({ text: 'second\n', offset: 6, next_offset: 13 });
      expect(events[1]!.data).to.include({ status: 'completed', exit_code: 1 });
    } finally {
      await sse.close();
    }
  });

  it('feeds a read prompt through POST /jobs/:id/input, then closes stdin with eof', async () => {
    const command = 'read -r name; echo "hello $name"; read -r x; echo "second:$x"; cat; echo "|eof-seen"';
    const r = await s.api('/execute', { project_id: 'p1', command, stdin: 'pipe', wait_s: 0, timeout_s: 30 });
    const id = r.body.job_id as string;
    expect(r.body.stdin).to.equal('pipe');

    const sent = await s.api(`/jobs/${id}/input`, { data: 'world\n' });
    expect(sent.status).to.equal(200);
    expect(sent.body).to.deep.equal({ job_id: id, bytes: 6, eof: false });
    const hello = await follow(s, id, { stdout: 0, stderr: 0 }, (f) => f.stdout === 'hello world\n');
    // The command now waits on its second read: still running, the input did not end it.
    expect(hello.last.status).to.equal('running');

    const last = await s.api(`/jobs/${id}/input`, { data: 'bye\nrest', eof: true });
    expect(last.body).to.deep.equal({ job_id: id, bytes: 8, eof: true });
    const done = await follow(s, id, { stdout: hello.last.stdout_offset, stderr: 0 });
    expect(hello.stdout + done.stdout).to.equal('hello world\nsecond:bye\nrest|eof-seen\n');
    expect(done.last).to.include({ status: 'completed', exit_code: 0 });
  });

  it('DELETE cancels a running command: status "cancelled", the output so far, no process left', async () => {
    const marker = guard.marker('cancel');
    const r = await s.api('/execute', { project_id: 'p1', command: `echo started; exec -a ${marker} sleep 1000`, stdin: 'pipe', wait_s: 0 });
    const id = r.body.job_id as string;
    await follow(s, id, { stdout: 0, stderr: 0 }, (f) => f.stdout === 'started\n');
    expect(await eventually(() => processesNamed(marker).length === 1)).to.equal(true);

    const del = await s.api(`/jobs/${id}`, undefined, { method: 'DELETE' });
    expect(del.status).to.equal(200);
    expect(del.body).to.include({ job_id: id, status: 'cancelled', cancelled: true, stdout: 'started\n', timed_out: false });
    expect(del.body.finished_at).to.be.a('string');
    expect(del.body.exit_code).to.not.equal(0);
    expect(await eventually(() => processesNamed(marker).length === 0)).to.equal(true);

    expect((await s.api(`/jobs/${id}?wait_s=0`)).body.status).to.equal('cancelled');
    // A second DELETE is harmless and says the same.
    const again = await s.api(`/jobs/${id}`, undefined, { method: 'DELETE' });
    expect(again.status).to.equal(200);
    expect(again.body.status).to.equal('cancelled');
    // Its stdin is gone with it.
    const input = await s.api(`/jobs/${id}/input`, { data: 'late\n' });
    expect(input.status).to.equal(409);
    expect(input.body.error.code).to.equal('job_finished');
  });

  it('DELETE cancels a queued command before it starts: it never runs', async () => {
    // maxPerProject is 1: the second command of project q waits behind the first.
    const marker = guard.marker('hold');
    const holder = await s.api('/execute', { project_id: 'q', command: `exec -a ${marker} sleep 1000`, background: true });
    expect(await eventually(() => processesNamed(marker).length === 1)).to.equal(true);
    const queued = await s.api('/execute', { project_id: 'q', command: 'echo ran > ran.txt', background: true });
    expect(queued.body.status).to.equal('queued');

    const del = await s.api(`/jobs/${queued.body.job_id}`, undefined, { method: 'DELETE' });
    expect(del.status).to.equal(200);
    expect(del.body).to.include({ status: 'cancelled', started_at: null, exit_code: null, stdout: '' });

    const held = await s.api(`/jobs/${holder.body.job_id}`, undefined, { method: 'DELETE' });
    expect(held.body.status).to.equal('cancelled');
    // The slot is free again, and the cancelled command never ran.
    const after = await s.api('/execute', { project_id: 'q', command: 'ls' });
    expect(after.body.stdout).to.equal('a.txt\n');
    expect((await s.api(`/jobs/${queued.body.job_id}?wait_s=0`)).body.status).to.equal('cancelled');
  });

  it('delivers input sent while the command is still queued once it starts', async () => {
    const marker = guard.marker('hold');
    const holder = await s.api('/execute', { project_id: 'q', command: `exec -a ${marker} sleep 1000`, background: true });
    expect(await eventually(() => processesNamed(marker).length === 1)).to.equal(true);
    const queued = await s.api('/execute', { project_id: 'q', command: 'read -r x; echo "got:$x"', stdin: 'pipe', background: true });
    expect(queued.body.status).to.equal('queued');
    const sent = await s.api(`/jobs/${queued.body.job_id}/input`, { data: 'early\n' });
    expect(sent.status).to.equal(200);
    await s.api(`/jobs/${holder.body.job_id}`, undefined, { method: 'DELETE' });
    const done = await follow(s, queued.body.job_id);
    expect(done.stdout).to.equal('got:early\n');
    expect(done.last).to.include({ status: 'completed', exit_code: 0 });
  });

  it('passes large and multi-byte input intact', async () => {
    const r = await s.api('/execute', { project_id: 'p1', command: 'wc -c', stdin: 'pipe', wait_s: 0, timeout_s: 30 });
    const data = 'x'.repeat(300_000) + 'é€'.repeat(1000);
    const sent = await s.api(`/jobs/${r.body.job_id}/input`, { data, eof: true });
    expect(sent.body.bytes).to.equal(300_000 + 5000);
    const done = await follow(s, r.body.job_id);
    expect(done.stdout.trim()).to.equal('305000');
  });

  it('a client that leaves the stream or hangs up on /execute does not stop the command', async () => {
    const marker = guard.marker('hangup');
    const go = newGate();
    const ctrl = new AbortController();
    const hungUp = fetch(`${s.url}/execute`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.token}` },
      body: JSON.stringify({ project_id: 'p1', command: `: ${marker}; echo a; ${gate(go)}; echo b`, timeout_s: 30 }),
      signal: ctrl.signal,
    }).catch((err: unknown) => err);
    // Find the job by its command in the list, wait for its first line, then hang up.
    let id: string | undefined;
    expect(
      await eventuallyAsync(async () => {
        const jobs = (await s.api('/jobs?project_id=p1')).body.jobs as { job_id: string; command: string }[];
        id = jobs.find((j) => j.command.includes(marker))?.job_id;
        return id !== undefined;
      }),
    ).to.equal(true);
    await follow(s, id!, { stdout: 0, stderr: 0 }, (f) => f.stdout === 'a\n');
    ctrl.abort();
    expect(await hungUp).to.be.instanceOf(Error);

    const sse = await openSse(s, `/jobs/${id}/stream`);
    expect((await sse.next())!.data.text).to.equal('a\n');
    await sse.close();

    expect((await s.api(`/jobs/${id}?wait_s=0`)).body.status).to.equal('running');
    await open(go);
    const done = await follow(s, id!);
    expect(done.stdout).to.equal('a\nb\n');
    expect(done.last).to.include({ status: 'completed', exit_code: 0 });
  });

  it('lists a background job under its project, newest first, and cancels it later', async () => {
    const marker = guard.marker('bg');
    const older = await s.api('/execute', { project_id: 'p1', command: 'echo older' });
    const r = await s.api('/execute', { project_id: 'p1', command: `exec -a ${marker} sleep 1000`, background: true });
    expect(r.status).to.equal(200);
    expect(r.body.status).to.be.oneOf(['queued', 'running']);
    const id = r.body.job_id as string;
    expect(await eventually(() => processesNamed(marker).length === 1)).to.equal(true);

    const list = await s.api('/jobs?project_id=p1');
    expect(list.status).to.equal(200);
    const ids = list.body.jobs.map((j: { job_id: string }) => j.job_id);
    expect(ids[0]).to.equal(id);
    expect(ids.indexOf(older.body.job_id)).to.be.greaterThan(0);
    expect(list.body.jobs[0]).to.include({ job_id: id, project_id: 'p1', status: 'running', exit_code: null, finished_at: null });
    expect(list.body.jobs[0].command).to.include(marker);

    const other = await s.api('/jobs?project_id=p2');
    expect(other.body.jobs.map((j: { job_id: string }) => j.job_id)).to.not.include(id);
    const all = await s.api('/jobs');
    expect(all.body.jobs.map((j: { job_id: string }) => j.job_id)).to.include(id);

    const del = await s.api(`/jobs/${id}`, undefined, { method: 'DELETE' });
    expect(del.body.status).to.equal('cancelled');
    expect(await eventually(() => processesNamed(marker).length === 0)).to.equal(true);
    const listed = (await s.api('/jobs?project_id=p1')).body.jobs.find((j: { job_id: string }) => j.job_id === id);
    expect(listed.status).to.equal('cancelled');
    expect(listed.finished_at).to.be.a('string');
  });

  describe('error paths', () => {
    let finishedNoPipe: string;
    let finishedPipe: string;
    before(async () => {
      finishedNoPipe = (await s.api('/execute', { project_id: 'p1', command: 'echo x' })).body.job_id;
      finishedPipe = (await s.api('/execute', { project_id: 'p1', command: 'cat', stdin: 'pipe', wait_s: 0 })).body.job_id;
      await s.api(`/jobs/${finishedPipe}/input`, { data: 'y', eof: true });
      expect((await follow(s, finishedPipe)).last.status).to.equal('completed');
    });

    it('answers 404 job_not_found for an unknown job id on every route', async () => {
      const ghost = '00000000-0000-4000-8000-000000000000';
      const answers = [
        await s.api(`/jobs/${ghost}?wait_s=0`),
        await s.api(`/jobs/${ghost}/stream`),
        await s.api(`/jobs/${ghost}/input`, { data: 'x' }),
        await s.api(`/jobs/${ghost}`, undefined, { method: 'DELETE' }),
        await s.api('/jobs/not-a-job-id?wait_s=0'),
      ];
      for (const a of answers) {
        expect(a.status, JSON.stringify(a.body)).to.equal(404);
        expect(a.body.error.code).to.equal('job_not_found');
      }
    });

    it('answers 409 stdin_not_piped for input to a job started without stdin: "pipe"', async () => {
      const r = await s.api(`/jobs/${finishedNoPipe}/input`, { data: 'x\n' });
      expect(r.status).to.equal(409);
      expect(r.body.error.code).to.equal('stdin_not_piped');
      expect(r.body.error.message).to.include('stdin: "pipe"');
    });

    it('answers 409 job_finished for input to a job that has ended', async () => {
      const r = await s.api(`/jobs/${finishedPipe}/input`, { data: 'x\n' });
      expect(r.status).to.equal(409);
      expect(r.body.error.code).to.equal('job_finished');
    });

    it('answers 400 for unknown or bad query fields and bad input bodies', async () => {
      const unknown = [
        await s.api(`/jobs/${finishedNoPipe}?wait_s=0&offset=3`),
        await s.api('/jobs?project=p1'),
        await s.api(`/jobs/${finishedNoPipe}/stream?wait_s=1`),
        await s.api(`/jobs/${finishedPipe}/input`, { data: 'x', close: true }),
      ];
      for (const a of unknown) {
        expect(a.status, JSON.stringify(a.body)).to.equal(400);
        expect(a.body.error.code).to.equal('unknown_field');
      }
      const bad = [
        await s.api(`/jobs/${finishedNoPipe}?wait_s=abc`),
        await s.api(`/jobs/${finishedNoPipe}?wait_s=191`),
        await s.api(`/jobs/${finishedNoPipe}?stdout_offset=-1`),
        await s.api('/jobs?project_id=../etc'),
        await s.api(`/jobs/${finishedPipe}/input`, { eof: true }),
      ];
      for (const a of bad) {
        expect(a.status, JSON.stringify(a.body)).to.equal(400);
        expect(a.body.error.code).to.equal('bad_request');
      }
    });
  });

  describe('full output', () => {
    it('answers with head, tail and the omitted count, while the log pages back the whole output exactly', async () => {
      const expectedOut = Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('');
      const expectedErr = Array.from({ length: 3000 }, (_, i) => `e${i + 1}\n`).join('');
      const r = await s.api('/execute', { project_id: 'p1', command: 'seq 1 20000; seq -f "e%g" 1 3000 >&2', max_output_chars: 1000 });
      expect(r.body.status).to.equal('completed');
      expect(r.body.truncated).to.deep.equal({ stdout: true, stderr: true });
      expect(r.body.stdout_offset).to.equal(expectedOut.length);
      expect(r.body.stderr_offset).to.equal(expectedErr.length);
      expect(r.body.log_dropped_bytes).to.deep.equal({ stdout: 0, stderr: 0 });
      for (const s_ of ['stdout', 'stderr'] as const) {
        const expected = s_ === 'stdout' ? expectedOut : expectedErr;
        const omitted = r.body.omitted_bytes[s_] as number;
        const m = /^([\s\S]*)\[\.\.\. ([\d,]+) lines \([^)]*\) of \w+ omitted; [^\n]*\n([\s\S]*)$/.exec(r.body[s_]);
        expect(m, r.body[s_]).to.not.equal(null);
        const [, head, n, tail] = m!;
        expect(Number(n!.replace(/,/g, ''))).to.equal(r.body.omitted_lines[s_]);
        expect(expected.startsWith(head!)).to.equal(true);
        expect(expected.endsWith(tail!)).to.equal(true);
        expect(r.body[s_].length).to.be.at.most(1000);
        expect(head!.length + omitted + tail!.length).to.equal(expected.length);
        expect(r.body.omitted_offset[s_]).to.equal(head!.length);
      }

      // Page through both logs from 0 with the default budget: every page within it, the concatenation exact.
      const paged = await follow(s, r.body.job_id, { stdout: 0, stderr: 0 }, undefined, 0);
      expect(paged.stdout).to.equal(expectedOut);
      expect(paged.stderr).to.equal(expectedErr);
      expect(paged.pages.length).to.be.greaterThan(3);
      for (const p of paged.pages) {
        expect(p.stdout.length + p.stderr.length).to.be.at.most(30000);
        expect(p.truncated).to.deep.equal({ stdout: false, stderr: false });
      }
    });

    it('never splits a multi-byte character between pages', async () => {
      const expected = Array.from({ length: 2000 }, (_, i) => `日本${i + 1}€\n`).join('');
      const r = await s.api('/execute', { project_id: 'p1', command: `awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "日本%d€\\n", i }'` });
      expect(r.body.exit_code).to.equal(0);
      expect(r.body.stdout_offset).to.equal(Buffer.byteLength(expected));
      expect(r.body.stdout).to.not.include('\uFFFD');
      const paged = await follow(s, r.body.job_id, { stdout: 0, stderr: 0 }, undefined, 0);
      expect(paged.stdout).to.equal(expected);
      for (const p of paged.pages) {
        expect(p.stdout).to.not.include('\uFFFD');
        expect(p.invalid_utf8.stdout).to.equal(false);
      }
    });
  });

  describe('a character split across two writes', () => {
    it('stays whole in the wait_s answer and the pages after it', async () => {
      // 日 is E6 97 A5: the command writes two bytes, waits, then the third.
      const go = newGate();
      const command = `printf '\\xe6\\x97'; ${gate(go)}; printf '\\xa5\\n'`;
      const r = await s.api('/execute', { project_id: 'p1', command, wait_s: 1.5, timeout_s: 30 });
      expect(r.body.status).to.be.oneOf(['queued', 'running']);
      expect(r.body.stdout, 'the running answer shows a broken character').to.not.include('\uFFFD');
      await open(go);
      const rest = await follow(s, r.body.job_id, { stdout: r.body.stdout_offset, stderr: r.body.stderr_offset });
      expect(r.body.stdout + rest.stdout).to.equal('日\n');
    });

    it('does not make a long-poll answer early with nothing while it is incomplete', async () => {
      const go = newGate();
      const command = `printf 'x\\xe6\\x97'; ${gate(go)}; printf '\\xa5\\n'`;
      const r = await s.api('/execute', { project_id: 'p1', command, background: true, timeout_s: 30 });
      const id = r.body.job_id as string;
      // Wait until all three bytes are on disk; the page holds back the incomplete character.
      expect(
        await eventuallyAsync(async () => {
          const v = await poll(s, id, { stdout: 0, stderr: 0 }, 0);
          return v.stdout_offset + v.more_bytes.stdout === 3;
        }),
      ).to.equal(true);
      const first = await poll(s, id, { stdout: 0, stderr: 0 }, 0);
      expect(first.stdout).to.equal('x');
      expect(first.stdout_offset).to.equal(1);

      // Asked to wait for output past offset 1, the server must not answer before the character is complete.
      const longPoll = poll(s, id, { stdout: 1, stderr: 0 }, 30);
      const opened = new Promise((resolve) => setTimeout(resolve, 300)).then(() => open(go));
      const answer = await longPoll;
      await opened;
      const progressed = answer.stdout.length > 0 || FINAL_STATES.includes(answer.status);
      expect(
        progressed,
        `answered with nothing new: ${JSON.stringify({ stdout: answer.stdout, status: answer.status, more_bytes: answer.more_bytes })}`,
      ).to.equal(true);
      const rest = await follow(s, id, { stdout: 1, stderr: 0 });
      expect(rest.stdout).to.equal('日\n');
    });
  });
});

/** eventually() for an async check. */
async function eventuallyAsync(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

describe('commands: job retention (the registry, driven directly)', () => {
  // jobs.retentionMinutes is at least one minute, so the sweep is driven with a clock of our own.
  let registry: CommandJobs;
  let dataDir: string;
  const ports: MessageChannel[] = [];

  before(async () => {
    dataDir = await tempDir('toolhost-retention-');
    const config = loadConfig({ overrides: { dataDir, logLevel: 'silent', jobs: { retentionMinutes: 1, maxLogDiskBytes: 100 } } });
    registry = new CommandJobs(config, createLogger('silent'));
    await registry.start();
  });
  after(async () => {
    await registry?.close();
    await rm(dataDir, { recursive: true, force: true });
    for (const c of ports) {
      c.port1.close();
      c.port2.close();
    }
  });

  /** A command job that ran to the end with `stdout`, as the pump would report it. */
  async function finishedJob(stdout: string): Promise<string> {
    const req = executeRequest.parse({ project_id: 'p', command: 'echo' });
    const job = newJob(executeTool, 'p', req);
    registry.create(job, req);
    const channel = new MessageChannel();
    ports.push(channel);
    registry.started(job.id, channel.port1);
    const paths = jobLogPaths(dataDir, job.id);
    await mkdir(jobLogsDir(dataDir), { recursive: true });
    await writeFile(paths.stdout, stdout);
    await writeFile(paths.stderr, '');
    const size = Buffer.byteLength(stdout);
    const value: ExecuteResult = {
      job_id: job.id,
      exit_code: 0,
      signal: null,
      stdout,
      stderr: '',
      timed_out: false,
      cancelled: false,
      duration_ms: 1,
      truncated: { stdout: false, stderr: false },
      omitted_bytes: { stdout: 0, stderr: 0 },
      omitted_lines: { stdout: 0, stderr: 0 },
      omitted_offset: { stdout: null, stderr: null },
      stdout_offset: size,
      stderr_offset: 0,
      log_dropped_bytes: { stdout: 0, stderr: 0 },
      invalid_utf8: { stdout: false, stderr: false },
    };
    registry.finished(job.id, { ok: true, value });
    return job.id;
  }

  it('keeps a finished job for jobs.retentionMinutes, then forgets it and removes its logs', async () => {
    const id = await finishedJob('kept\n');
    await registry.sweep(Date.now() + 30_000);
    expect(registry.status(id)).to.equal('completed');
    expect((await registry.view(id, 'page')).stdout).to.equal('kept\n');

    await registry.sweep(Date.now() + 61_000);
    expect(() => registry.status(id))
      .to.throw(ToolhostError)
      .with.property('code', 'job_not_found');
    expect(registry.list('p').map((j) => j.job_id)).to.not.include(id);
    const paths = jobLogPaths(dataDir, id);
    expect(existsSync(paths.stdout)).to.equal(false);
    expect(existsSync(paths.stderr)).to.equal(false);
  });

  it('never forgets a running job, however old', async () => {
    const req = executeRequest.parse({ project_id: 'p', command: 'sleep 1000' });
    const job = newJob(executeTool, 'p', req);
    registry.create(job, req);
    const channel = new MessageChannel();
    ports.push(channel);
    registry.started(job.id, channel.port1);
    await registry.sweep(Date.now() + 24 * 3_600_000);
    expect(registry.status(job.id)).to.equal('running');
    registry.finished(job.id, { ok: false, error: { code: 'cancelled', message: 'test over' } });
  });

  it('over jobs.maxLogDiskBytes, removes the logs of the oldest finished jobs first and says so', async () => {
    const old = await finishedJob('o'.repeat(80));
    await new Promise((r) => setTimeout(r, 5));
    const recent = await finishedJob('r'.repeat(80));
    await registry.sweep();
    const oldView = await registry.view(old, 'page');
    expect(oldView.logs_removed).to.equal(true);
    expect(oldView.stdout).to.equal('');
    expect(oldView.status).to.equal('completed');
    expect(existsSync(jobLogPaths(dataDir, old).stdout)).to.equal(false);
    const recentView = await registry.view(recent, 'page');
    expect(recentView.logs_removed).to.equal(false);
    expect(recentView.stdout).to.equal('r'.repeat(80));
  });
});
