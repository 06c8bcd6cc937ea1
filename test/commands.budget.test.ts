/**
 * A command's answer within its budget of characters, through a real server and real commands: seq 1 300000 cut on
 * line boundaries with exact counts, the model's paging instruction followed to read back exactly what was left
 * out (page by page, each within budget), max_output_chars and its bound, one 5 MB line without a newline, both
 * streams large, multi-byte characters never split, and a command still running.
 */
import { expect } from 'chai';
import { executeTool } from '../handlers/execute.js';
import type { ModelContent } from '../lib/tool.js';
import { jobStatusTool } from '../supervisor/http/job-tools.js';
import { startServer, type TestServer } from './helpers/harness.js';

const BUDGET = 30000;
const seq = (from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}\n`).join('');
const text = (c: ModelContent[]): string => (c[0]?.type === 'text' ? c[0].text : '');
/** The one line of a model text that says what was cut, and the job_status arguments it names. */
const NOTICE = /^\[\.\.\. ([\d,]+ lines \([^)]*\)|[^\]]* of one line) of (stdout|stderr) omitted; read (?:them|it) with job_status (\{[^}]*\})[^\]]* \.\.\.\]$/;
const NEXT = /^\[\.\.\. .* more output already written; next page: job_status (\{[^}]*\}) \.\.\.\]$/;

describe('commands: answers within a budget of characters', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ commands: { killGraceS: 1 } });
    expect((await s.putProject('b', { 'a.txt': 'a\n' })).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  const model = (body: unknown, input: Record<string, unknown> = {}) => text(executeTool.toModel?.(body as never, input as never, s.sup.config) ?? []);
  const pageModel = (body: unknown) => text(jobStatusTool.toModel?.(body as never, {} as never, s.sup.config) ?? []);

  /** Follows a model text's instructions: job_status with the arguments of its notice, then of each page's next line. */
  async function readOmitted(first: Record<string, unknown>, stream: 'stdout' | 'stderr'): Promise<{ text: string; pages: number }> {
    let args: Record<string, unknown> | undefined = first;
    let out = '';
    let pages = 0;
    while (args) {
      const q = new URLSearchParams(
        Object.entries(args)
          .filter(([k]) => k !== 'job_id')
          .map(([k, v]) => [k, String(v)]),
      );
      const r = await s.api(`/jobs/${args.job_id}?wait_s=0&${q}`);
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      pages++;
      expect(r.body.stdout.length + r.body.stderr.length, 'a page within the budget').to.be.at.most(BUDGET);
      const m = pageModel(r.body);
      expect(m.length).to.be.at.most(BUDGET + 400);
      out += r.body[stream];
      const next = m
        .split('\n')
        .map((l) => NEXT.exec(l))
        .find((x) => x);
      args = next ? JSON.parse(next[1] ?? '{}') : undefined;
      expect(pages).to.be.below(200);
    }
    return { text: out, pages };
  }

  it('answers seq 1 300000 in ~30,000 characters, whole lines, and its paging instruction reads back the rest exactly', async () => {
    const full = seq(1, 300000);
    const r = await s.api('/execute', { project_id: 'b', command: 'seq 1 300000' });
    expect(r.status).to.equal(200);
    expect(r.body).to.include({ status: 'completed', exit_code: 0, stdout_offset: full.length });
    expect(r.body.stdout.length + r.body.stderr.length).to.be.at.most(BUDGET);
    expect(r.body.stdout.length).to.be.above(BUDGET * 0.8);
    const m = model(r.body);
    expect(m.length).to.be.at.most(BUDGET + 200);
    const lines = m.split('\n');
    expect(lines[0]).to.match(new RegExp(`^exit_code 0 after [\\d.]+ s; job_id ${r.body.job_id}$`));
    const notices = lines.filter((l) => l.startsWith('[... '));
    expect(notices).to.have.length(1);
    const [, what, stream, json] = NOTICE.exec(notices[0] ?? '') ?? [];
    expect(stream).to.equal('stdout');
    // Every kept line is a whole number line: the head runs 1..k, the tail k'..300000.
    const body = lines.slice(2);
    const at = body.indexOf(notices[0] ?? '');
    const head = body.slice(0, at).map(Number);
    const tail = body.slice(at + 1).map(Number);
    expect(head).to.deep.equal(head.map((_, i) => i + 1));
    expect(tail).to.deep.equal(tail.map((_, i) => 300000 - tail.length + 1 + i));
    const omittedLines = 300000 - head.length - tail.length;
    expect(what).to.equal(`${omittedLines.toLocaleString('en-US')} lines (2.0 MB)`);
    expect(r.body.omitted_lines).to.deep.equal({ stdout: omittedLines, stderr: 0 });
    const headText = seq(1, head.length);
    expect(r.body.omitted_offset.stdout).to.equal(headText.length);
    expect(r.body.omitted_bytes.stdout).to.equal(full.length - headText.length - seq(300000 - tail.length + 1, 300000).length);

    const rest = await readOmitted(JSON.parse(json ?? '{}'), 'stdout');
    expect(rest.pages).to.be.above(60);
    expect(headText + rest.text).to.equal(full);
  });

  it('honours max_output_chars, and refuses one above ten times the budget with a 400 that says the maximum', async () => {
    const r = await s.api('/execute', { project_id: 'b', command: 'seq 1 100000', max_output_chars: 2000 });
    expect(r.body.stdout.length).to.be.at.most(2000);
    expect(r.body.stdout.length).to.be.above(1500);
    const page = await s.api(`/jobs/${r.body.job_id}?max_output_chars=1000&wait_s=0`);
    expect(page.status).to.equal(200);
    expect(page.body.stdout).to.equal(seq(1, 1000).slice(0, page.body.stdout.length));
    expect(page.body.stdout.length).to.be.within(500, 1000);
    // Without max_output_chars, job_status pages with the command's own budget, not the server's default.
    const own = await s.api(`/jobs/${r.body.job_id}?wait_s=0`);
    expect(own.body.stdout.length).to.be.within(1000, 2000);
    for (const bad of [
      await s.api('/execute', { project_id: 'b', command: 'true', max_output_chars: 10 * BUDGET + 1 }),
      await s.api(`/jobs/${r.body.job_id}?max_output_chars=${10 * BUDGET + 1}`),
    ]) {
      expect(bad.status, JSON.stringify(bad.body)).to.equal(400);
      expect(bad.body.error.message).to.include(`maximum of ${10 * BUDGET}`);
      expect(bad.body.error.message).to.include('job_status');
    }
    for (const bad of [
      await s.api('/execute', { project_id: 'b', command: 'true', max_output_chars: 5 }),
      await s.api('/execute', { project_id: 'b', command: 'true', max_output_chars: 2000.5 }),
      await s.api('/execute', { project_id: 'b', command: 'true', max_output_chars: '5000' }),
      await s.api(`/jobs/${r.body.job_id}?max_output_chars=abc`),
      await s.api(`/jobs/${r.body.job_id}?max_output_chars=2000.5`),
    ]) {
      expect(bad.status, JSON.stringify(bad.body)).to.equal(400);
      expect(bad.body.error.code).to.equal('bad_request');
      expect(bad.body.error.message).to.include('max_output_chars');
    }
  });

  it('cuts a single 5 MB line without a newline within the budget, says so, and pages it back', async () => {
    const r = await s.api('/execute', { project_id: 'b', command: "head -c 5000000 /dev/zero | tr '\\0' x; echo -n END" });
    expect(r.body.status).to.equal('completed');
    expect(r.body.stdout.length).to.be.at.most(BUDGET);
    expect(r.body.stdout.endsWith('xEND')).to.equal(true);
    expect(r.body.omitted_lines.stdout).to.equal(0);
    const m = model(r.body);
    const notice = m.split('\n').find((l) => NOTICE.test(l)) ?? '';
    expect(notice).to.match(/^\[\.\.\. 5\.0 MB of one line of stdout omitted; read it with job_status/);
    const head = r.body.stdout.slice(0, r.body.stdout.indexOf('\n['));
    const rest = await readOmitted(JSON.parse(NOTICE.exec(notice)?.[3] ?? '{}'), 'stdout');
    expect(head.length + rest.text.length).to.equal(5000003);
    expect(/^x*END$/.test(head + rest.text)).to.equal(true);
  });

  it('shares the budget between two large streams, each cut with its own line, each paged back exactly', async () => {
    const out = seq(1, 200000);
    const err = Array.from({ length: 100000 }, (_, i) => `e${i + 1}\n`).join('');
    const r = await s.api('/execute', { project_id: 'b', command: 'seq 1 200000; seq -f "e%g" 1 100000 >&2; exit 3' });
    expect(r.body.exit_code).to.equal(3);
    expect(r.body.stdout.length + r.body.stderr.length).to.be.at.most(BUDGET);
    expect(r.body.stdout.length).to.be.above(BUDGET * 0.4);
    expect(r.body.stderr.length).to.be.above(BUDGET * 0.4);
    const m = model(r.body);
    expect(m.split('\n')[0]).to.match(/^exit_code 3 after/);
    expect(m).to.include('\n--- stdout ---\n').and.include('\n--- stderr ---\n');
    const notices = m.split('\n').filter((l) => NOTICE.test(l));
    expect(notices.map((l) => NOTICE.exec(l)?.[2])).to.deep.equal(['stdout', 'stderr']);
    for (const [i, stream, full] of [
      [0, 'stdout', out],
      [1, 'stderr', err],
    ] as const) {
      const args = JSON.parse(NOTICE.exec(notices[i] ?? '')?.[3] ?? '{}');
      // The other stream's offset is its end, so paging one stream does not repeat the other.
      expect(args[stream === 'stdout' ? 'stderr_offset' : 'stdout_offset']).to.equal((stream === 'stdout' ? err : out).length);
      const head = full.slice(0, args[`${stream}_offset`]);
      expect(r.body[stream].startsWith(head)).to.equal(true);
      const rest = await readOmitted(args, stream);
      expect(head + rest.text).to.equal(full);
    }
  });

  it('never splits a multi-byte character in the answer or the pages', async () => {
    const one = (i: number): string => `日本${i}€😀\n`;
    const full = Array.from({ length: 50000 }, (_, i) => one(i + 1)).join('');
    const r = await s.api('/execute', { project_id: 'b', command: `awk 'BEGIN { for (i = 1; i <= 50000; i++) printf "日本%d€😀\\n", i }'` });
    expect(r.body.stdout_offset).to.equal(Buffer.byteLength(full));
    expect(r.body.stdout).to.not.include('\uFFFD');
    expect(r.body.stdout.length).to.be.at.most(BUDGET);
    expect(r.body.invalid_utf8.stdout).to.equal(false);
    const notice =
      model(r.body)
        .split('\n')
        .find((l) => NOTICE.test(l)) ?? '';
    const args = JSON.parse(NOTICE.exec(notice)?.[3] ?? '{}');
    const head = Buffer.from(full).subarray(0, args.stdout_offset).toString();
    expect(r.body.stdout.startsWith(head) && head.endsWith('\n')).to.equal(true);
    const rest = await readOmitted(args, 'stdout');
    expect(rest.text).to.not.include('\uFFFD');
    expect(head + rest.text).to.equal(full);
  });

  it('answers a command still running within budget, with its job_id and how to follow it', async () => {
    const r = await s.api('/execute', { project_id: 'b', command: 'seq 1 300000; sleep 30', wait_s: 1.5, timeout_s: 60 });
    expect(r.body.status).to.be.oneOf(['queued', 'running']);
    expect(r.body.stdout.length + r.body.stderr.length).to.be.at.most(BUDGET);
    const m = model(r.body);
    const lines = m.split('\n');
    expect(lines[0]).to.match(new RegExp(`^(queued|running).*; job_id ${r.body.job_id}$`));
    const follow = JSON.stringify({ job_id: r.body.job_id, stdout_offset: r.body.stdout_offset, stderr_offset: r.body.stderr_offset });
    expect(lines.at(-1)).to.equal(`[still running; follow it with job_status ${follow}]`);
    const c = await s.api(`/jobs/${r.body.job_id}`, undefined, { method: 'DELETE' });
    expect(c.body.status).to.equal('cancelled');
    expect(c.body.stdout.length + c.body.stderr.length).to.be.at.most(BUDGET);
    const cm = text(jobStatusTool.toModel?.(c.body, {} as never, s.sup.config) ?? []);
    expect(cm.split('\n')[0]).to.match(/^cancelled after [\d.]+ s, exit_code \d+/);
  });
});
