/**
 * `checkpoints.auto`: a checkpoint after every command and every mutating tool call, and none after a read. And the
 * counterpart of every checkpoint surviving: an eviction (which compacts a long chain) then a cold start still
 * gives each checkpoint back exactly.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';

describe('checkpoints.auto and checkpoints across eviction', function () {
  this.timeout(120_000);
  let s: TestServer;
  before(async () => {
    s = await startServer({ checkpoints: { auto: true, maxLayers: 3 } });
    expect((await s.putProject('auto', { 'a.txt': 'one\n' })).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  async function kinds(): Promise<string[]> {
    const r = await s.api('/projects/auto/checkpoints', undefined, { method: 'GET' });
    expect(r.status).to.equal(200);
    return (r.body.checkpoints as { kind: string }[]).map((c) => c.kind);
  }

  /** Waits until the project has `n` checkpoints (an automatic one is taken beside the answer). */
  async function until(n: number): Promise<string[]> {
    for (let i = 0; i < 200; i++) {
      const k = await kinds();
      if (k.length >= n) return k;
      await new Promise((r) => setTimeout(r, 50));
    }
    return kinds();
  }

  it('takes one after a write and after a command, none after a read', async () => {
    const start = (await kinds()).length;
    expect((await s.api('/file/write', { project_id: 'auto', path: 'b.txt', content: 'two\n' })).status).to.equal(200);
    expect((await until(start + 1)).slice(0, 1)).to.deep.equal(['auto']);
    expect((await s.api('/execute', { project_id: 'auto', command: 'echo three > c.txt' })).status).to.equal(200);
    expect((await until(start + 2)).slice(0, 2)).to.deep.equal(['auto', 'auto']);
    expect((await s.api('/file/read', { project_id: 'auto', path: 'a.txt' })).status).to.equal(200);
    await new Promise((r) => setTimeout(r, 300));
    expect((await kinds()).length).to.equal(start + 2);
  });

  it('every checkpoint restores exactly after the copy was evicted and its chain compacted', async () => {
    const states: { id: string; listing: string }[] = [];
    for (let i = 0; i < 6; i++) {
      await s.api('/execute', { project_id: 'auto', command: `echo v${i} > a.txt; rm -f f${i - 1}; touch f${i}` });
      const cp = await s.api('/projects/auto/checkpoints', { label: `step ${i}` });
      expect(cp.status).to.equal(200);
      const ls = await s.api('/execute', { project_id: 'auto', command: 'ls; cat a.txt' });
      states.push({ id: cp.body.checkpoint_id as string, listing: ls.body.stdout as string });
    }
    const manifest = async () => JSON.parse(await readFile(join(s.dataDir, 'store', 'auto.layers.json'), 'utf8')) as { head: number[] };
    expect((await manifest()).head.length).to.be.above(3);
    const evicted = await s.api('/projects/auto/cache', undefined, { method: 'DELETE' });
    expect(evicted.status, JSON.stringify(evicted.body)).to.equal(200);
    // The eviction merged the chain (checkpoints.maxLayers 3): the base and one layer.
    expect((await manifest()).head.length).to.be.at.most(2);
    for (const st of [states[1]!, states[4]!, states[0]!]) {
      const r = await s.api(`/projects/auto/checkpoints/${st.id}/restore`, {});
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      const ls = await s.api('/execute', { project_id: 'auto', command: 'ls; cat a.txt' });
      expect(ls.body.stdout).to.equal(st.listing);
    }
  });
});
