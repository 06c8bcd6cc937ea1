import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';

describe('lanes: short jobs never wait behind commands', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ commands: { maxConcurrent: 2, maxPerProject: 2 } });
    await s.putProject('busy', { 'src/app.ts': 'export const answer = 42;\n' });
    await s.putProject('other', { 'notes.md': 'needle in a haystack\n' });
  });
  after(async () => s?.close({ force: true }));

  it('answers a read, a list and a search in both projects while every command slot is taken', async () => {
    const finished: string[] = [];
    // More sleeps than slots, in both projects: two run, three wait for a slot.
    const sleeps = ['busy', 'busy', 'busy', 'other', 'other'].map((project_id, i) =>
      s.api('/execute', { project_id, command: 'sleep 30', timeout_s: 60 }).then((r) => {
        finished.push(`sleep ${i}`);
        return r;
      }),
    );
    for (;;) {
      const h = await s.api('/health');
      if (h.body.jobs.by_type.execute === 2 && h.body.queue.depth === 3) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const answers = await Promise.all([
      s.api('/file/read', { project_id: 'busy', path: 'src/app.ts' }),
      s.api('/file/list', { project_id: 'busy' }),
      s.api('/search', { project_id: 'busy', pattern: 'answer' }),
      s.api('/file/read', { project_id: 'other', path: 'notes.md' }),
      s.api('/search', { project_id: 'other', pattern: 'needle' }),
    ]);
    expect(answers.map((a) => a.status)).to.deep.equal([200, 200, 200, 200, 200]);
    expect(answers[0]!.body.content).to.include('42');
    expect(answers[2]!.body.matches).to.have.length(1);
    expect(finished, 'no sleep may have finished before the short jobs were answered').to.deep.equal([]);
    const h = await s.api('/health');
    expect(h.body.jobs.by_type.execute).to.equal(2);

    // Shutting down cancels the sleeps: running ones report cancelled, waiting ones shutting_down.
    await s.close({ force: true });
    const results = await Promise.all(sleeps);
    expect(results.filter((r) => r.status === 200 && r.body.cancelled === true)).to.have.length(2);
    expect(results.filter((r) => r.status === 503)).to.have.length(3);
  });
});
