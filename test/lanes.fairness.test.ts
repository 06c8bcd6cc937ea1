import { expect } from 'chai';
import { FairSemaphore } from '../lib/fair-semaphore.js';
import { startServer, type TestServer } from './helpers/harness.js';

describe('fair command lane', () => {
  it('FairSemaphore serves the least recently served key first, within per-key caps', async () => {
    const sem = new FairSemaphore(1, 1);
    const order: string[] = [];
    const first = await sem.acquire('A');
    const waits = ['A', 'A', 'A', 'B', 'C', 'A'].map((k, i) =>
      sem.acquire(k).then((release) => {
        order.push(`${k}${i}`);
        return release;
      }),
    );
    first();
    for (let i = 0; i < waits.length; i++) {
      const release = await Promise.race(waits.filter((_, j) => !order.some((o) => o.endsWith(String(j)))));
      release();
    }
    await Promise.all(waits);
    expect(order).to.deep.equal(['B3', 'C4', 'A0', 'A1', 'A2', 'A5']);
  });

  describe('over HTTP', () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ commands: { maxConcurrent: 1, maxPerProject: 1 } });
      await s.putProject('flood', { 'a.txt': 'a' });
      await s.putProject('single', { 'b.txt': 'b' });
    });
    after(async () => s?.close({ force: true }));

    it("starts project B's one command right after the running one, ahead of project A's 19 queued", async () => {
      // Every flood command waits for a file, so all 21 are queued while the first holds the one slot, however
      // long the requests take to arrive.
      const gate = 'while [ ! -e go ]; do sleep 0.02; done';
      const flood: string[] = [];
      for (let i = 0; i < 20; i++) {
        flood.push((await s.api('/execute', { project_id: 'flood', command: gate, background: true })).body.job_id as string);
      }
      const single = (await s.api('/execute', { project_id: 'single', command: 'echo b', background: true })).body.job_id as string;
      const queued = await Promise.all(flood.map((id) => s.api(`/jobs/${id}?wait_s=0`)));
      expect(queued.filter((v) => v.body.status === 'queued').length, 'all but the running one wait').to.be.at.least(19);
      expect((await s.api('/file/write', { project_id: 'flood', path: 'go', content: '' })).status).to.equal(200);
      const b = await s.api(`/jobs/${single}?wait_s=30&stdout_offset=2`);
      expect(b.body.status).to.equal('completed');
      const views = await Promise.all(flood.map((id) => s.api(`/jobs/${id}?wait_s=30&stdout_offset=0`)));
      expect(views.map((v) => v.body.status)).to.deep.equal(flood.map(() => 'completed'));
      // Only the command that held the slot when B arrived started before B.
      const startedBeforeB = views.filter((v) => v.body.started_at <= b.body.started_at);
      expect(startedBeforeB.map((v) => v.body.job_id)).to.deep.equal([flood[0]]);
    });
  });
});
