/**
 * What each pool thread loads first: a CommonJS file, so Piscina's `require()` of it is plain CJS, while the real
 * handler (worker.ts, ESM) loads through `import()`. On Node 20 Piscina's `require()` of an ESM file goes through
 * require(esm), and a thread terminated in the middle of that (a pool closed while it was still starting a thread)
 * aborts the whole process (V8 "IsGraphAsync must be used on an instantiated module", exit 134). A terminated
 * `import()` just ends with the thread. The import starts at once, so a thread is as ready as before.
 */
import type { PoolTask } from './protocol.js';

// Under tsx (tests) this file is itself compiled by tsx's CommonJS hook, which also compiles worker.ts to CommonJS
// when required (tsx's ESM hooks do not reach an import() from here): the path tests always took.
const handler: Promise<{ default: (task: PoolTask) => Promise<unknown> }> = __filename.endsWith('.cts')
  ? Promise.resolve().then(() => require('./worker.ts'))
  : import('./worker.js');
// A failed load is reported by the first task that awaits it, not as an unhandled rejection of the thread.
handler.catch(() => {});

/** Runs one task through the ESM handler once it has loaded. */
async function run(task: PoolTask): Promise<unknown> {
  return (await handler).default(task);
}

export = run;
