/**
 * A mutating job refused before it wrote anything hands back the clean mode it found (supervisor/projects.ts
 * begin), but only when no other change started since its own: never over another job's real change, or an idle
 * eviction would drop that change unsaved. The two jobs here start together, so the second begins while the
 * first waits for "dirty" to reach the index on disk.
 */
import { rm } from 'node:fs/promises';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { ToolhostError } from '../lib/errors.js';
import { LocalStore } from '../lib/store/local-store.js';
import { Pools } from '../supervisor/pools.js';
import { emptyProjectArchive } from '../supervisor/project-create.js';
import { ProjectCache } from '../supervisor/projects.js';
import { tempDir } from './helpers/harness.js';

describe('projects: a refused change hands back "clean" only when it was the only change', () => {
  let dir: string;
  let pools: Pools;
  let cache: ProjectCache;

  beforeEach(async () => {
    dir = await tempDir('toolhost-refused-');
    const config = loadConfig({ env: {}, overrides: { dataDir: dir, pool: { maxThreads: 2 } } });
    pools = new Pools(config);
    cache = new ProjectCache({
      dataDir: dir,
      store: new LocalStore(`${dir}/store`),
      pools,
      maxExtractions: 1,
      activeJobs: () => 0,
      exclude: () => [],
      checkpoints: () => config.checkpoints,
    });
    await cache.start();
    await cache.put('p', await emptyProjectArchive(cache.tmpDir, false), { replace: false });
    expect((await cache.info('p')).dirty).to.equal(false);
  });
  afterEach(async () => {
    await cache.close();
    await pools.close();
    await rm(dir, { recursive: true, force: true });
  });

  const refused = { ok: false as const, error: new ToolhostError('edit_no_match', 'old_str is not in the file').toJSON() };

  it('stays dirty when a write began while the refused edit waited for the index', async () => {
    const [endEdit, endWrite] = await Promise.all([cache.begin('p', true), cache.begin('p', true)]);
    endWrite({ ok: true, value: {} });
    endEdit(refused);
    expect((await cache.info('p')).dirty, "the write's change must not be handed back as clean").to.equal(true);
  });

  it('is clean again when the refused edit was the only change', async () => {
    const endEdit = await cache.begin('p', true);
    expect((await cache.info('p')).dirty).to.equal(true);
    endEdit(refused);
    expect((await cache.info('p')).dirty).to.equal(false);
  });
});
