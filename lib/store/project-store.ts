/**
 * Where projects live as archives: the source of truth behind the local working copies. Two backends sit behind
 * this interface: a local folder (local-store.ts, the embedded default) and Azure Blob Storage (azure-store.ts).
 * `openStore` (create-store.ts) picks one from the configuration; nothing else knows which is in use. Both name
 * their archives the same way (`<id>.zip`, `<id>.tar.gz`, conflict copies `<id>.conflict-<stamp><ext>`), with the
 * helpers at the end of this file.
 */
import type { Readable } from 'node:stream';
import { type ArchiveFormat, archiveExtension } from '../archive/format.js';
import { ToolhostError } from '../errors.js';
import { PROJECT_ID_PATTERN, PROJECT_ID_RULE } from '../schemas.js';

/**
 * How a project is stored: one archive (`zip`, `tar.gz`: uploaded by hand, or by an older toolhost), or layers
 * (`layers`: a manifest `<id>.layers.json` listing content-addressed layers, see lib/layers). When both exist the
 * newer is the project: an archive dropped over a layered project replaces it (its first save becomes the new
 * base layer, the checkpoints stay), and a conversion removes the archive it came from once the manifest is in.
 */
export type StoredFormat = ArchiveFormat | 'layers';

/** A project as the store holds it. */
export interface StoredProject {
  id: string;
  format: StoredFormat;
  /** Archive size in bytes (for `layers`: the manifest's). */
  size: number;
  /** ISO time of the last write. */
  modifiedAt: string;
  /** Opaque version tag; changes whenever the archive changes. */
  etag: string;
}

/** A local file holding a project's archive, ready to extract. */
export interface FetchedArchive {
  file: string;
  format: ArchiveFormat;
  etag: string;
  /** Removes the local copy if the store made one. */
  release(): Promise<void>;
}

/** A project's archive as a byte stream, with the version it belongs to. */
export interface OpenedArchive {
  stream: Readable;
  format: ArchiveFormat;
  /** The ETag of exactly the bytes the stream yields. */
  etag: string;
  size: number;
}

/**
 * A project's archive in the form extraction wants it: a tar.gz as a stream (the download flows straight into
 * extraction), a zip as a local file (its directory is at its end, so it cannot be read front to back).
 */
export type LoadedArchive = ({ kind: 'stream' } & OpenedArchive) | ({ kind: 'file' } & FetchedArchive);

/**
 * The condition of a write:
 * - `{ ifMatch: etag }`: only if the archive of that format is still at that version;
 * - `{ ifNoneMatch: '*' }`: only if the project does not exist yet (no archive of either format);
 * - none: unconditionally.
 * A write whose condition fails throws `save_conflict` and leaves the file in place.
 */
export type PutCondition = { ifMatch: string } | { ifNoneMatch: '*' };

/** One named object of the store beside the archives: a layer, a layer's index, a manifest (lib/layers). */
export interface StoredObject {
  /** Its name, relative to the store (no prefix): see {@link isObjectName}. */
  name: string;
  size: number;
  /** ISO time of the last write. */
  modifiedAt: string;
  /** Opaque version tag; changes whenever the object changes. */
  etag: string;
}

/** The condition of an object write (as {@link PutCondition}, about that one object). */
export type ObjectCondition = { ifMatch: string } | { ifNoneMatch: '*' };

/** A backend that stores project archives. Safe to use from several threads and processes at once. */
export interface ProjectStore {
  /** Every stored project (conflict copies are not projects and are not listed); a manifest makes one too. */
  list(): Promise<StoredProject[]>;
  /** One project (its manifest when it has one, else its newest archive), or null when unknown. */
  stat(id: string): Promise<StoredProject | null>;
  /** A small object (a manifest, an index) read whole, with its etag; null when absent. */
  getObject(name: string): Promise<{ body: Buffer; etag: string } | null>;
  /** An object as a stream (a layer), with the etag and size of exactly those bytes; null when absent. */
  openObject(name: string): Promise<{ stream: Readable; etag: string; size: number } | null>;
  /**
   * Writes object `name` from bytes or a local file (which is left in place), whole or not at all: readers see
   * the old or the new version. Throws `save_conflict` when `condition` fails, writing nothing.
   */
  putObject(name: string, body: Buffer | { file: string }, condition?: ObjectCondition): Promise<StoredObject>;
  /** Deletes object `name`; resolves false when it was absent. With `ifMatch`, only while at that version. */
  deleteObject(name: string, condition?: { ifMatch: string }): Promise<boolean>;
  /** Every object whose name starts with `prefix` ("layers/", or "" for all of them, archives included). */
  listObjects(prefix: string): Promise<StoredObject[]>;
  /**
   * The project's archive for extraction, found with one lookup: a tar.gz as a stream, a zip as a local file made
   * in `scratchDir`. Throws `project_not_found`.
   */
  load(id: string, scratchDir: string): Promise<LoadedArchive>;
  /**
   * Stores `file` as the project's archive in `format`. On success the file is consumed (moved or deleted) and,
   * for an unconditional write, an archive of the other format is removed. Throws `save_conflict` when
   * `condition` fails, leaving `file` in place.
   */
  put(id: string, format: ArchiveFormat, file: string, condition?: PutCondition): Promise<StoredProject>;
  /**
   * Stores `file` beside the project as `<id>.conflict-<stamp><ext>` (consumed on success) and returns the name
   * the store holds it under (file name in the folder; blob name, prefix included, in the container). Used when
   * a save lost a race with another writer, so neither version is lost.
   */
  putConflict(id: string, format: ArchiveFormat, file: string, stamp: string): Promise<string>;
  /**
   * Removes the project's archives (either format) and its manifest; resolves true when there was one. Conflict
   * copies stay: they hold another writer's work, which deleting the project was not asked to discard. Layers stay
   * until collection finds no manifest naming them (lib/layers/collect.ts).
   */
  delete(id: string): Promise<boolean>;
}

/** Both archive formats, in the order a store looks for them. */
export const ARCHIVE_FORMATS: readonly ArchiveFormat[] = ['zip', 'tar.gz'];

/** The error for a project the store does not hold. */
export function notFound(id: string): ToolhostError {
  return new ToolhostError('project_not_found', `project "${id}" does not exist; upload it first with PUT /projects/${id} (a zip or tar.gz body)`, {
    project_id: id,
  });
}

/** The error of a write whose {@link PutCondition} failed. */
export function saveConflict(id: string, condition: PutCondition): ToolhostError {
  const message =
    'ifMatch' in condition
      ? `the stored archive of project "${id}" is no longer at version ${condition.ifMatch} (another writer saved it); nothing was overwritten: download the current version, reapply the changes and save again`
      : `project "${id}" already exists in the store (another writer created it); nothing was overwritten: replace it explicitly or pick another project id`;
  return new ToolhostError('save_conflict', message, { project_id: id });
}

/** The name of a project's manifest: `<id>.layers.json`. */
export function manifestName(id: string): string {
  return `${checkedId(id)}${MANIFEST_SUFFIX}`;
}

/** What ends every manifest's name. */
export const MANIFEST_SUFFIX = '.layers.json';

/**
 * A valid object name: one or two "/"-separated parts of letters, digits, ".", "_" and "-", none starting with a
 * "." (so neither ".." nor a store's temp files). Stores refuse any other name with `internal`.
 */
export function isObjectName(name: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,199})?$/.test(name);
}

/** The project a manifest's name belongs to, or null. */
export function parseManifestName(name: string): string | null {
  if (!name.endsWith(MANIFEST_SUFFIX)) return null;
  const id = name.slice(0, -MANIFEST_SUFFIX.length);
  return PROJECT_ID_PATTERN.test(id) ? id : null;
}

/**
 * `name` when it is a valid object name ({@link isObjectName}), else an `internal` error: object names are built by
 * code, never taken from a request, so a bad one is a bug (and must not reach a path or blob name).
 */
export function checkedObjectName(name: string): string {
  if (typeof name === 'string' && isObjectName(name)) return name;
  const shown = JSON.stringify(String(name).slice(0, 120));
  throw new ToolhostError(
    'internal',
    `internal error: ${shown} is not a valid store object name (1 or 2 "/"-separated parts of letters, digits, ".", "_", "-", none starting with ".")`,
  );
}

/** The error of an object write whose {@link ObjectCondition} failed. */
export function objectConflict(name: string, condition: ObjectCondition): ToolhostError {
  const message =
    'ifMatch' in condition
      ? `store object "${name}" changed since version ${condition.ifMatch} was read (another writer saved it); nothing was written: read it again and retry`
      : `store object "${name}" already exists (another writer created it); nothing was written: read it and retry`;
  return new ToolhostError('save_conflict', message, { object: name });
}

/** The content type an object is stored with (Azure), from its name. */
export function objectContentType(name: string): string {
  if (name.endsWith('.json')) return 'application/json';
  if (name.endsWith('.gz')) return 'application/gzip';
  return 'application/octet-stream';
}

/** The name of a project's archive: `<id>.zip` or `<id>.tar.gz`. Refuses an id that could escape the store. */
export function archiveName(id: string, format: ArchiveFormat): string {
  return checkedId(id) + archiveExtension(format);
}

function checkedId(id: string): string {
  // Ids are validated at the HTTP front already; this guards file and blob names against a caller that forgot,
  // since "../x" would otherwise name a file outside the store folder.
  if (PROJECT_ID_PATTERN.test(id)) return id;
  throw new ToolhostError('invalid_project_id', `"${id}" is not a valid project id: it must be ${PROJECT_ID_RULE}`, { project_id: id });
}

const STAMP_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** The name of a conflict copy: `<id>.conflict-<stamp><ext>`. */
export function conflictName(id: string, format: ArchiveFormat, stamp: string): string {
  if (!STAMP_PATTERN.test(stamp)) throw new ToolhostError('internal', `internal error: conflict stamp "${stamp}" is not 1-64 letters, digits, ".", "_" or "-"`);
  return `${checkedId(id)}.conflict-${stamp}${archiveExtension(format)}`;
}

/**
 * The project an archive name (a file name, or a blob name without the store's prefix) belongs to, or null when
 * it is not a project archive: a conflict copy, a temp file, or anything else that happens to sit there.
 * Project ids never end in `.conflict-<something>` (PROJECT_ID_PATTERN), so the two cannot be confused.
 */
export function parseArchiveName(name: string): { id: string; format: ArchiveFormat } | null {
  const format = ARCHIVE_FORMATS.find((f) => name.endsWith(archiveExtension(f)));
  if (!format) return null;
  const id = name.slice(0, -archiveExtension(format).length);
  if (!PROJECT_ID_PATTERN.test(id)) return null;
  return { id, format };
}

/**
 * The newer of two archives of one project: both exist for a moment while an unconditional write switches
 * formats (the new one is stored before the old one is removed). A tie keeps `a`.
 */
export function newest(a: StoredProject | null, b: StoredProject | null): StoredProject | null {
  if (!a || !b) return a ?? b;
  return b.modifiedAt > a.modifiedAt ? b : a;
}

/** What a project is of two finds of it (a manifest, an archive): the newer, a manifest winning a tie. */
export function current(a: StoredProject | null, b: StoredProject | null): StoredProject | null {
  if (!a || !b) return a ?? b;
  // A tie goes to the manifest: a conversion writes it after the archive it came from.
  if (a.format === 'layers' && b.modifiedAt <= a.modifiedAt) return a;
  if (b.format === 'layers' && a.modifiedAt <= b.modifiedAt) return b;
  return newest(a, b);
}
