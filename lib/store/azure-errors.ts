/**
 * How the Azure store (azure-store.ts) reads the blob service's failures: a failed condition, or a service,
 * network or credential failure turned into `store_unavailable` without any secret in its message.
 */
import type { CallDeadline } from '../azure-deadline.js';
import { errnoCode, ToolhostError } from '../errors.js';
import type { ObjectCondition } from './project-store.js';

/**
 * Seconds a client is told to wait (Retry-After) after `store_unavailable`: long enough for a blip to pass, short
 * enough that an agent retries soon after the store is back.
 */
export const STORE_RETRY_AFTER_S = 10;

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
 * `store_unavailable` for a failure of the service, the network or the credential, or for a call that outlived
 * its `deadline`; any other error (a local file system one such as ENOSPC, or one already typed) passes through
 * unchanged.
 */
export function asStoreError(options: StoreLocation, action: string, err: unknown, deadline?: CallDeadline): unknown {
  if (err instanceof ToolhostError) return err;
  // The SDK reports an aborted call as an AbortError whatever the reason: the deadline says whether it was its own.
  const expired = deadline?.reason;
  if (expired) {
    return new ToolhostError(
      'store_unavailable',
      `the project store (Azure Blob container "${options.container}" via ${whereOf(options)}) did not answer: ${action} did not finish within its client-side deadline of ${expired.seconds} s (store.azure.deadlineBaseS + size / store.azure.minBytesPerS), so the connection was dropped; projects cached on this server keep working. Retry after ${STORE_RETRY_AFTER_S} s; if it persists, check the network path to the storage account`,
      { container: options.container, deadline_s: expired.seconds, retry_after_s: STORE_RETRY_AFTER_S },
    );
  }
  const name = err instanceof Error ? err.name : '';
  const errno = errnoCode(err) ?? '';
  const remote = name === 'RestError' || name === 'AbortError' || CREDENTIAL_ERRORS.has(name) || NETWORK_ERRNOS.has(errno);
  if (!remote) return err;
  const status = statusOf(err);
  const code = errorCodeOf(err);
  const message = redact(messageOf(err));
  const why = [status, code && !message.includes(code) ? code : undefined, message].filter(Boolean).join(' ');
  return new ToolhostError(
    'store_unavailable',
    `the project store (Azure Blob container "${options.container}" via ${whereOf(options)}) could not be reached to ${action}: ${why}; projects cached on this server keep working. Retry after ${STORE_RETRY_AFTER_S} s; if it persists, check store.azure settings (credentials, network access)`,
    { container: options.container, ...(status ? { status } : {}), ...(code ? { store_error: code } : {}), retry_after_s: STORE_RETRY_AFTER_S },
  );
}

/** The account URL is worth showing (without a query, which could be a SAS); the connection string never is. */
function whereOf(options: StoreLocation): string {
  return options.accountUrl && !options.connectionString ? (options.accountUrl.split('?')[0] ?? '') : 'the connection string';
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
