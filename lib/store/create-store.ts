/** Builds the project store the configuration names; the only place that knows which backends exist. */
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { AzureBlobStore } from './azure-store.js';
import { LocalStore } from './local-store.js';
import type { ProjectStore } from './project-store.js';

/**
 * Opens the configured project store: a {@link LocalStore} on `<dataDir>/store`, or an {@link AzureBlobStore} on
 * `store.azure`, initialized (folder or container created, credentials and network tried once). Called once by
 * the supervisor and once per pool thread, each getting its own client. Rejects with `store_unavailable` when
 * Azure cannot be reached and `invalid_config` when its settings are incomplete.
 */
export async function openStore(config: Config): Promise<ProjectStore> {
  if (config.store.backend === 'azure') {
    const store = new AzureBlobStore(config.store.azure);
    await store.init();
    return store;
  }
  const store = new LocalStore(join(config.dataDir, 'store'));
  await store.init();
  return store;
}
