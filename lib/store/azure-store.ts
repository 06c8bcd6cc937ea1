/**
 * The project store on Azure Blob Storage: blobs `<prefix><project_id>.zip` or `<prefix><project_id>.tar.gz` in
 * one container, conflict copies beside them, other objects (layers, manifests) as blobs `<prefix><name>`.
 * Conditional writes use the blob service's own If-Match / If-None-Match, so writers on any number of machines
 * cannot overwrite each other unseen.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { BlobClient, BlobServiceClient, BlobUploadCommonResponse, ContainerClient, StorageRetryOptions } from '@azure/storage-blob';
import { type ArchiveFormat, archiveExtension } from '../archive/format.js';
import { ToolhostError } from '../errors.js';
import { asStoreError, isConditionFailure, messageOf, quoted, redact, statusOf } from './azure-errors.js';
import {
  ARCHIVE_FORMATS,
  archiveName,
  checkedObjectName,
  conflictName,
  current,
  type FetchedArchive,
  isObjectName,
  type LoadedArchive,
  manifestName,
  newest,
  notFound,
  type ObjectCondition,
  objectConflict,
  objectContentType,
  type ProjectStore,
  type PutCondition,
  parseArchiveName,
  parseManifestName,
  type StoredObject,
  type StoredProject,
  saveConflict,
} from './project-store.js';

/** Where and how to reach the container: the `store.azure` section of the configuration, plus tuning. */
export interface AzureStoreOptions {
  /** Storage account connection string; takes precedence over `accountUrl`. Never logged. */
  connectionString?: string | null;
  /** Blob endpoint (`https://<account>.blob.core.windows.net`), authenticated with DefaultAzureCredential. */
  accountUrl?: string | null;
  /** Container of the archives; created by {@link AzureBlobStore.init} when missing. */
  container: string;
  /** Blob name prefix of every archive: empty, or ending in "/". */
  prefix?: string;
  /** Retry policy of every request; {@link DEFAULT_RETRY_OPTIONS} when absent. */
  retryOptions?: StorageRetryOptions;
}

/**
 * Retries of production: 5 tries, 0 + 1 + 3 + 7 s apart (exponential), so a throttled or briefly unreachable
 * account is ridden out in about 11 s and a dead one is reported as `store_unavailable` soon after, well inside
 * an HTTP request's deadline. The SDK's own default (4 tries, 4 s base) waits 16 s for the same answer.
 */
export const DEFAULT_RETRY_OPTIONS: StorageRetryOptions = { maxTries: 5, retryDelayInMs: 1_000, maxRetryDelayInMs: 16_000 };

/** Block size of uploads, and the size above which a file goes up in parallel blocks rather than one request. */
const BLOCK_BYTES = 8 * 1024 * 1024;
const UPLOAD_CONCURRENCY = 4;
/** How often a download stream that drops is resumed (on the same ETag) before it fails. */
const DOWNLOAD_RESUMES = 5;
const CONTENT_TYPE: Record<ArchiveFormat, string> = { zip: 'application/zip', 'tar.gz': 'application/gzip' };

/** {@link ProjectStore} on an Azure Blob Storage container. Call {@link AzureBlobStore.init} before use. */
export class AzureBlobStore implements ProjectStore {
  readonly #options: AzureStoreOptions;
  readonly #prefix: string;
  #client: ContainerClient | undefined;

  /** Keeps the options; nothing is contacted until {@link AzureBlobStore.init}. */
  constructor(options: AzureStoreOptions) {
    this.#options = options;
    this.#prefix = options.prefix ?? '';
  }

  /** Connects (credential, container client) and creates the container when missing. */
  async init(): Promise<void> {
    const { connectionString, accountUrl, container } = this.#options;
    const pipeline = { retryOptions: this.#options.retryOptions ?? DEFAULT_RETRY_OPTIONS };
    // Loaded here, not at the top: the SDK takes ~0.4 s to load, which pool threads of a local-store deployment
    // should not pay (and a dynamic import is all tsx lets pool threads load lazily in tests).
    const { BlobServiceClient } = await import('@azure/storage-blob');
    let service: BlobServiceClient;
    if (connectionString) {
      try {
        service = BlobServiceClient.fromConnectionString(connectionString, pipeline);
      } catch (err) {
        throw new ToolhostError(
          'invalid_config',
          `store.azure.connectionString is not a usable storage connection string (${redact(messageOf(err))}); copy it again from the storage account's Access keys`,
        );
      }
    } else if (accountUrl) {
      if (!accountUrl.startsWith('https://')) {
        // The SDK refuses to send a bearer token over plain HTTP; say so before the first request does.
        throw new ToolhostError(
          'invalid_config',
          `store.azure.accountUrl must be an https:// URL to authenticate with DefaultAzureCredential (it is not); use https, or a connection string for an emulator`,
        );
      }
      // Loaded only here: @azure/identity is large and a connection string (or the local store) never needs it.
      const { DefaultAzureCredential } = await import('@azure/identity');
      service = new BlobServiceClient(accountUrl, new DefaultAzureCredential(), pipeline);
    } else {
      throw new ToolhostError(
        'invalid_config',
        'store.backend is "azure" but neither store.azure.connectionString nor store.azure.accountUrl is set; set one of them',
      );
    }
    const client = service.getContainerClient(container);
    try {
      await client.createIfNotExists();
    } catch (err) {
      // A role scoped to blobs (no container write) can still use an existing container: check that it can list.
      if (statusOf(err) !== 403) throw this.#asStoreError('create the container', err);
      try {
        await client.listBlobsFlat({ prefix: this.#prefix }).byPage({ maxPageSize: 1 }).next();
      } catch (probe) {
        throw this.#asStoreError('list the container', probe);
      }
    }
    this.#client = client;
  }

  async stat(id: string): Promise<StoredProject | null> {
    const [manifest, archive] = await Promise.all([this.#statManifest(id), this.#statArchive(id)]);
    return current(manifest, archive);
  }

  async list(): Promise<StoredProject[]> {
    const byId = new Map<string, StoredProject>();
    try {
      for await (const item of this.#container().listBlobsFlat({ prefix: this.#prefix })) {
        const name = item.name.slice(this.#prefix.length);
        const manifest = parseManifestName(name);
        const parsed = manifest === null ? parseArchiveName(name) : { id: manifest, format: 'layers' as const };
        if (!parsed) continue;
        const p = item.properties;
        const found = { ...parsed, size: p.contentLength ?? 0, modifiedAt: p.lastModified.toISOString(), etag: quoted(p.etag) };
        byId.set(found.id, current(byId.get(found.id) ?? null, found)!);
      }
    } catch (err) {
      throw this.#asStoreError('list the projects', err);
    }
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async load(id: string, scratchDir: string): Promise<LoadedArchive> {
    await mkdir(scratchDir, { recursive: true });
    return this.#withCurrent(
      id,
      async (blob, format): Promise<LoadedArchive> =>
        format === 'zip' ? { kind: 'file', ...(await this.#download(blob, format, scratchDir)) } : { kind: 'stream', format, ...(await this.#stream(blob)) },
    );
  }

  /** Downloads a blob into a new file of `scratchDir`. */
  async #download(blob: BlobClient, format: ArchiveFormat, scratchDir: string): Promise<FetchedArchive> {
    const file = join(scratchDir, `fetch-${randomUUID()}${archiveExtension(format)}`);
    try {
      // One GET (resumed on the same ETag if the connection drops): its ETag is that of the bytes on disk.
      const res = await blob.downloadToFile(file, 0, undefined, { maxRetryRequests: DOWNLOAD_RESUMES });
      return { file, format, etag: quoted(res.etag), release: () => rm(file, { force: true }) };
    } catch (err) {
      await rm(file, { force: true });
      throw err;
    }
  }

  /** Starts the download of a blob as a stream (resumed on the same ETag if the connection drops). */
  async #stream(blob: BlobClient): Promise<{ stream: Readable; etag: string; size: number }> {
    const res = await blob.download(0, undefined, { maxRetryRequests: DOWNLOAD_RESUMES });
    const body = res.readableStreamBody;
    if (!body) throw new ToolhostError('internal', `internal error: the download of ${blob.name} returned no body`);
    return { stream: body instanceof Readable ? body : Readable.from(body), etag: quoted(res.etag), size: res.contentLength ?? 0 };
  }

  async put(id: string, format: ArchiveFormat, file: string, condition?: PutCondition): Promise<StoredProject> {
    const blob = this.#blob(archiveName(id, format));
    const { size } = await stat(file);
    if (condition && 'ifNoneMatch' in condition) {
      // The service checks only this format's blob atomically; the other format is checked just before. Two
      // creates racing in different formats could both succeed; stat and list then show the newer one.
      // A manifest makes the project too: a create must not shadow it.
      const others = await Promise.all([this.#statFormat(id, otherFormat(format)), this.#statObject(manifestName(id))]);
      if (others.some(Boolean)) throw saveConflict(id, condition);
    }
    let res: BlobUploadCommonResponse;
    try {
      res = await blob.getBlockBlobClient().uploadFile(file, {
        conditions: condition && ('ifMatch' in condition ? { ifMatch: condition.ifMatch } : { ifNoneMatch: '*' }),
        blockSize: BLOCK_BYTES,
        maxSingleShotSize: BLOCK_BYTES,
        concurrency: UPLOAD_CONCURRENCY,
        blobHTTPHeaders: { blobContentType: CONTENT_TYPE[format] },
      });
    } catch (err) {
      // A retried request whose first try did succeed also ends here (the retry sees the new ETag): the caller
      // then keeps a conflict copy of what is in fact the stored version, which loses nothing.
      if (condition && isConditionFailure(err, condition)) throw saveConflict(id, condition);
      throw this.#asStoreError(`upload ${blob.name}`, err);
    }
    await rm(file, { force: true });
    if (!condition) await this.#delete(this.#blob(archiveName(id, otherFormat(format))));
    return { id, format, size, modifiedAt: (res.lastModified ?? new Date()).toISOString(), etag: quoted(res.etag) };
  }

  async putConflict(id: string, format: ArchiveFormat, file: string, stamp: string): Promise<string> {
    const blob = this.#blob(conflictName(id, format, stamp));
    try {
      await blob.getBlockBlobClient().uploadFile(file, {
        blockSize: BLOCK_BYTES,
        maxSingleShotSize: BLOCK_BYTES,
        concurrency: UPLOAD_CONCURRENCY,
        blobHTTPHeaders: { blobContentType: CONTENT_TYPE[format] },
      });
    } catch (err) {
      throw this.#asStoreError(`upload ${blob.name}`, err);
    }
    await rm(file, { force: true });
    return blob.name;
  }

  async delete(id: string): Promise<boolean> {
    const names = [...ARCHIVE_FORMATS.map((f) => archiveName(id, f)), manifestName(id)];
    const gone = await Promise.all(names.map((name) => this.#delete(this.#blob(name))));
    return gone.some(Boolean);
  }

  async getObject(name: string): Promise<{ body: Buffer; etag: string } | null> {
    const blob = this.#blob(checkedObjectName(name));
    try {
      const { stream, etag } = await this.#stream(blob);
      return { body: Buffer.concat((await stream.toArray()) as Buffer[]), etag };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw this.#asStoreError(`download ${blob.name}`, err);
    }
  }

  async openObject(name: string): Promise<{ stream: Readable; etag: string; size: number } | null> {
    const blob = this.#blob(checkedObjectName(name));
    try {
      return await this.#stream(blob);
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw this.#asStoreError(`download ${blob.name}`, err);
    }
  }

  async putObject(name: string, body: Buffer | { file: string }, condition?: ObjectCondition): Promise<StoredObject> {
    const blob = this.#blob(checkedObjectName(name)).getBlockBlobClient();
    const conditions = condition && ('ifMatch' in condition ? { ifMatch: condition.ifMatch } : { ifNoneMatch: '*' });
    const blobHTTPHeaders = { blobContentType: objectContentType(name) };
    const size = Buffer.isBuffer(body) ? body.length : (await stat(body.file)).size;
    let res: BlobUploadCommonResponse;
    try {
      res = Buffer.isBuffer(body)
        ? await blob.upload(body, body.length, { conditions, blobHTTPHeaders })
        : await blob.uploadFile(body.file, {
            conditions,
            blobHTTPHeaders,
            blockSize: BLOCK_BYTES,
            maxSingleShotSize: BLOCK_BYTES,
            concurrency: UPLOAD_CONCURRENCY,
          });
    } catch (err) {
      if (condition && isConditionFailure(err, condition)) throw objectConflict(name, condition);
      throw this.#asStoreError(`upload ${blob.name}`, err);
    }
    return { name, size, modifiedAt: (res.lastModified ?? new Date()).toISOString(), etag: quoted(res.etag) };
  }

  /** With `ifMatch` and another version stored, resolves false and deletes nothing (as when absent). */
  async deleteObject(name: string, condition?: { ifMatch: string }): Promise<boolean> {
    const blob = this.#blob(checkedObjectName(name));
    try {
      return (await blob.deleteIfExists({ deleteSnapshots: 'include', conditions: condition && { ifMatch: condition.ifMatch } })).succeeded;
    } catch (err) {
      if (condition && isConditionFailure(err, condition)) return false;
      throw this.#asStoreError(`delete ${blob.name}`, err);
    }
  }

  /** Blobs under the store's prefix whose rest is an object name (see isObjectName), sorted by name. */
  async listObjects(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    try {
      for await (const item of this.#container().listBlobsFlat({ prefix: this.#prefix + prefix })) {
        const name = item.name.slice(this.#prefix.length);
        if (!isObjectName(name)) continue;
        const p = item.properties;
        found.push({ name, size: p.contentLength ?? 0, modifiedAt: p.lastModified.toISOString(), etag: quoted(p.etag) });
      }
    } catch (err) {
      throw this.#asStoreError(`list the objects under "${prefix}"`, err);
    }
    return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  #container(): ContainerClient {
    if (!this.#client) throw new ToolhostError('internal', 'internal error: the Azure project store was used before init()');
    return this.#client;
  }

  #blob(name: string): BlobClient {
    return this.#container().getBlobClient(this.#prefix + name);
  }

  async #statFormat(id: string, format: ArchiveFormat): Promise<StoredProject | null> {
    const found = await this.#statObject(archiveName(id, format));
    return found && { id, format, size: found.size, modifiedAt: found.modifiedAt, etag: found.etag };
  }

  async #statManifest(id: string): Promise<StoredProject | null> {
    const found = await this.#statObject(manifestName(id));
    return found && { id, format: 'layers', size: found.size, modifiedAt: found.modifiedAt, etag: found.etag };
  }

  async #statArchive(id: string): Promise<StoredProject | null> {
    const [zip, tgz] = await Promise.all(ARCHIVE_FORMATS.map((f) => this.#statFormat(id, f)));
    return newest(zip ?? null, tgz ?? null);
  }

  async #statObject(name: string): Promise<StoredObject | null> {
    const blob = this.#blob(name);
    try {
      const p = await blob.getProperties();
      return { name, size: p.contentLength ?? 0, modifiedAt: (p.lastModified ?? new Date()).toISOString(), etag: quoted(p.etag) };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw this.#asStoreError(`read ${blob.name}`, err);
    }
  }

  /** Deletes a blob if it exists; resolves true when it did. */
  async #delete(blob: BlobClient): Promise<boolean> {
    try {
      return (await blob.deleteIfExists({ deleteSnapshots: 'include' })).succeeded;
    } catch (err) {
      throw this.#asStoreError(`delete ${blob.name}`, err);
    }
  }

  /**
   * Runs `use` on the blob of the project's current archive. When that blob vanishes between the stat and
   * `use` (a write switched formats), looks once more before calling the project unknown.
   */
  async #withCurrent<T>(id: string, use: (blob: BlobClient, format: ArchiveFormat) => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const found = await this.#statArchive(id);
      if (!found || found.format === 'layers') break;
      const blob = this.#blob(archiveName(id, found.format));
      try {
        return await use(blob, found.format);
      } catch (err) {
        if (statusOf(err) !== 404) throw this.#asStoreError(`download ${blob.name}`, err);
      }
    }
    throw notFound(id);
  }

  /** `store_unavailable` for a failure of the service, the network or the credential (see {@link asStoreError}). */
  #asStoreError(action: string, err: unknown): unknown {
    return asStoreError(this.#options, action, err);
  }
}

function otherFormat(format: ArchiveFormat): ArchiveFormat {
  return format === 'zip' ? 'tar.gz' : 'zip';
}
