/**
 * Collection of layers no manifest names any more (checkpoints pruned, projects deleted, saves that lost a race).
 * Layers are shared between projects (a fork names its source's), so what is referenced is found from every
 * manifest in the store. Two guards keep a layer in use from being deleted: only layers older than the grace
 * period go (a save uploads its layer before it writes the manifest naming it), and the manifests are read a
 * second time just before deleting, so a fork or save that landed meanwhile still counts.
 */
import type { ProjectStore, StoredObject } from '../store/project-store.js';
import { parseManifestName } from '../store/project-store.js';
import { digestOf } from './format.js';
import { readManifest } from './manifest.js';

/** What a collection did. */
export interface CollectResult {
  manifests: number;
  deleted: number;
  deletedBytes: number;
  kept: number;
}

/** Deletes layers (data and index) that no manifest names and that are older than `graceMs`. */
export async function collectLayers(store: ProjectStore, graceMs: number, now = Date.now()): Promise<CollectResult> {
  const objects = await store.listObjects('');
  const ids = objects.map((o) => parseManifestName(o.name)).filter((id) => id !== null);
  const first = await referenced(store, ids);
  const cutoff = now - graceMs;
  const candidates = objects.filter((o) => {
    const d = digestOf(o.name);
    return d !== null && !first.has(d) && Date.parse(o.modifiedAt) < cutoff;
  });
  if (candidates.length === 0) return { manifests: ids.length, deleted: 0, deletedBytes: 0, kept: countLayers(objects) };
  // Again, with every manifest there is now (a fork may have named a layer since the first pass).
  const again = await referenced(
    store,
    (await store.listObjects('')).map((o) => parseManifestName(o.name)).filter((id) => id !== null),
  );
  let deleted = 0;
  let deletedBytes = 0;
  for (const o of candidates) {
    if (again.has(digestOf(o.name)!)) continue;
    if (await store.deleteObject(o.name, { ifMatch: o.etag })) {
      deleted++;
      deletedBytes += o.size;
    }
  }
  return { manifests: ids.length, deleted, deletedBytes, kept: countLayers(objects) - deleted };
}

/** Digests every manifest of `ids` names (head and checkpoints). A manifest that cannot be read keeps everything. */
async function referenced(store: ProjectStore, ids: readonly string[]): Promise<Set<string>> {
  const digests = new Set<string>();
  for (const id of ids) {
    const read = await readManifest(store, id).catch(() => 'unreadable' as const);
    if (read === 'unreadable') throw new Error(`manifest of project "${id}" cannot be read; collection stopped so nothing it names is deleted`);
    if (!read) continue;
    const m = read.manifest;
    for (const chain of [m.head, ...m.checkpoints.map((c) => c.layers)]) for (const i of chain) digests.add(m.layers[i]!.digest);
  }
  return digests;
}

function countLayers(objects: readonly StoredObject[]): number {
  return objects.filter((o) => digestOf(o.name) !== null).length;
}
