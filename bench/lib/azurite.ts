/**
 * Azure Blob Storage for scenarios, on the test suite's Azurite (test/helpers/azurite.ts: its own process group on
 * free ports of 127.0.0.1, state in memory, gone after `stop()`): a container per supervisor, archives planted in
 * it as a project's blob before the supervisor asks for them, and the `store` section that points a supervisor
 * at it. Azurite is not one of the runner's tracked children: a scenario stops it in its own `finally`, and the
 * helper kills it when the bench process exits.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { type Azurite, containerClient, startAzurite, uniqueContainerName } from '../../test/helpers/azurite.js';

export { startAzurite, type Azurite };

/** Upload block size and parallelism for planted archives: the same as the Azure store's own uploads. */
const BLOCK_BYTES = 8 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;

/** A fresh container on the emulator and the configuration of a supervisor that keeps its projects there. */
export interface BenchContainer {
  client: ContainerClient;
  /** Merge into a supervisor's config: `{ store: { backend: 'azure', azure: { connectionString, container } } }`. */
  config: { store: { backend: 'azure'; azure: { connectionString: string; container: string } } };
}

/** Creates a container no other supervisor of the run uses. */
export async function freshContainer(azurite: Azurite, prefix: string): Promise<BenchContainer> {
  const container = uniqueContainerName(prefix);
  const client = containerClient(azurite, container);
  await client.create();
  return { client, config: { store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container } } } };
}

/** Uploads `file` as project `id`'s archive blob (`<id>.zip` or `<id>.tar.gz`, the store's naming). */
export async function plantArchive(c: BenchContainer, id: string, format: 'zip' | 'tar.gz', file: string): Promise<void> {
  await c.client.getBlockBlobClient(`${id}.${format}`).uploadFile(file, { blockSize: BLOCK_BYTES, maxSingleShotSize: BLOCK_BYTES, concurrency: UPLOAD_CONCURRENCY });
}
