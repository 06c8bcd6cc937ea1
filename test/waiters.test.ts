/**
 * lib/queue/waiters.ts: callers waiting for job outcomes. Every way a wait ends (outcome, deadline, abort,
 * shutdown) removes the waiter, its timer and its abort listener, so nothing outlives the wait.
 */
import { getEventListeners, setMaxListeners } from 'node:events';
import { expect } from 'chai';
import { ToolhostError } from '../lib/errors.js';
import type { JobOutcome } from '../lib/jobs.js';
import { Waiters } from '../lib/queue/waiters.js';

const OK: JobOutcome = { ok: true, value: 'done' };

/** Timers alive in this process (mocha's own included, so tests compare counts). */
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** The rejection of `p`, or a failure when it resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  expect.fail('expected the wait to reject');
}

/** Whether `p` has settled by the time already queued callbacks and a short timer have run. */
async function settledSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, 20));
  return settled;
}

describe('waiters', () => {
  let w: Waiters;
  let timersBefore: number;
  beforeEach(() => {
    w = new Waiters();
    timersBefore = timers();
  });
  afterEach(() => {
    expect(w.size, 'jobs still waited for').to.equal(0);
    expect(timers(), 'timers left running').to.equal(timersBefore);
  });

  it('hands an outcome to every waiter of that job and to no other', async () => {
    const a1 = w.wait('a', { timeoutMs: 60_000 });
    const a2 = w.wait('a', { timeoutMs: 60_000 });
    const b = w.wait('b', { timeoutMs: 60_000 });
    expect([w.size, w.has('a'), w.has('b'), w.has('c')]).to.deep.equal([2, true, true, false]);
    expect(timers()).to.equal(timersBefore + 3);
    w.settle('a', OK);
    expect(await Promise.all([a1, a2])).to.deep.equal([OK, OK]);
    expect([w.size, w.has('a')]).to.deep.equal([1, false]);
    expect(await settledSoon(b), "b got a's outcome").to.equal(false);
    w.settle('b', { ok: false, error: { code: 'internal', message: 'x' } } as JobOutcome);
    expect(await b).to.deep.include({ ok: false });
  });

  it('ignores an outcome nobody waits for, and a second outcome for the same job', async () => {
    w.settle('nobody', OK);
    const a = w.wait('a', { timeoutMs: 60_000 });
    w.settle('a', OK);
    w.settle('a', { ok: true, value: 'second' });
    expect(await a).to.equal(OK);
  });

  it('rejects with job_deadline after timeoutMs, naming the job, and forgets the waiter', async () => {
    const a = w.wait('job-1', { timeoutMs: 5 });
    const other = w.wait('job-1', { timeoutMs: 60_000 });
    const err = await rejection(a);
    expect(err).to.be.instanceOf(ToolhostError);
    expect((err as ToolhostError).code).to.equal('job_deadline');
    expect((err as ToolhostError).message).to.include('job-1');
    // The waiter that timed out is gone; the other one still gets the outcome.
    expect(w.has('job-1')).to.equal(true);
    w.settle('job-1', OK);
    expect(await other).to.equal(OK);
  });

  it('keeps waiting when the deadline is beyond what one setTimeout can hold (2^31 - 1 ms)', async () => {
    // Node fires an overflowing setTimeout after 1 ms instead, which would turn a long deadline into none.
    const a = w.wait('long', { timeoutMs: 2 ** 31 + 1000 });
    expect(await settledSoon(a), 'the wait ended at once').to.equal(false);
    w.settle('long', OK);
    expect(await a).to.equal(OK);
  });

  it('rejects with the abort reason when the signal aborts, and removes its listener from the signal', async () => {
    const ac = new AbortController();
    const a = w.wait('a', { timeoutMs: 60_000, signal: ac.signal });
    expect(getEventListeners(ac.signal, 'abort')).to.have.length(1);
    const reason = new Error('client went away');
    ac.abort(reason);
    expect(await rejection(a)).to.equal(reason);
    expect(getEventListeners(ac.signal, 'abort')).to.have.length(0);
  });

  it('rejects at once for a signal aborted before the wait, registering nothing', async () => {
    const reason = new Error('already gone');
    const a = w.wait('a', { timeoutMs: 60_000, signal: AbortSignal.abort(reason) });
    expect(w.has('a')).to.equal(false);
    expect(await rejection(a)).to.equal(reason);
  });

  it('leaves no listener on a long-lived signal after many waits that ended by outcome or deadline', async () => {
    const ac = new AbortController();
    setMaxListeners(0, ac.signal);
    const waits: Array<Promise<unknown>> = [];
    for (let i = 0; i < 50; i++) {
      waits.push(w.wait(`ok-${i}`, { timeoutMs: 60_000, signal: ac.signal }));
      waits.push(w.wait(`late-${i}`, { timeoutMs: 1, signal: ac.signal }).catch((err: unknown) => err));
    }
    for (let i = 0; i < 50; i++) w.settle(`ok-${i}`, OK);
    await Promise.all(waits);
    expect(getEventListeners(ac.signal, 'abort')).to.have.length(0);
  });

  it('rejects every waiter of every job on rejectAll, and a later outcome reaches nobody', async () => {
    const ac = new AbortController();
    const waits = [w.wait('a', { timeoutMs: 60_000 }), w.wait('a', { timeoutMs: 60_000, signal: ac.signal }), w.wait('b', { timeoutMs: 60_000 })];
    const err = new ToolhostError('shutting_down', 'bye');
    w.rejectAll(err);
    for (const p of waits) expect(await rejection(p)).to.equal(err);
    expect(getEventListeners(ac.signal, 'abort')).to.have.length(0);
    w.settle('a', OK);
  });

  it('keeps a new wait for a job whose earlier waiters are gone separate from them', async () => {
    const ac = new AbortController();
    const first = w.wait('a', { timeoutMs: 60_000, signal: ac.signal });
    ac.abort(new Error('gone'));
    await rejection(first);
    const second = w.wait('a', { timeoutMs: 60_000 });
    expect(w.has('a')).to.equal(true);
    w.settle('a', OK);
    expect(await second).to.equal(OK);
  });
});
