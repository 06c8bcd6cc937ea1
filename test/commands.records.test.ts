/**
 * When a command job's record reaches the disk: a background job's at once (its id is handed out before it starts),
 * a foreground job's only once its id is handed out (a read through the registry), it ends, the registry closes, or
 * FOREGROUND_RECORD_MS passes. A short foreground command costs one record write, at its end.
 */
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { type ExecuteResult, executeRequest, executeTool } from '../handlers/execute.js';
import { jobLogsDir } from '../lib/process/job-logs.js';
import { CommandJobs } from '../supervisor/command-jobs.js';
import { FOREGROUND_RECORD_MS } from '../supervisor/command-records.js';
import { newJob } from '../supervisor/http/tools.js';
import { createLogger } from '../supervisor/logger.js';
import { tempDir } from './helpers/harness.js';
import { eventually } from './helpers/procs.js';

describe('commands: when job records are written', () => {
  let dataDir: string;
  let jobs: CommandJobs;
  const channels: MessageChannel[] = [];

  beforeEach(async () => {
    dataDir = await tempDir('toolhost-records-when-');
    jobs = new CommandJobs(loadConfig({ overrides: { dataDir, logLevel: 'silent' } }), createLogger('silent'));
    await jobs.start();
  });
  afterEach(async () => {
    await jobs.close();
    for (const c of channels) c.port1.close();
    channels.length = 0;
    await rm(dataDir, { recursive: true, force: true });
  });

  const recordFile = (id: string): string => join(jobLogsDir(dataDir), `${id}.json`);
  const saved = async (id: string): Promise<{ status: string }> => JSON.parse(await readFile(recordFile(id), 'utf8'));
  /** Waits until the registry's writes landed (they are never awaited by the callers that make them). */
  const landed = async (): Promise<void> => {
    await new Promise((r) => setTimeout(r, 50));
  };

  function accept(body: Record<string, unknown>): string {
    const req = executeRequest.parse({ project_id: 'p', ...body });
    const job = newJob(executeTool, 'p', req);
    jobs.create(job, req);
    return job.id;
  }

  function start(id: string): void {
    const channel = new MessageChannel();
    channels.push(channel);
    jobs.started(id, channel.port1);
  }

  it('writes a background job when it is accepted', async () => {
    const id = accept({ command: 'serve', background: true });
    expect(await eventually(() => existsSync(recordFile(id)))).to.equal(true);
    expect((await saved(id)).status).to.equal('queued');
  });

  it('writes a short foreground job once, when it ends', async () => {
    const id = accept({ command: 'true' });
    start(id);
    await landed();
    expect(existsSync(recordFile(id)), 'no record before its id was handed out').to.equal(false);
    jobs.finished(id, { ok: true, value: result(id) });
    expect(await eventually(() => existsSync(recordFile(id)))).to.equal(true);
    expect((await saved(id)).status).to.equal('completed');
  });

  it('writes a foreground job at once when its id is handed out: a view, the list', async () => {
    const viewed = accept({ command: 'make' });
    start(viewed);
    await jobs.view(viewed, 'snapshot');
    expect(await eventually(() => existsSync(recordFile(viewed)))).to.equal(true);
    expect((await saved(viewed)).status).to.equal('running');

    const listed = accept({ command: 'make test' });
    jobs.list('p');
    expect(await eventually(() => existsSync(recordFile(listed)))).to.equal(true);
    expect((await saved(listed)).status).to.equal('queued');
  });

  it('writes a foreground job still running after FOREGROUND_RECORD_MS, so a crash leaves it to be found interrupted', async () => {
    const id = accept({ command: 'sleep 60' });
    start(id);
    expect(await eventually(() => existsSync(recordFile(id)), FOREGROUND_RECORD_MS + 5000)).to.equal(true);
    expect((await saved(id)).status).to.equal('running');
  });

  it('writes the foreground jobs it holds when it closes', async () => {
    const id = accept({ command: 'make' });
    start(id);
    await jobs.close();
    expect((await saved(id)).status).to.equal('running');
  });

  it('writes nothing for a foreground job dropped before it was queued', async () => {
    const id = accept({ command: 'true' });
    jobs.drop(id);
    await new Promise((r) => setTimeout(r, FOREGROUND_RECORD_MS + 200));
    expect(existsSync(recordFile(id))).to.equal(false);
  });
});

/** What execute's handler reports for a command that printed nothing and exited 0. */
function result(id: string): ExecuteResult {
  const zero = { stdout: 0, stderr: 0 };
  return {
    job_id: id,
    exit_code: 0,
    signal: null,
    stdout: '',
    stderr: '',
    timed_out: false,
    cancelled: false,
    duration_ms: 1,
    truncated: { stdout: false, stderr: false },
    omitted_bytes: zero,
    omitted_lines: zero,
    omitted_offset: { stdout: null, stderr: null },
    stdout_offset: 0,
    stderr_offset: 0,
    log_dropped_bytes: zero,
    invalid_utf8: { stdout: false, stderr: false },
  };
}
