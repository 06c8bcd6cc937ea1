/**
 * What pool threads do with layered projects: load one, save a copy's changes as a layer (a checkpoint), store an
 * upload as a new base, restore a checkpoint, fork, compact. Each writes layers first and the manifest last, on
 * condition of the ETag it started from, so a crash at any point leaves the store loadable, and a writer that lost
 * a race overwrites nothing (its work goes to a conflict copy, as before layers).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckpointInfo, CompactTask, RestoreResult, RestoreTask, SaveResult, SaveTask, UploadTask } from '../../handlers/protocol.js';
import { packTree } from '../archive/pack.js';
import type { ArchiveLimits } from '../archive/types.js';
import { ToolhostError, toToolhostError } from '../errors.js';
import { chownEntries, chownTree, type Owner } from '../process/owner.js';
import { ARCHIVE_FORMATS, archiveName, type ProjectStore, type StoredObject, type StoredProject } from '../store/project-store.js';
import { buildTree, statTree } from './build.js';
import { type Checkpoint, type CheckpointKind, type LayerRef, type Manifest, newCheckpointId } from './format.js';
import { chainRefs, findCheckpoint, nextManifest, openLayer, readManifest, treeOf, uploadLayer, writeManifest } from './manifest.js';
import { type CopyState, readState, writeDelta, writeState } from './scan.js';
import { diffTrees, type Tree } from './tree.js';

/** What the operations need of their thread. */
export interface LayerContext {
  store: ProjectStore;
  limits: ArchiveLimits;
  /** The owner a project's files get (null: not running as root). */
  owner(id: string): Owner | null;
}

/** Loads a layered project's head into `dest`; null when the project has no manifest. */
export async function materializeLayers(c: LayerContext, id: string, dest: string, statePath: string): Promise<{ etag: string; bytes: number } | null> {
  // A plain archive newer than the manifest is the project (dropped over it by hand).
  if ((await c.store.stat(id))?.format !== 'layers') return null;
  const read = await readManifest(c.store, id);
  if (!read) return null;
  const refs = chainRefs(read.manifest, read.manifest.head);
  const tree = await treeOf(c.store, refs);
  const built = await buildTree({ tree, open: (d) => openLayer(c.store, d), layerBytes: sum(refs), dest, limits: c.limits });
  chownTree(dest, c.owner(id));
  writeState(statePath, await statTree(dest, tree));
  return { etag: read.etag, bytes: built.bytes };
}

/** Saves a copy's changes as a layer; see {@link SaveTask}. A lost race stores the whole copy as a conflict copy. */
export async function saveLayers(c: LayerContext, t: SaveTask): Promise<SaveResult> {
  const prev = await currentFor(c, t);
  if (prev === 'conflict') return await conflictCopy(c, t);
  if (t.clean && prev && t.record) {
    // Nothing changed since the last save: the checkpoint is the head as stored.
    const cp = checkpoint(t.record.kind, t.record.label, 0);
    const manifest = nextManifest(prev.manifest, chainRefs(prev.manifest, prev.manifest.head), cp, t.keep, Date.now(), t.pin ? [t.pin] : []);
    const written = await writeManifest(c.store, t.id, manifest, { ifMatch: prev.etag }).catch(async (err: unknown) => {
      if (toToolhostError(err).code === 'save_conflict') return null;
      throw err;
    });
    if (written === null) return await conflictCopy(c, t);
    return { stored: stored(t.id, written.etag, written.size), checkpoint: info(cp), bytesUploaded: 0, treeBytes: null, skipped: [] };
  }
  const state = t.source.kind === 'layers' && prev ? readState(t.statePath) : null;
  const out = join(t.scratch, `layer-${t.id}-${t.stamp}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    const base = state && prev ? chainRefs(prev.manifest, prev.manifest.head) : [];
    const delta = await writeDelta({ root: t.root, exclude: t.exclude, prev: state, chainBytes: sum(base), out, limits: c.limits });
    if (!delta.layer && !t.record && prev) {
      writeState(t.statePath, delta.state); // stats moved (a touch), content did not
      return { stored: stored(t.id, prev.etag, prev.size), checkpoint: null, bytesUploaded: 0, treeBytes: treeBytes(delta.state), skipped: delta.skipped };
    }
    const uploaded = delta.layer ? await uploadLayer(c.store, delta.layer, delta.index) : 0;
    const head: LayerRef[] = delta.layer ? [...base, { digest: delta.layer.digest, bytes: delta.layer.bytes }] : base;
    const cp = checkpoint(t.record?.kind ?? t.recordAs, t.record?.label ?? null, uploaded);
    const manifest = nextManifest(prev ? prev.manifest : null, head, cp, t.keep, Date.now(), t.pin ? [t.pin] : []);
    let written: StoredObject;
    try {
      written = await writeManifest(c.store, t.id, manifest, prev ? { ifMatch: prev.etag } : { ifNoneMatch: '*' });
    } catch (err) {
      if (toToolhostError(err).code !== 'save_conflict') throw err;
      return await conflictCopy(c, t);
    }
    writeState(t.statePath, delta.state);
    // The archive it came from, only at the version it came from: one placed there since is newer, and stays.
    if (t.source.kind === 'archive') await c.store.deleteObject(archiveName(t.id, t.source.format), { ifMatch: t.source.etag });
    return {
      stored: stored(t.id, written.etag, written.size),
      checkpoint: info(cp),
      bytesUploaded: uploaded,
      treeBytes: treeBytes(delta.state),
      skipped: delta.skipped,
    };
  } finally {
    rmSync(out, { force: true });
  }
}

/**
 * The manifest the save builds on, checked against where the copy came from: `conflict` when someone else wrote
 * the project since, null when there is no manifest yet (the copy came from a plain archive, or is new).
 */
async function currentFor(c: LayerContext, t: SaveTask): Promise<{ manifest: Manifest; etag: string; size: number } | null | 'conflict'> {
  const read = await readManifest(c.store, t.id);
  const src = t.source;
  const now = await c.store.stat(t.id);
  // The manifest must still be the project: unchanged, and no plain archive placed over it since.
  if (src.kind === 'layers') return read && read.etag === src.etag && now?.format === 'layers' ? { ...read, size: 0 } : 'conflict';
  // From a plain archive that is still the project (newer than any manifest): its checkpoints carry on.
  if (src.kind === 'archive') return now && now.format === src.format && now.etag === src.etag ? (read ? { ...read, size: 0 } : null) : 'conflict';
  return now ? 'conflict' : null;
}

/** Stores the whole copy beside the project as a conflict copy (nothing of the other writer is touched). */
async function conflictCopy(c: LayerContext, t: SaveTask): Promise<SaveResult> {
  const out = join(t.scratch, `conflict-${t.id}-${t.stamp}-${Math.random().toString(36).slice(2)}`);
  try {
    const packed = await packTree({ root: t.root, format: 'tar.gz', out, exclude: t.exclude, limits: c.limits });
    const conflict = await c.store.putConflict(t.id, 'tar.gz', out, t.stamp);
    return { conflict, currentEtag: (await c.store.stat(t.id))?.etag ?? null, skipped: packed.skipped };
  } finally {
    rmSync(out, { force: true });
  }
}

/** Stores an extracted upload as the project's new base layer; see {@link UploadTask}. */
export async function uploadLayers(c: LayerContext, t: UploadTask): Promise<{ etag: string; state: CopyState }> {
  const prev = await readManifest(c.store, t.id);
  const archives = (await c.store.listObjects(t.id)).filter((o) => ARCHIVE_FORMATS.some((f) => o.name === archiveName(t.id, f)));
  if (t.create && (prev || archives.length > 0)) throw exists(t.id);
  const out = join(t.scratch, `upload-${t.id}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    const delta = await writeDelta({ root: t.root, exclude: [], prev: null, chainBytes: 0, out, limits: c.limits });
    const uploaded = delta.layer ? await uploadLayer(c.store, delta.layer, delta.index) : 0;
    const head = delta.layer ? [{ digest: delta.layer.digest, bytes: delta.layer.bytes }] : [];
    const manifest = nextManifest(prev?.manifest ?? null, head, checkpoint(t.recordAs, null, uploaded), t.keep, Date.now());
    let written: StoredObject;
    try {
      written = await writeManifest(c.store, t.id, manifest, prev ? { ifMatch: prev.etag } : { ifNoneMatch: '*' });
    } catch (err) {
      if (toToolhostError(err).code === 'save_conflict') {
        throw new ToolhostError('project_exists', `project "${t.id}" was written by someone else during the upload; nothing was replaced: retry`, {
          project_id: t.id,
        });
      }
      throw err;
    }
    // The archives the upload replaces, at the versions seen before it: one placed there since is newer, and stays.
    for (const a of archives) await c.store.deleteObject(a.name, { ifMatch: a.etag });
    writeState(t.statePath, delta.state);
    return { etag: written.etag, state: delta.state };
  } finally {
    rmSync(out, { force: true });
  }
}

function exists(id: string): ToolhostError {
  return new ToolhostError('project_exists', `project "${id}" already exists; pick another project id (or replace it with PUT /projects/${id}?replace=true)`, {
    project_id: id,
  });
}

/** Builds a checkpoint's tree beside the copy and makes it the project's head; see {@link RestoreTask}. */
export async function restoreLayers(c: LayerContext, t: RestoreTask): Promise<RestoreResult> {
  const read = await readManifest(c.store, t.id);
  if (!read || read.etag !== t.etag) {
    throw new ToolhostError('save_conflict', `project "${t.id}" was saved by another writer during the restore; nothing was restored, retry`, {
      project_id: t.id,
    });
  }
  const cp = findCheckpoint(t.id, read.manifest, t.checkpointId);
  const refs = chainRefs(read.manifest, cp.layers);
  const tree = await treeOf(c.store, refs);
  const state = readState(t.statePath) ?? new Map();
  const built = await buildTree({
    tree,
    open: (d) => openLayer(c.store, d),
    layerBytes: sum(refs),
    dest: t.dest,
    limits: c.limits,
    reuse: { root: t.root, state },
  });
  try {
    // Linked files are the copy's own already: only what the build made gets the project's owner.
    chownEntries(t.dest, built.made, c.owner(t.id));
    writeState(t.pendingState, await statTree(t.dest, tree));
    const manifest: Manifest = { ...read.manifest, head: [...cp.layers] };
    const written = await writeManifest(c.store, t.id, manifest, { ifMatch: read.etag });
    const diff = diffTrees(state as Tree, tree);
    return { etag: written.etag, bytes: built.bytes, files_written: built.written, files_deleted: diff.deleted.length };
  } catch (err) {
    rmSync(t.dest, { recursive: true, force: true });
    rmSync(t.pendingState, { force: true });
    throw err;
  }
}

/** Makes project `newId` from `id`'s head or one of its checkpoints: a new manifest naming the same layers. */
export async function forkLayers(c: LayerContext, id: string, newId: string, checkpointId: string | null): Promise<{ created_at: string }> {
  const read = await readManifest(c.store, id);
  if (!read) {
    if (checkpointId) findCheckpoint(id, { v: 1, layers: [], head: [], checkpoints: [] }, checkpointId);
    throw new ToolhostError('internal', `project "${id}" has no manifest to fork from; save it first`);
  }
  const chain = checkpointId ? findCheckpoint(id, read.manifest, checkpointId).layers : read.manifest.head;
  if (await c.store.stat(newId)) throw exists(newId);
  const cp = checkpoint('fork', `fork of ${id}${checkpointId ? ` at ${checkpointId}` : ''}`, 0);
  const manifest = nextManifest(null, chainRefs(read.manifest, chain), cp, { count: 1, maxAgeHours: Number.MAX_SAFE_INTEGER }, Date.now());
  try {
    await writeManifest(c.store, newId, manifest, { ifNoneMatch: '*' });
  } catch (err) {
    if (toToolhostError(err).code === 'save_conflict') throw exists(newId);
    throw err;
  }
  return { created_at: cp.created_at };
}

/**
 * Merges a head chain longer than `maxLayers`: the layers after the base become one (from the clean copy, which
 * is the head's tree), or, when they outweigh half the base, everything becomes a new base. Checkpoints keep the
 * layers they name. Resolves with the manifest's new ETag, or null when nothing needed merging.
 */
export async function compactLayers(c: LayerContext, t: CompactTask): Promise<string | null> {
  const read = await readManifest(c.store, t.id);
  if (!read || read.etag !== t.etag || read.manifest.head.length <= t.maxLayers) return null;
  const refs = chainRefs(read.manifest, read.manifest.head);
  const base = refs[0]!;
  const whole = sum(refs.slice(1)) > base.bytes / 2;
  const state = readState(t.statePath);
  if (!state) return null;
  // Against the base's tree, with the stat of each file the copy holds unchanged since then (so it is not read).
  const baseTree = await treeOf(c.store, [base]);
  const prev: CopyState | null = whole ? null : new Map([...baseTree].map(([p, n]) => [p, { ...n, ...(statOf(state, p, n) ?? { ino: 0, mt: 0, ct: -1 }) }]));
  const out = join(t.scratch, `compact-${t.id}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    const delta = await writeDelta({ root: t.root, exclude: t.exclude, prev, chainBytes: whole ? 0 : base.bytes, out, limits: c.limits });
    if (!delta.layer) return null;
    await uploadLayer(c.store, delta.layer, delta.index);
    const merged = { digest: delta.layer.digest, bytes: delta.layer.bytes };
    const head = whole ? [merged] : [base, merged];
    const manifest = nextManifest(read.manifest, head, null, { count: Number.MAX_SAFE_INTEGER, maxAgeHours: Number.MAX_SAFE_INTEGER }, Date.now());
    const written = await writeManifest(c.store, t.id, manifest, { ifMatch: read.etag });
    writeState(t.statePath, delta.state);
    return written.etag;
  } finally {
    rmSync(out, { force: true });
  }
}

function statOf(state: CopyState, path: string, n: { t: string; m: number; s: number; h: string }) {
  const s = state.get(path);
  return s && s.t === n.t && s.m === n.m && s.s === n.s && s.h === n.h ? { ino: s.ino, mt: s.mt, ct: s.ct } : null;
}

/** The project's checkpoints, newest first. */
export async function listCheckpoints(c: LayerContext, id: string): Promise<CheckpointInfo[] | null> {
  const read = await readManifest(c.store, id);
  return read ? read.manifest.checkpoints.map(info).reverse() : null;
}

function checkpoint(kind: CheckpointKind, label: string | null, bytes: number): Omit<Checkpoint, 'layers'> {
  const now = Date.now();
  return { id: newCheckpointId(now), created_at: new Date(now).toISOString(), label, kind, bytes_uploaded: bytes };
}

function info(c: Omit<Checkpoint, 'layers'>): CheckpointInfo {
  return { checkpoint_id: c.id, created_at: c.created_at, label: c.label, kind: c.kind, bytes_uploaded: c.bytes_uploaded };
}

function stored(id: string, etag: string, size: number): StoredProject {
  return { id, format: 'layers', size, modifiedAt: new Date().toISOString(), etag };
}

/** Bytes of the files of a copy's state. */
function treeBytes(state: CopyState): number {
  let n = 0;
  for (const node of state.values()) n += node.s;
  return n;
}

function sum(refs: readonly LayerRef[]): number {
  return refs.reduce((n, r) => n + r.bytes, 0);
}
