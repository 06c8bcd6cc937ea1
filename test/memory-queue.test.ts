/**
 * lib/queue/memory-queue.ts: the embedded JobQueue. FIFO delivery in batches, a bound on jobs outstanding, outcomes
 * routed to waiters, and close semantics: intake stops, waiters and receivers are let go, nothing stays pending.
 */
import { getEventListeners } from 'node:events';
import { expect } from 'chai';
import { ToolhostError } from '../lib/errors.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import { MemoryQueue } from '../lib/queue/memory-queue.js';

/** A job as the queue sees it: it routes by id and looks at nothing else. */
const job = (n: number | string): Job =>
  ({ id: `job-${n}`, type: 'file.read' as const, mutates: false, projectId: 'p', payload: { n }, enqueuedAt: Date.now() }) as Job;
const ids = (jobs: Job[]): string[] => jobs.map((j) => j.id);
const OK: JobOutcome = { ok: true, value: 'done' };

/** The ToolhostError code `p` rejects with. */
async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(ToolhostError);
    return (err as ToolhostError).code;
  }
  expect.fail('expected a rejection');
}

/** Whether `p` has settled once already queued callbacks have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('memory queue', () => {
  let q: MemoryQueue;
  let intake: AbortController;
  beforeEach(() => {
    q = new MemoryQueue(100);
    intake = new AbortController();
  });
  afterEach(async () => {
    await q.close();
    expect(getEventListeners(intake.signal, 'abort'), 'receive left a listener on the signal').to.have.length(0);
  });

  it('delivers jobs first in, first out, at most `max` per receive', async () => {
    for (let i = 0; i < 5; i++) await q.enqueue(job(i));
    expect(q.depth()).to.equal(5);
    expect(ids(await q.receive(2, intake.signal))).to.deep.equal(['job-0', 'job-1']);
    expect(ids(await q.receive(10, intake.signal))).to.deep.equal(['job-2', 'job-3', 'job-4']);
    expect(q.depth()).to.equal(0);
  });

  it('makes a receive wait until a job arrives', async () => {
    const r = q.receive(10, intake.signal);
    expect(await settled(r), 'receive returned with nothing queued').to.equal(false);
    await q.enqueue(job('late'));
    expect(ids(await r)).to.deep.equal(['job-late']);
  });

  it('ends a waiting receive with [] when its signal aborts, and an aborted receive takes nothing', async () => {
    const r = q.receive(10, intake.signal);
    intake.abort();
    expect(await r).to.deep.equal([]);
    await q.enqueue(job(1));
    expect(await q.receive(10, intake.signal), 'an aborted receive took a job').to.deep.equal([]);
    expect(q.depth()).to.equal(1);
  });

  it('wakes every receiver waiting at once, not only the last to arrive', async () => {
    const other = new AbortController();
    const r1 = q.receive(1, intake.signal);
    const r2 = q.receive(1, other.signal);
    await q.enqueue(job(1));
    await q.enqueue(job(2));
    const got = [...(await r1), ...(await r2)];
    expect(ids(got).sort()).to.deep.equal(['job-1', 'job-2']);
    expect(getEventListeners(other.signal, 'abort')).to.have.length(0);
  });

  it('keeps a receiver that is still waiting awake after another receiver gave up', async () => {
    const quitter = new AbortController();
    const gaveUp = q.receive(1, quitter.signal);
    const waiting = q.receive(1, intake.signal);
    quitter.abort();
    expect(await gaveUp).to.deep.equal([]);
    await q.enqueue(job(1));
    expect(ids(await waiting)).to.deep.equal(['job-1']);
  });

  it('refuses with queue_full once maxOutstanding jobs are accepted and not completed, received or not', async () => {
    q = new MemoryQueue(3);
    for (let i = 0; i < 3; i++) await q.enqueue(job(i));
    const received = await q.receive(2, intake.signal);
    expect(q.depth()).to.equal(1);
    let err: unknown;
    await q.enqueue(job('over')).catch((e: unknown) => (err = e));
    expect((err as ToolhostError).code).to.equal('queue_full');
    expect((err as ToolhostError).details).to.have.property('retry_after_s');
    await q.complete(received[0]!, OK);
    await q.enqueue(job('fits'));
    expect(await code(q.enqueue(job('over again')))).to.equal('queue_full');
  });

  it('routes an outcome to the waiters registered before the job was queued', async () => {
    const j = job(1);
    const outcome = q.waitFor(j.id, { timeoutMs: 60_000 });
    const bystander = q.waitFor('job-other', { timeoutMs: 60_000 });
    await q.enqueue(j);
    const [got] = await q.receive(1, intake.signal);
    await q.complete(got!, OK);
    expect(await outcome).to.equal(OK);
    expect(await settled(bystander), "an outcome reached another job's waiter").to.equal(false);
    bystander.catch(() => {});
  });

  it('on close: rejects waiters and new jobs with shutting_down and lets a waiting receive go', async () => {
    const w = q.waitFor('job-1', { timeoutMs: 60_000 });
    const blocked = new AbortController();
    const r = q.receive(10, blocked.signal);
    await q.close();
    expect(await code(w)).to.equal('shutting_down');
    expect(await r).to.deep.equal([]);
    expect(getEventListeners(blocked.signal, 'abort')).to.have.length(0);
    expect(await code(q.enqueue(job('after')))).to.equal('shutting_down');
    // A second close is harmless.
    await q.close();
  });

  it('hands out nothing after close, even jobs still queued', async () => {
    await q.enqueue(job('stranded'));
    await q.close();
    expect(await q.receive(10, intake.signal)).to.deep.equal([]);
  });

  it('stays first in, first out across the compaction of its backing array', async () => {
    q = new MemoryQueue(10_000);
    for (let i = 0; i < 3000; i++) await q.enqueue(job(i));
    const seen: string[] = [];
    let more = false;
    // Batches of 7 take the head past the compaction threshold several times with jobs still pending.
    while (q.depth() > 0) {
      const batch = await q.receive(7, intake.signal);
      seen.push(...ids(batch));
      if (!more && seen.length >= 1500) {
        more = true;
        for (let i = 3000; i < 3500; i++) await q.enqueue(job(i));
      }
    }
    expect(seen).to.deep.equal(Array.from({ length: 3500 }, (_, i) => `job-${i}`));
  });
});
