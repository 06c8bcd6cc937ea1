/** A save run in its own process, for the kill -9 test (test/layers.store.test.ts): env names the store and copy. */
import { saveLayers } from '../../lib/layers/ops.js';
import { LocalStore } from '../../lib/store/local-store.js';

const env = process.env;
const store = new LocalStore(env.STORE_DIR!);
await store.init();
await saveLayers(
  { store, limits: { maxEntries: 100_000, maxTotalBytes: 2 ** 32, maxRatio: 1000 }, owner: () => null },
  {
    id: 'k',
    root: env.ROOT!,
    exclude: [],
    scratch: env.SCRATCH!,
    statePath: env.STATE!,
    source: { kind: 'layers', etag: env.ETAG! },
    stamp: `child${process.pid}`,
    record: null,
    recordAs: 'save',
    keep: { count: 100, maxAgeHours: 24 },
  },
);
