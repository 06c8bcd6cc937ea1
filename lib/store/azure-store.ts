/**
 * The project store on Azure Blob Storage: blobs `<prefix><project_id>.zip` or `<prefix><project_id>.tar.gz` in
 * one container, conflict copies beside them, other objects (layers, manifests) as blobs `<prefix><name>`.
 * Conditional writes use the blob service's own If-Match / If-None-Match, so writers on any number of machines
 * cannot overwrite each other unseen.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobClient, BlobServiceClient, BlobUploadCommonResponse, ContainerClient, StorageRetryOptions } from '@azure/storage-blob';
import { type ArchiveFormat, archiveExtension } from '../archive/format.js';
import { CallDeadline, DEFAULT_DEADLINES, type DeadlineSettings } from '../azure-deadline.js';
import { ToolhostError } from '../errors.js';
import { asStoreError, isConditionFailure, messageOf, quoted, redact, statusOf } from './azure-errors.js';
import { downloadBlob, openBlob, retryOptionsFor, uploadBlobFile } from './azure-transfer.js';
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
  /** Retry policy of every request; {@link retryOptionsFor} the deadlines when absent. */
  retryOptions?: StorageRetryOptions;
  /** Seconds every call may take besides moving its bytes, retries included ({@link DEFAULT_DEADLINES} when absent). */
  deadlineBaseS?: number;
  /** Slowest transfer rate tolerated (bytes/s): a call moving N bytes may take N / rate seconds more. */
  minBytesPerS?: number;
}

const CONTENT_TYPE: Record<ArchiveFormat, string> = { zip: 'application/zip', 'tar.gz': 'application/gzip' };

/** {@link ProjectStore} on an Azure Blob Storage container. Call {@link AzureBlobStore.init} before use. */
export class AzureBlobStore implements ProjectStore {
  readonly #options: AzureStoreOptions;
  readonly #prefix: string;
  readonly #deadlines: DeadlineSettings;
  #client: ContainerClient | undefined;

  /** Keeps the options; nothing is contacted until {@link AzureBlobStore.init}. */
  constructor(options: AzureStoreOptions) {
    this.#options = options;
    this.#prefix = options.prefix ?? '';
    this.#deadlines = {
      deadlineBaseS: options.deadlineBaseS ?? DEFAULT_DEADLINES.deadlineBaseS,
      minBytesPerS: options.minBytesPerS ?? DEFAULT_DEADLINES.minBytesPerS,
    };
  }

  /** Connects (credential, container client) and creates the container when missing. */
  async init(): Promise<void> {
    const { connectionString, accountUrl, container } = this.#options;
    const pipeline = { retryOptions: this.#options.retryOptions ?? retryOptionsFor(this.#deadlines) };
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
    let deadline = this.#deadline('create the container');
    try {
      await client.createIfNotExists({ abortSignal: deadline.signal });
    } catch (err) {
      // A role scoped to blobs (no container write) can still use an existing container: check that it can list.
      if (statusOf(err) !== 403) throw this.#asStoreError('create the container', err, deadline);
      deadline = this.#deadline('list the container');
      try {
        await client.listBlobsFlat({ prefix: this.#prefix, abortSignal: deadline.signal }).byPage({ maxPageSize: 1 }).next();
      } catch (probe) {
        throw this.#asStoreError('list the container', probe, deadline);
      }
    } finally {
      deadline.clear();
    }
    this.#client = client;
  }

  /** One cheap request (the container's properties): resolves when the store answers, else `store_unavailable`. */
  async ping(): Promise<void> {
    const deadline = this.#deadline('read the container');
    try {
      await this.#container().getProperties({ abortSignal: deadline.signal });
    } catch (err) {
      // A role scoped to blobs may not read the container's properties: any answer of the service is an answer.
      if (statusOf(err) === 403) return;
      throw this.#asStoreError('read the container', err, deadline);
    } finally {
      deadline.clear();
    }
  }

  async stat(id: string): Promise<StoredProject | null> {
    const [manifest, archive] = await Promise.all([this.#statManifest(id), this.#statArchive(id)]);
    return current(manifest, archive);
  }

  async list(): Promise<StoredProject[]> {
    const byId = new Map<string, StoredProject>();
    await this.#eachBlob('', 'list the projects', (o) => {
      const manifest = parseManifestName(o.name);
      const parsed = manifest === null ? parseArchiveName(o.name) : { id: manifest, format: 'layers' as const };
      if (!parsed) return;
      const found = { ...parsed, size: o.size, modifiedAt: o.modifiedAt, etag: o.etag };
      byId.set(found.id, current(byId.get(found.id) ?? null, found)!);
    });
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
    // One GET (resumed on the same ETag if the connection drops): its ETag is that of the bytes on disk.
    const etag = await downloadBlob(blob, file, this.#deadlines, this.#asStoreError);
    return { file, format, etag: quoted(etag), release: () => rm(file, { force: true }) };
  }

  /** Starts the download of a blob as a stream (resumed on the same ETag if the connection drops). */
  async #stream(blob: BlobClient): Promise<{ stream: Readable; etag: string; size: number }> {
    const { stream, etag, size } = await openBlob(blob, this.#deadlines, this.#asStoreError);
    return { stream, etag: quoted(etag), size };
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
    const conditions = condition && ('ifMatch' in condition ? { ifMatch: condition.ifMatch } : { ifNoneMatch: '*' });
    const res = await uploadBlobFile(blob, file, size, this.#deadlines, { conditions, blobHTTPHeaders: { blobContentType: CONTENT_TYPE[format] } }, (err, d) =>
      // A retried request whose first try did succeed also ends here (the retry sees the new ETag): the caller
      // then keeps a conflict copy of what is in fact the stored version, which loses nothing.
      condition && isConditionFailure(err, condition) ? saveConflict(id, condition) : this.#asStoreError(`upload ${blob.name}`, err, d),
    );
    await rm(file, { force: true });
    if (!condition) await this.#delete(this.#blob(archiveName(id, otherFormat(format))));
    return { id, format, size, modifiedAt: (res.lastModified ?? new Date()).toISOString(), etag: quoted(res.etag) };
  }

  async putConflict(id: string, format: ArchiveFormat, file: string, stamp: string): Promise<string> {
    const blob = this.#blob(conflictName(id, format, stamp));
    const { size } = await stat(file);
    await uploadBlobFile(blob, file, size, this.#deadlines, { blobHTTPHeaders: { blobContentType: CONTENT_TYPE[format] } }, (err, d) =>
      this.#asStoreError(`upload ${blob.name}`, err, d),
    );
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
    const blob = this.#blob(checkedObjectName(name));
    const conditions = condition && ('ifMatch' in condition ? { ifMatch: condition.ifMatch } : { ifNoneMatch: '*' });
    const blobHTTPHeaders = { blobContentType: objectContentType(name) };
    const size = Buffer.isBuffer(body) ? body.length : (await stat(body.file)).size;
    const onError = (err: unknown, d: CallDeadline): unknown =>
      condition && isConditionFailure(err, condition) ? objectConflict(name, condition) : this.#asStoreError(`upload ${blob.name}`, err, d);
    let res: BlobUploadCommonResponse;
    if (Buffer.isBuffer(body)) {
      const deadline = this.#deadline(`upload ${blob.name}`, size);
      try {
        res = await blob.getBlockBlobClient().upload(body, body.length, { conditions, blobHTTPHeaders, abortSignal: deadline.signal });
      } catch (err) {
        throw onError(err, deadline);
      } finally {
        deadline.clear();
      }
    } else {
      res = await uploadBlobFile(blob, body.file, size, this.#deadlines, { conditions, blobHTTPHeaders }, onError);
    }
    return { name, size, modifiedAt: (res.lastModified ?? new Date()).toISOString(), etag: quoted(res.etag) };
  }

  /** With `ifMatch` and another version stored, resolves false and deletes nothing (as when absent). */
  async deleteObject(name: string, condition?: { ifMatch: string }): Promise<boolean> {
    const blob = this.#blob(checkedObjectName(name));
    const deadline = this.#deadline(`delete ${blob.name}`);
    try {
      const conditions = condition && { ifMatch: condition.ifMatch };
      return (await blob.deleteIfExists({ deleteSnapshots: 'include', conditions, abortSignal: deadline.signal })).succeeded;
    } catch (err) {
      if (condition && isConditionFailure(err, condition)) return false;
      throw this.#asStoreError(`delete ${blob.name}`, err, deadline);
    } finally {
      deadline.clear();
    }
  }

  /** Blobs under the store's prefix whose rest is an object name (see isObjectName), sorted by name. */
  async listObjects(prefix: string): Promise<StoredObject[]> {
    const found: StoredObject[] = [];
    await this.#eachBlob(prefix, `list the objects under "${prefix}"`, (o) => {
      if (isObjectName(o.name)) found.push(o);
    });
    return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Each blob under the store's prefix + `prefix` (named without the store's prefix); the deadline renews per blob. */
  async #eachBlob(prefix: string, action: string, each: (o: StoredObject) => void): Promise<void> {
    const deadline = this.#deadline(action);
    try {
      for await (const item of this.#container().listBlobsFlat({ prefix: this.#prefix + prefix, abortSignal: deadline.signal })) {
        deadline.renew();
        const p = item.properties;
        each({ name: item.name.slice(this.#prefix.length), size: p.contentLength ?? 0, modifiedAt: p.lastModified.toISOString(), etag: quoted(p.etag) });
      }
    } catch (err) {
      throw this.#asStoreError(action, err, deadline);
    } finally {
      deadline.clear();
    }
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
    const deadline = this.#deadline(`read ${blob.name}`);
    try {
      const p = await blob.getProperties({ abortSignal: deadline.signal });
      return { name, size: p.contentLength ?? 0, modifiedAt: (p.lastModified ?? new Date()).toISOString(), etag: quoted(p.etag) };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw this.#asStoreError(`read ${blob.name}`, err, deadline);
    } finally {
      deadline.clear();
    }
  }

  /** Deletes a blob if it exists; resolves true when it did. */
  async #delete(blob: BlobClient): Promise<boolean> {
    const deadline = this.#deadline(`delete ${blob.name}`);
    try {
      return (await blob.deleteIfExists({ deleteSnapshots: 'include', abortSignal: deadline.signal })).succeeded;
    } catch (err) {
      throw this.#asStoreError(`delete ${blob.name}`, err, deadline);
    } finally {
      deadline.clear();
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

  /** The deadline of one call of `action` moving `bytes` (lib/azure-deadline.ts). */
  #deadline(action: string, bytes = 0): CallDeadline {
    return new CallDeadline(this.#deadlines, action, bytes);
  }

  /**
   * `store_unavailable` for a failure of the service, the network or the credential, or a call past its deadline
   * (see {@link asStoreError}).
   */
  readonly #asStoreError = (action: string, err: unknown, deadline?: CallDeadline): unknown => asStoreError(this.#options, action, err, deadline);
}

function otherFormat(format: ArchiveFormat): ArchiveFormat {
  return format === 'zip' ? 'tar.gz' : 'zip';
}
