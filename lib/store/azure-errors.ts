/**
 * How the Azure store (azure-store.ts) reads the blob service's failures: a failed condition, or a service,
 * network or credential failure turned into `store_unavailable` without any secret in its message.
 */
import { errnoCode, ToolhostError } from '../errors.js';
import type { ObjectCondition } from './project-store.js';

/** Errors of @azure/identity: the credential chain found no usable identity, or its token was refused. */
const CREDENTIAL_ERRORS = new Set(['CredentialUnavailableError', 'AuthenticationError', 'AggregateAuthenticationError']);
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** Where the store is, as its error messages name it (fields of AzureStoreOptions). */
export interface StoreLocation {
  container: string;
  accountUrl?: string | null;
  connectionString?: string | null;
}

/**
 * `store_unavailable` for a failure of the service, the network or the credential; any other error (a local
 * file system one such as ENOSPC, or one already typed) passes through unchanged.
 */
export function asStoreError(options: StoreLocation, action: string, err: unknown): unknown {
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
  const where = options.accountUrl && !options.connectionString ? options.accountUrl.split('?')[0] : 'the connection string';
  return new ToolhostError(
    'store_unavailable',
    `the project store (Azure Blob container "${options.container}" via ${where}) could not be reached to ${action}: ${why}; check store.azure settings (credentials, network access) and retry`,
    { container: options.container, ...(status ? { status } : {}), ...(code ? { store_error: code } : {}) },
  );
}

/** An ETag as HTTP headers carry it, quotes included: listings return the same value unquoted. */
export function quoted(etag: string | undefined): string {
  if (!etag) return '""';
  return etag.startsWith('"') ? etag : `"${etag}"`;
}

/** The HTTP status of a service error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The service's error code (`ConditionNotMet`, `BlobAlreadyExists`...) or the network one (`ECONNREFUSED`). */
export function errorCodeOf(err: unknown): string | undefined {
  const details = (err as { details?: { errorCode?: unknown } } | null)?.details;
  if (typeof details?.errorCode === 'string') return details.errorCode;
  return errnoCode(err);
}

/** True when `err` says the service refused a write (or a delete) because `condition` failed. */
export function isConditionFailure(err: unknown, condition: ObjectCondition): boolean {
  const status = statusOf(err);
  const code = errorCodeOf(err);
  if (status === 412) return true;
  if (status === 409 && code === 'BlobAlreadyExists') return true;
  // If-Match on a blob deleted meanwhile: the version the caller holds is gone, which is a conflict too.
  return status === 404 && code === 'BlobNotFound' && 'ifMatch' in condition;
}

/** An error's message without the service's noise, on one line, cut to 600 characters. */
export function messageOf(err: unknown): string {
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
export function redact(text: string): string {
  return text.replace(/(AccountKey|SharedAccessSignature)=[^;\s]*/gi, '$1=<redacted>').replace(/([?&]sig=)[^&\s]*/gi, '$1<redacted>');
}
