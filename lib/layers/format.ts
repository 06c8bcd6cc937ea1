/**
 * The layered store format: what a project's manifest, a layer and a layer's index are, their names in the store
 * and their checks. A project saved by toolhost is, in the store:
 *   - `<id>.layers.json`, its manifest (small, rewritten on condition of its ETag by every save);
 *   - `layers/<sha256>.tar.gz`, layers (a tar.gz of the entries added or changed since the layer before), named by
 *     the digest of their bytes, so a layer is written once and shared by every checkpoint and fork naming it;
 *   - `layers/<sha256>.json.gz`, each layer's index (its entries with their digests, and the paths it deletes).
 * A tree is its base layer with the later layers applied in order, as OCI image layers are; deletions live in the
 * index, never as marker files in the tar (a project may hold a file called `.wh.x`).
 *
 * What the store hands back is checked here before anything uses it: a manifest or index that does not parse, or
 * that names a path that could leave the project, is refused as `bad_archive`.
 */
import { z } from 'zod';
import { ToolhostError } from '../errors.js';

/** The kind of a tree entry: folder, regular file, symlink. */
export type NodeKind = 'd' | 'f' | 'l';

/** One entry of a tree: its kind, permission bits, size (files) and content: a file's sha256, a link's target. */
export interface TreeNode {
  t: NodeKind;
  /** Permission bits (st_mode & 0o777). */
  m: number;
  /** Bytes (files; 0 otherwise). */
  s: number;
  /** A file's sha256 in hex, a symlink's target, "" for a folder. */
  h: string;
}

/** An index entry as stored: [path, kind, mode, size, content]. */
export type IndexEntry = [string, NodeKind, number, number, string];

/** A layer's index: the paths it deletes (applied first, with everything under them), then its entries. */
export interface LayerIndex {
  v: 1;
  deleted: string[];
  entries: IndexEntry[];
}

/** A layer as a manifest names it. */
export interface LayerRef {
  digest: string;
  /** Size of the layer's tar.gz. */
  bytes: number;
}

/** Why a checkpoint was taken. */
export type CheckpointKind = 'save' | 'autosave' | 'manual' | 'auto' | 'before-restore' | 'upload' | 'fork' | 'create';

/** A checkpoint: a tree, as the layers (indexes into the manifest's `layers`) that make it. */
export interface Checkpoint {
  id: string;
  created_at: string;
  label: string | null;
  kind: CheckpointKind;
  layers: number[];
  /** Bytes the store took to record it (its new layer and index; 0 when nothing changed). */
  bytes_uploaded: number;
}

/** A project's manifest. `head` is the stored tree now; checkpoints are oldest first. */
export interface Manifest {
  v: 1;
  layers: LayerRef[];
  head: number[];
  checkpoints: Checkpoint[];
}

/** The store name of a layer's data. */
export function layerName(digest: string): string {
  return `layers/${digest}.tar.gz`;
}

/** The store name of a layer's index. */
export function indexName(digest: string): string {
  return `layers/${digest}.json.gz`;
}

/** The digest a store name of a layer or index carries, or null for any other name. */
export function digestOf(name: string): string | null {
  const m = /^layers\/([0-9a-f]{64})\.(?:tar|json)\.gz$/.exec(name);
  return m ? m[1]! : null;
}

const DIGEST = /^[0-9a-f]{64}$/;
/** A checkpoint id: `cp_` and lowercase letters and digits. */
export const CHECKPOINT_ID_PATTERN = /^cp_[a-z0-9]{1,40}$/;

/**
 * Whether `path` is a tree path that stays in the project: relative, "/"-separated, no empty, "." or ".."
 * part, no backslash or NUL, at most 4095 bytes.
 */
export function isTreePath(path: string): boolean {
  if (path.length === 0 || Buffer.byteLength(path) > 4095 || path.includes('\\') || path.includes('\0')) return false;
  return path.split('/').every((p) => p !== '' && p !== '.' && p !== '..');
}

const treePath = z.string().refine(isTreePath, 'not a relative path inside the project');
const indexSchema = z.strictObject({
  v: z.literal(1),
  deleted: z.array(treePath),
  entries: z.array(z.tuple([treePath, z.enum(['d', 'f', 'l']), z.number().int().min(0).max(0o777), z.number().int().min(0), z.string().max(4095)])),
});
const layerIndexes = z.array(z.number().int().min(0));
const manifestSchema = z
  .strictObject({
    v: z.literal(1),
    layers: z.array(z.strictObject({ digest: z.string().regex(DIGEST), bytes: z.number().int().min(0) })),
    head: layerIndexes,
    checkpoints: z.array(
      z.strictObject({
        id: z.string().regex(CHECKPOINT_ID_PATTERN),
        created_at: z.string(),
        label: z
          .string()
          .max(200)
          .refine((l) => !/\p{Cc}/u.test(l), 'a label with control characters')
          .nullable(),
        kind: z.enum(['save', 'autosave', 'manual', 'auto', 'before-restore', 'upload', 'fork', 'create']),
        layers: layerIndexes,
        bytes_uploaded: z.number().int().min(0),
      }),
    ),
  })
  .refine(
    (m) => [m.head, ...m.checkpoints.map((c) => c.layers)].every((chain) => chain.every((i) => i < m.layers.length)),
    'a chain names a layer it does not list',
  );

/** Parses a manifest read from the store; `bad_archive` when it is not one. */
export function parseManifest(id: string, body: Buffer): Manifest {
  return parsed(manifestSchema, body, `the manifest of project "${id}"`) as Manifest;
}

/** Parses a layer's index read from the store (already gunzipped); `bad_archive` when it is not one. */
export function parseIndex(digest: string, body: Buffer): LayerIndex {
  return parsed(indexSchema, body, `the index of layer ${digest}`) as LayerIndex;
}

function parsed(schema: z.ZodType, body: Buffer, what: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ToolhostError('bad_archive', `${what} in the store is not JSON; restore it from a backup or delete the project`);
  }
  const r = schema.safeParse(json);
  if (!r.success)
    throw new ToolhostError('bad_archive', `${what} in the store is malformed (${r.error.issues[0]?.message}); restore it from a backup or delete the project`);
  return r.data;
}

/** A new checkpoint id: time-ordered (base-36 milliseconds) with random letters against collisions. */
export function newCheckpointId(now: number): string {
  return `cp_${now.toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}
