/**
 * A save (MODE=save) or a compaction (MODE=compact) run in its own process, for the kill -9 tests
 * (test/layers.store.test.ts): the environment names the store, the copy, its state and the manifest's ETag.
 */
import { compactLayers, saveLayers } from '../../lib/layers/ops.js';
import { LocalStore } from '../../lib/store/local-store.js';

const env = process.env;
const store = new LocalStore(env.STORE_DIR!);
await store.init();
const c = { store, limits: { maxEntries: 100_000, maxTotalBytes: 2 ** 32, maxRatio: 1000 }, owner: () => null };
const copy = { id: env.PROJECT!, root: env.ROOT!, exclude: [], scratch: env.SCRATCH!, statePath: env.STATE! };
if (env.MODE === 'compact') {
  await compactLayers(c, { ...copy, etag: env.ETAG!, maxLayers: 1 });
} else {
  await saveLayers(c, {
    ...copy,
    source: { kind: 'layers', etag: env.ETAG! },
    stamp: `child${process.pid}`,
    record: null,
    recordAs: 'save',
    keep: { count: 100, maxAgeHours: 24 },
  });
}
