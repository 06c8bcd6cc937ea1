/**
 * Reading and writing a project's manifest and its layers in the store, and the trees they make. Runs on pool
 * threads (each has its own store client). Indexes are immutable, so a thread keeps the ones it read.
 */
import type { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ToolhostError } from '../errors.js';
import { manifestName, type ObjectCondition, type ProjectStore, type StoredObject } from '../store/project-store.js';
import {
  type Checkpoint,
  type CheckpointKind,
  indexName,
  type LayerIndex,
  type LayerRef,
  layerName,
  type Manifest,
  parseIndex,
  parseManifest,
} from './format.js';
import { foldLayers, type SourcedNode, type Tree } from './tree.js';

/** A manifest with the ETag it was read at. */
export interface ReadManifest {
  manifest: Manifest;
  etag: string;
}

/** The project's manifest, or null when it has none. */
export async function readManifest(store: ProjectStore, id: string): Promise<ReadManifest | null> {
  const got = await store.getObject(manifestName(id));
  return got ? { manifest: parseManifest(id, got.body), etag: got.etag } : null;
}

/** Writes the project's manifest on `condition`; throws `save_conflict` when it fails. */
export function writeManifest(store: ProjectStore, id: string, manifest: Manifest, condition: ObjectCondition): Promise<StoredObject> {
  return store.putObject(manifestName(id), Buffer.from(JSON.stringify(manifest)), condition);
}

/** Most entries the indexes a thread keeps may hold together (a 100k-file base index is one tenth of it). */
const INDEX_CACHE_ENTRIES = 1_000_000;
/** Largest index read (unpacked); a bigger one is refused rather than filling memory. */
const MAX_INDEX_BYTES = 512 * 1024 * 1024;
const indexCache = new Map<string, LayerIndex>();
let cachedEntries = 0;

/** A layer's index (from this thread's cache when it read it before). */
export async function fetchIndex(store: ProjectStore, digest: string): Promise<LayerIndex> {
  const cached = indexCache.get(digest);
  if (cached) return cached;
  const got = await store.getObject(indexName(digest));
  if (!got) throw missing(digest);
  let body: Buffer;
  try {
    body = gunzipSync(got.body, { maxOutputLength: MAX_INDEX_BYTES });
  } catch {
    throw new ToolhostError('bad_archive', `the index of layer ${digest} in the store is not gzip; restore the store from a backup`);
  }
  const index = parseIndex(digest, body);
  remember(digest, index);
  return index;
}

function remember(digest: string, index: LayerIndex): void {
  if (indexCache.has(digest)) return;
  const size = index.entries.length + index.deleted.length + 1;
  while (cachedEntries + size > INDEX_CACHE_ENTRIES && indexCache.size > 0) {
    const [oldest, dropped] = indexCache.entries().next().value!;
    indexCache.delete(oldest);
    cachedEntries -= dropped.entries.length + dropped.deleted.length + 1;
  }
  indexCache.set(digest, index);
  cachedEntries += size;
}

/** Uploads a layer (its tar.gz file and its index); resolves with the bytes the store took. */
export async function uploadLayer(store: ProjectStore, layer: { file: string; digest: string }, index: LayerIndex): Promise<number> {
  const body = gzipSync(JSON.stringify(index), { level: 6 });
  // Data, then index, then (the caller) the manifest naming them: nothing names a layer before all of it is in.
  const data = await store.putObject(layerName(layer.digest), { file: layer.file });
  const idx = await store.putObject(indexName(layer.digest), body);
  remember(layer.digest, index);
  return idx.size + data.size;
}

/** A layer's data as a stream. */
export async function openLayer(store: ProjectStore, digest: string): Promise<Readable> {
  const got = await store.openObject(layerName(digest));
  if (!got) throw missing(digest);
  return got.stream;
}

function missing(digest: string): ToolhostError {
  return new ToolhostError('bad_archive', `layer ${digest} is missing from the store although a manifest names it; restore the store from a backup`);
}

/** The layers of a chain (indexes into the manifest's layers). */
export function chainRefs(manifest: Manifest, chain: readonly number[]): LayerRef[] {
  return chain.map((i) => manifest.layers[i]!);
}

/** The tree a chain makes, each entry with the layer it comes from. */
export async function treeOf(store: ProjectStore, refs: readonly LayerRef[]): Promise<Tree<SourcedNode>> {
  const indexes = await Promise.all(refs.map(async (r) => ({ digest: r.digest, index: await fetchIndex(store, r.digest) })));
  return foldLayers(indexes);
}

/** The checkpoint `checkpointId` of a project's manifest; `checkpoint_not_found` when it has none of that id. */
export function findCheckpoint(id: string, manifest: Manifest, checkpointId: string): Checkpoint {
  const cp = manifest.checkpoints.find((c) => c.id === checkpointId);
  if (!cp) {
    throw new ToolhostError('checkpoint_not_found', `project "${id}" has no checkpoint "${checkpointId}"; list them with GET /projects/${id}/checkpoints`, {
      project_id: id,
      checkpoint_id: checkpointId,
    });
  }
  return cp;
}

/** How many checkpoints to keep, and for how long. */
export interface KeepRule {
  count: number;
  maxAgeHours: number;
}

/**
 * A manifest with `refs` as its head, plus a checkpoint of it when `checkpoint` is given, pruned to `keep` (the
 * newest checkpoint always stays) and listing only the layers its chains still name.
 */
export function nextManifest(
  prev: Manifest | null,
  head: readonly LayerRef[],
  checkpoint: Omit<Checkpoint, 'layers'> | null,
  keep: KeepRule,
  now: number,
  pinned: readonly string[] = [],
): Manifest {
  const chains: { refs: LayerRef[]; cp: Omit<Checkpoint, 'layers'> }[] = (prev?.checkpoints ?? []).map((c) => ({ refs: chainRefs(prev!, c.layers), cp: c }));
  if (checkpoint) chains.push({ refs: [...head], cp: checkpoint });
  const kept = prune(chains, keep, now, pinned);
  const layers: LayerRef[] = [];
  const at = new Map<string, number>();
  const place = (refs: readonly LayerRef[]): number[] =>
    refs.map((r) => {
      let i = at.get(r.digest);
      if (i === undefined) {
        i = layers.length;
        at.set(r.digest, i);
        layers.push(r);
      }
      return i;
    });
  const headIdx = place(head);
  const checkpoints = kept.map((c) => ({ ...c.cp, layers: place(c.refs) }));
  return { v: 1, layers, head: headIdx, checkpoints };
}

/** Kinds of checkpoint taken by routine (not asked for by name): pruned first when there are too many. */
const ROUTINE = new Set<CheckpointKind>(['auto', 'save', 'autosave']);

/**
 * The checkpoints `keep` leaves, oldest first: none older than `maxAgeHours`, at most `count`, the routine ones
 * going before those an agent or a restore took. The newest and the `pinned` ones (a restore's target) always stay.
 */
function prune<C extends { cp: Omit<Checkpoint, 'layers'> }>(chains: C[], keep: KeepRule, now: number, pinned: readonly string[]): C[] {
  const oldest = now - keep.maxAgeHours * 3600_000;
  const stays = (c: C, i: number) => i === chains.length - 1 || pinned.includes(c.cp.id);
  let kept = chains.filter((c, i) => stays(c, i) || Date.parse(c.cp.created_at) >= oldest);
  for (const routine of [true, false]) {
    for (let i = 0; kept.length > keep.count && i < kept.length; ) {
      const c = kept[i]!;
      if (!stays(c, chains.indexOf(c)) && ROUTINE.has(c.cp.kind) === routine) kept = kept.filter((x) => x !== c);
      else i++;
    }
  }
  return kept;
}
