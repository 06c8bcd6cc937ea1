/** Builds the project store the configuration names; the only place that knows which backends exist. */
import { join } from 'node:path';
import type { Config } from '../../config/schema.js';
import { toToolhostError } from '../errors.js';
import { AzureBlobStore } from './azure-store.js';
import { LocalStore } from './local-store.js';
import type { ProjectStore } from './project-store.js';
import { ReconnectingStore, type StoreOutage } from './reconnecting-store.js';

/**
 * Opens the configured project store: a {@link LocalStore} on `<dataDir>/store`, or an {@link AzureBlobStore} on
 * `store.azure` behind a {@link ReconnectingStore} (its client made again on use after a failure), initialized
 * (folder or container created, credentials and network tried once). Called once by the supervisor and once per
 * pool thread, each getting its own client. Rejects with `invalid_config` when the Azure settings are incomplete,
 * and with `store_unavailable` when Azure cannot be reached, unless `tolerateOutage`: then the store is returned
 * all the same, its outage recorded, and each call tries to reach it again.
 */
export async function openStore(config: Config, opts: { tolerateOutage?: boolean } = {}): Promise<ProjectStore> {
  if (config.store.backend === 'azure') {
    const store = new ReconnectingStore(new AzureBlobStore(config.store.azure));
    try {
      await store.connect();
    } catch (err) {
      if (!opts.tolerateOutage || toToolhostError(err).code !== 'store_unavailable') throw err;
    }
    return store;
  }
  const store = new LocalStore(join(config.dataDir, 'store'));
  await store.init();
  return store;
}

/** The outage of a store {@link openStore} made, in progress now; null while it answers (and for a local store). */
export function storeOutage(store: ProjectStore): StoreOutage | null {
  return store instanceof ReconnectingStore ? store.outage() : null;
}

export type { StoreOutage } from './reconnecting-store.js';
