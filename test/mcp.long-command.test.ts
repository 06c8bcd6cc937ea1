/**
 * A command longer than the MCP SDK's default request timeout (60 s), called through the real SDK client with
 * that default: its answer (status running, with its job_id) comes before the client gives up, progress
 * notifications carry its output meanwhile, and job_status follows it to the end with all of its output.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'chai';
import { PROGRESS_MESSAGE_CHARS } from '../supervisor/http/mcp-progress.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { jobIds, mcpClient, resultText, type ToolResult } from './helpers/mcp-client.js';
import { DEMO_FILES } from './helpers/tool-calls.js';

describe('MCP: long commands', function () {
  this.timeout(180_000);
  let s: TestServer;
  let client: Client;

  before(async () => {
    s = await startServer();
    expect((await s.putProject('demo', DEMO_FILES)).status).to.equal(201);
    client = await mcpClient(s);
  });
  after(async () => {
    await client?.close();
    await s?.close({ force: true });
  });

  /** Calls a tool with the client's default timeout; `onprogress` makes the client send a progressToken. */
  async function call(name: string, args: Record<string, unknown>, onprogress?: (p: Progress) => void): Promise<ToolResult> {
    return (await client.callTool({ name, arguments: args }, undefined, onprogress ? { onprogress } : {})) as ToolResult;
  }

  /** The offset an answer's text says to pass next (the last one it names); 0 when it names none. */
  function offset(text: string, stream: 'stdout' | 'stderr'): number {
    const all = [...text.matchAll(new RegExp(`${stream}_offset"?\\s*[:=]\\s*(\\d+)`, 'g'))];
    return Number(all.at(-1)?.[1] ?? 0);
  }

  /** The job's status as the HTTP API reports it now. */
  async function status(id: string): Promise<string> {
    return (await s.api(`/jobs/${id}?wait_s=0`)).body.status as string;
  }

  it('answers with the job_id before the timeout, sends progress with the output, and job_status follows it to the end', async () => {
    const progress: Progress[] = [];
    // Both calls run at once: one without wait_s (mcp.defaultWaitS applies), one asking to wait longer than the
    // client would (capped), without a progressToken.
    const [counted, capped] = await Promise.all([
      call('execute', { project_id: 'demo', command: 'for i in $(seq 70); do echo $i; sleep 1; done' }, (p) => progress.push(p)),
      call('execute', { project_id: 'demo', command: 'sleep 70', wait_s: 150 }),
    ]);

    for (const r of [counted, capped]) {
      const text = resultText(r);
      expect(r.isError ?? false, text).to.equal(false);
      const [id] = jobIds(text);
      expect(id, text).to.be.a('string');
      expect(text, 'the model is told how to follow the command').to.include('job_status');
      expect(await status(id as string)).to.equal('running');
    }

    // Progress: several notifications, growing, naming the job, and carrying the output printed meanwhile.
    const [id] = jobIds(resultText(counted)) as [string];
    expect(progress.length).to.be.at.least(3);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.progress).to.be.above(progress[i - 1]!.progress);
    for (const p of progress) expect(p.message).to.include(id);
    const lines = new Set(progress.flatMap((p) => (p.message ?? '').split('\n')));
    for (const n of [1, 2, 3, 10, 20]) expect(lines.has(String(n)), `line ${n} in the progress output`).to.equal(true);

    // Follow it with job_status, as a model would: from the offsets each answer gives, until the command ends.
    const texts = [resultText(counted)];
    for (let round = 0; round < 300; round++) {
      const since = { stdout_offset: offset(texts.at(-1) ?? '', 'stdout'), stderr_offset: offset(texts.at(-1) ?? '', 'stderr') };
      const r = await call('job_status', { job_id: id, ...since, wait_s: 190 });
      expect(r.isError ?? false, resultText(r)).to.equal(false);
      texts.push(resultText(r));
      if ((await status(id)) !== 'running' && offset(resultText(r), 'stdout') === since.stdout_offset) break;
    }
    expect(await status(id)).to.equal('completed');
    const all = texts.join('\n');
    // A line of output: on a line of its own in model text, or between escaped newlines in JSON text.
    for (let n = 1; n <= 70; n++) expect(new RegExp(`(^|\\n|\\\\n|")${n}(\\n|\\\\n)`).test(all), `line ${n} in the answers`).to.equal(true);

    const [sleeper] = jobIds(resultText(capped)) as [string];
    await s.api(`/jobs/${sleeper}`, undefined, { method: 'DELETE' });
  });

  it('bounds what a progress notification carries to the newest output, saying what it left out', async () => {
    const progress: Progress[] = [];
    const command = 'for i in $(seq 12); do seq -f "line %g of a chatty command" 1 5000; sleep 1; done';
    const r = await call('execute', { project_id: 'demo', command, wait_s: 14 }, (p) => progress.push(p));
    expect(r.isError ?? false, resultText(r)).to.equal(false);
    expect(progress.length).to.be.at.least(2);
    for (const p of progress) {
      const message = p.message ?? '';
      expect(message.length).to.be.at.most(PROGRESS_MESSAGE_CHARS + 200);
      expect(message).to.match(/earlier bytes not shown; job_status has all the output\]\n/);
      // Whole lines only: the first line of output after the note is a complete one.
      expect(message.split('\n')[2]).to.match(/^line \d+ of a chatty command$/);
    }
    // The newest output: a notification between two bursts ends with the burst's last line.
    expect(progress.some((p) => (p.message ?? '').trimEnd().endsWith('line 5000 of a chatty command'))).to.equal(true);
  });
});
