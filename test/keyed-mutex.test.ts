/**
 * lib/keyed-mutex.ts: one holder per key at a time, in arrival order; other keys never wait; a key whose last
 * holder released it leaves nothing behind.
 */
import { expect } from 'chai';
import { KeyedMutex } from '../lib/keyed-mutex.js';

/** Lets every pending promise callback run (a lock handed over takes a few microtask hops). */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('keyed mutex', () => {
  let mutex: KeyedMutex;
  beforeEach(() => {
    mutex = new KeyedMutex();
  });
  afterEach(() => {
    expect(mutex.size, 'keys left behind').to.equal(0);
  });

  it('runs the callers of one key one at a time, in the order they arrived', async () => {
    const events: string[] = [];
    let running = 0;
    const gates: Array<() => void> = [];
    const runs = [0, 1, 2, 3, 4].map((i) =>
      mutex.run('k', async () => {
        running++;
        expect(running, `caller ${i} overlaps another`).to.equal(1);
        events.push(`start ${i}`);
        await new Promise<void>((r) => gates.push(r));
        events.push(`end ${i}`);
        running--;
        return i;
      }),
    );
    for (let i = 0; i < 5; i++) {
      await settle();
      expect(gates, `gates open while caller ${i} holds the key`).to.have.length(1);
      gates.shift()!();
    }
    expect(await Promise.all(runs)).to.deep.equal([0, 1, 2, 3, 4]);
    expect(events).to.deep.equal(['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3', 'start 4', 'end 4']);
  });

  it('never makes one key wait for another', async () => {
    const unlockA = await mutex.lock('a');
    let gotB = false;
    const b = mutex.lock('b').then((unlock) => {
      gotB = true;
      return unlock;
    });
    await settle();
    expect(gotB, 'b acquired while a is held').to.equal(true);
    expect(mutex.size).to.equal(2);
    (await b)();
    unlockA();
  });

  it('keeps the queue fair: a caller arriving as the key is released waits behind those already waiting', async () => {
    const order: string[] = [];
    const unlockA = await mutex.lock('k');
    const b = mutex.lock('k').then((u) => {
      order.push('b');
      return u;
    });
    unlockA();
    const c = mutex.lock('k').then((u) => {
      order.push('c');
      return u;
    });
    await settle();
    expect(order).to.deep.equal(['b']);
    (await b)();
    await settle();
    expect(order).to.deep.equal(['b', 'c']);
    (await c)();
  });

  it('leaves no entry for a released key, whether it was contended or not', async () => {
    (await mutex.lock('solo'))();
    expect(mutex.size).to.equal(0);
    const first = await mutex.lock('busy');
    const second = mutex.lock('busy');
    expect(mutex.size).to.equal(1);
    first();
    expect(mutex.size, 'a waiter still holds the entry').to.equal(1);
    (await second)();
    expect(mutex.size).to.equal(0);
    // Many keys used once each: nothing accumulates.
    await Promise.all(Array.from({ length: 1000 }, (_, i) => mutex.run(`key-${i}`, async () => i)));
  });

  it('releases the key when the callback throws, and passes the error on unchanged', async () => {
    const boom = new Error('boom');
    const failed = mutex.run('k', async () => {
      throw boom;
    });
    const next = mutex.run('k', async () => 'next ran');
    let caught: unknown;
    await failed.catch((err: unknown) => (caught = err));
    expect(caught).to.equal(boom);
    expect(await next).to.equal('next ran');
  });

  it('ignores a second call of an unlock function: it cannot free the key for a later holder', async () => {
    const unlockA = await mutex.lock('k');
    unlockA();
    const unlockB = await mutex.lock('k');
    unlockA();
    let gotC = false;
    const c = mutex.lock('k').then((u) => {
      gotC = true;
      return u;
    });
    await settle();
    expect(gotC, 'c acquired while b holds the key').to.equal(false);
    unlockB();
    (await c)();
    expect(gotC).to.equal(true);
  });
});
