/**
 * The project store on Azure Blob Storage: blobs `<prefix><project_id>.zip` or `<prefix><project_id>.tar.gz` in
 * one container, conflict copies beside them. Conditional writes use the blob service's own If-Match /
 * If-None-Match, so writers on any number of machines cannot overwrite each other unseen.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { BlobClient, BlobServiceClient, BlobUploadCommonResponse, ContainerClient, StorageRetryOptions } from '@azure/storage-blob';
import { type ArchiveFormat, archiveExtension } from '../archive/format.js';
import { errnoCode, ToolhostError } from '../errors.js';
import {
  ARCHIVE_FORMATS,
  archiveName,
  conflictName,
  type FetchedArchive,
  type LoadedArchive,
  newest,
  notFound,
  type OpenedArchive,
  type ProjectStore,
  type PutCondition,
  parseArchiveName,
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
/** Errors of @azure/identity: the credential chain found no usable identity, or its token was refused. */
const CREDENTIAL_ERRORS = new Set(['CredentialUnavailableError', 'AuthenticationError', 'AggregateAuthenticationError']);
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

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
    const [zip, tgz] = await Promise.all(ARCHIVE_FORMATS.map((f) => this.#statFormat(id, f)));
    return newest(zip ?? null, tgz ?? null);
  }

  async list(): Promise<StoredProject[]> {
    const byId = new Map<string, StoredProject>();
    try {
      for await (const item of this.#container().listBlobsFlat({ prefix: this.#prefix })) {
        const parsed = parseArchiveName(item.name.slice(this.#prefix.length));
        if (!parsed) continue;
        const p = item.properties;
        const found = { ...parsed, size: p.contentLength ?? 0, modifiedAt: p.lastModified.toISOString(), etag: quoted(p.etag) };
        byId.set(found.id, newest(byId.get(found.id) ?? null, found)!);
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
        format === 'zip' ? { kind: 'file', ...(await this.#download(blob, format, scratchDir)) } : { kind: 'stream', ...(await this.#stream(blob, format)) },
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

  /** Starts the download of a blob as a stream. */
  async #stream(blob: BlobClient, format: ArchiveFormat): Promise<OpenedArchive> {
    const res = await blob.download(0, undefined, { maxRetryRequests: DOWNLOAD_RESUMES });
    const body = res.readableStreamBody;
    if (!body) throw new ToolhostError('internal', `internal error: the download of ${blob.name} returned no body`);
    return { stream: body instanceof Readable ? body : Readable.from(body), format, etag: quoted(res.etag), size: res.contentLength ?? 0 };
  }

  async put(id: string, format: ArchiveFormat, file: string, condition?: PutCondition): Promise<StoredProject> {
    const blob = this.#blob(archiveName(id, format));
    const { size } = await stat(file);
    if (condition && 'ifNoneMatch' in condition) {
      // The service checks only this format's blob atomically; the other format is checked just before. Two
      // creates racing in different formats could both succeed; stat and list then show the newer one.
      if (await this.#statFormat(id, otherFormat(format))) throw saveConflict(id, condition);
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
    const gone = await Promise.all(ARCHIVE_FORMATS.map((f) => this.#delete(this.#blob(archiveName(id, f)))));
    return gone.some(Boolean);
  }

  #container(): ContainerClient {
    if (!this.#client) throw new ToolhostError('internal', 'internal error: the Azure project store was used before init()');
    return this.#client;
  }

  #blob(name: string): BlobClient {
    return this.#container().getBlobClient(this.#prefix + name);
  }

  async #statFormat(id: string, format: ArchiveFormat): Promise<StoredProject | null> {
    const blob = this.#blob(archiveName(id, format));
    try {
      const p = await blob.getProperties();
      return { id, format, size: p.contentLength ?? 0, modifiedAt: (p.lastModified ?? new Date()).toISOString(), etag: quoted(p.etag) };
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
      const found = await this.stat(id);
      if (!found) break;
      const blob = this.#blob(archiveName(id, found.format));
      try {
        return await use(blob, found.format);
      } catch (err) {
        if (statusOf(err) !== 404) throw this.#asStoreError(`download ${blob.name}`, err);
      }
    }
    throw notFound(id);
  }

  /**
   * `store_unavailable` for a failure of the service, the network or the credential; any other error (a local
   * file system one such as ENOSPC, or one already typed) passes through unchanged.
   */
  #asStoreError(action: string, err: unknown): unknown {
    if (err instanceof ToolhostError) return err;
    const name = err instanceof Error ? err.name : '';
    const errno = errnoCode(err) ?? '';
    const remote = name === 'RestError' || name === 'AbortError' || CREDENTIAL_ERRORS.has(name) || NETWORK_ERRNOS.has(errno);
    if (!remote) return err;
    const status = statusOf(err);
    const code = errorCodeOf(err);
    const message = redact(messageOf(err));
    const why = [status, code && !message.includes(code) ? code : undefined, message].filter(Boolean).join(' ');
    // The account URL is worth showing (without a query, which could be a SAS); the connection string never is.
    const where = this.#options.accountUrl && !this.#options.connectionString ? this.#options.accountUrl.split('?')[0] : 'the connection string';
    return new ToolhostError(
      'store_unavailable',
      `the project store (Azure Blob container "${this.#options.container}" via ${where}) could not be reached to ${action}: ${why}; check store.azure settings (credentials, network access) and retry`,
      { container: this.#options.container, ...(status ? { status } : {}), ...(code ? { store_error: code } : {}) },
    );
  }
}

function otherFormat(format: ArchiveFormat): ArchiveFormat {
  return format === 'zip' ? 'tar.gz' : 'zip';
}

/** An ETag as HTTP headers carry it, quotes included: listings return the same value unquoted. */
function quoted(etag: string | undefined): string {
  if (!etag) return '""';
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The service's error code (`ConditionNotMet`, `BlobAlreadyExists`...) or the network one (`ECONNREFUSED`). */
function errorCodeOf(err: unknown): string | undefined {
  const details = (err as { details?: { errorCode?: unknown } } | null)?.details;
  if (typeof details?.errorCode === 'string') return details.errorCode;
  return errnoCode(err);
}

function isConditionFailure(err: unknown, condition: PutCondition): boolean {
  const status = statusOf(err);
  const code = errorCodeOf(err);
  if (status === 412) return true;
  if (status === 409 && code === 'BlobAlreadyExists') return true;
  // If-Match on a blob deleted meanwhile: the version the caller holds is gone, which is a conflict too.
  return status === 404 && code === 'BlobNotFound' && 'ifMatch' in condition;
}

function messageOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // Service messages end in "RequestId:..." and "Time:..." lines, noise in an error body; a credential chain's
  // lines each say why one credential was unavailable, which is the useful part.
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(RequestId|Time):/.test(l));
  const text = lines.join(' ');
  return text.length > 600 ? `${text.slice(0, 600)}...` : text;
}

/** Removes secrets an SDK message might quote: account keys, SAS tokens and signatures. */
function redact(text: string): string {
  return text.replace(/(AccountKey|SharedAccessSignature)=[^;\s]*/gi, '$1=<redacted>').replace(/([?&]sig=)[^&\s]*/gi, '$1<redacted>');
}
