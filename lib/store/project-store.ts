/**
 * Where projects live as archives: the source of truth behind the local working copies. The embedded backend is
 * a local folder (local-store.ts); an object-storage backend plugs in behind the same interface.
 */
import type { ArchiveFormat } from '../archive/format.js';

/** A project as the store holds it. */
export interface StoredProject {
  id: string;
  format: ArchiveFormat;
  /** Archive size in bytes. */
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

/** A backend that stores project archives. */
export interface ProjectStore {
  /** Every stored project. */
  list(): Promise<StoredProject[]>;
  /** One project, or null when unknown. */
  stat(id: string): Promise<StoredProject | null>;
  /** A local file of the project's archive; throws `project_not_found` when unknown. */
  fetch(id: string, scratchDir: string): Promise<FetchedArchive>;
  /** Stores `file` (consumed) as the project's archive, replacing any archive of the other format. */
  put(id: string, format: ArchiveFormat, file: string): Promise<StoredProject>;
}
