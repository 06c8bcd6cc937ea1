/** The embedded project store: `<dir>/<project_id>.zip` or `<dir>/<project_id>.tar.gz` on local disk. */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { archiveExtension, type ArchiveFormat } from '../archive/format.js';
import { ToolhostError, errnoCode } from '../errors.js';
import { PROJECT_ID_PATTERN } from '../schemas.js';
import type { FetchedArchive, ProjectStore, StoredProject } from './project-store.js';

const FORMATS: readonly ArchiveFormat[] = ['zip', 'tar.gz'];

/** {@link ProjectStore} on a local folder. */
export class LocalStore implements ProjectStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** Creates the folder. */
  async init(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
  }

  #path(id: string, format: ArchiveFormat): string {
    return join(this.#dir, id + archiveExtension(format));
  }

  async #statFormat(id: string, format: ArchiveFormat): Promise<StoredProject | null> {
    try {
      const st = await stat(this.#path(id, format));
      if (!st.isFile()) return null;
      return { id, format, size: st.size, modifiedAt: st.mtime.toISOString(), etag: `"${st.mtimeMs.toString(16)}-${st.size.toString(16)}-${st.ino.toString(16)}"` };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw err;
    }
  }

  async stat(id: string): Promise<StoredProject | null> {
    for (const format of FORMATS) {
      const found = await this.#statFormat(id, format);
      if (found) return found;
    }
    return null;
  }

  async list(): Promise<StoredProject[]> {
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    const out: StoredProject[] = [];
    for (const name of names.sort()) {
      const format = FORMATS.find((f) => name.endsWith(archiveExtension(f)));
      if (!format) continue;
      const id = name.slice(0, -archiveExtension(format).length);
      if (!PROJECT_ID_PATTERN.test(id)) continue;
      const found = await this.#statFormat(id, format);
      if (found) out.push(found);
    }
    return out;
  }

  async fetch(id: string): Promise<FetchedArchive> {
    const found = await this.stat(id);
    if (!found) throw notFound(id);
    // The archive is already a local file: extract it in place, nothing to clean up.
    return { file: this.#path(id, found.format), format: found.format, etag: found.etag, release: async () => {} };
  }

  async put(id: string, format: ArchiveFormat, file: string): Promise<StoredProject> {
    await rename(file, this.#path(id, format));
    for (const other of FORMATS) if (other !== format) await rm(this.#path(id, other), { force: true });
    return (await this.#statFormat(id, format))!;
  }
}

/** The error for a project the store does not hold. */
export function notFound(id: string): ToolhostError {
  return new ToolhostError('project_not_found', `project "${id}" does not exist; upload it first with PUT /projects/${id} (a zip or tar.gz body)`, {
    project_id: id,
  });
}
