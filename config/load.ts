/**
 * Loads the configuration: config/default.json, then a config file (`--config FILE` or TOOLHOST_CONFIG), then
 * the environment variables of config/env.ts. Validated once; the result is frozen.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_VARS, type EnvVar } from './env.js';
import { type Config, configSchema, type RawConfig } from './schema.js';

/** Thrown when the configuration is invalid; the message names every bad field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

// Compiled code runs from dist/config/, but the defaults file stays in config/ beside the schema.
const DEFAULTS_PATH = fileURLToPath(
  import.meta.url.includes('/dist/config/') ? new URL('../../config/default.json', import.meta.url) : new URL('./default.json', import.meta.url),
);

/** The defaults file, parsed. */
export function readDefaults(): Record<string, unknown> {
  return JSON.parse(readFileSync(DEFAULTS_PATH, 'utf8')) as Record<string, unknown>;
}

/** Where the configuration comes from; every part is optional. */
export interface ConfigSources {
  /** Path of a JSON config file. */
  file?: string | undefined;
  /** An object merged over the file (tests use it). */
  overrides?: Record<string, unknown> | undefined;
  /** Environment to read the variables of config/env.ts from (nothing else in it is looked at). */
  env?: NodeJS.ProcessEnv | undefined;
}

/** Builds the validated, frozen configuration. Throws ConfigError naming every bad field. */
export function loadConfig(sources: ConfigSources = {}): Config {
  let merged: unknown = readDefaults();
  if (sources.file) {
    let text: string;
    try {
      text = readFileSync(sources.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${sources.file}: ${(err as Error).message}`);
    }
    try {
      merged = deepMerge(merged, JSON.parse(text));
    } catch (err) {
      throw new ConfigError(`config file ${sources.file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (sources.overrides) merged = deepMerge(merged, sources.overrides);
  merged = deepMerge(merged, envOverrides(sources.env ?? {}));
  return validateConfig(merged);
}

/** Validates a complete raw configuration object and resolves derived defaults. */
export function validateConfig(raw: unknown): Config {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const field = i.path.join('.') || '(root)';
      if (i.code === 'unrecognized_keys') {
        return `${i.keys.map((k) => (field === '(root)' ? k : `${field}.${k}`)).join(', ')}: unknown key (check the spelling against config/default.json)`;
      }
      return `${field}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const c: RawConfig = parsed.data;
  if (c.auth === 'none' && !isLoopback(c.host)) {
    throw new ConfigError(
      `auth: "none" is allowed only on a loopback host (127.0.0.1, ::1, localhost), and host is ${c.host}: that would give shell access to the network; ` +
        'set auth to "token" (a token is generated into <dataDir>/token unless token or TOOLHOST_TOKEN is set), or bind host to 127.0.0.1',
    );
  }
  if (c.token !== null && !/^[\x21-\x7e]+$/.test(c.token)) {
    throw new ConfigError('token: must be visible ASCII characters only (no spaces), since it travels in the Authorization header');
  }
  c.http.allowedHosts.forEach((h, i) => {
    if (!/^(?:[A-Za-z0-9_-]+\.)*[A-Za-z0-9_-]+\.?$|^\[[0-9A-Fa-f:.]+\]$/.test(h)) {
      throw new ConfigError(
        `http.allowedHosts[${i}]: "${h}" is not a host name; write the bare name clients reach this server by, e.g. "toolhost.internal" or "10.0.0.5" or "[fd00::5]" (no scheme, no port)`,
      );
    }
  });
  c.http.allowedOrigins.forEach((o, i) => {
    if (!isOrigin(o)) {
      throw new ConfigError(
        `http.allowedOrigins[${i}]: "${o}" is not an origin; write scheme://host[:port] exactly as browsers send it, e.g. "https://console.example.com" (no path, no trailing slash; "null" is never allowed)`,
      );
    }
  });
  if (c.commands.defaultTimeoutS > c.commands.maxTimeoutS) {
    throw new ConfigError('commands.defaultTimeoutS: must not exceed commands.maxTimeoutS');
  }
  if (c.store.backend === 'azure' && !c.store.azure.connectionString && !c.store.azure.accountUrl) {
    throw new ConfigError('store.azure: the azure store needs connectionString (or AZURE_STORAGE_CONNECTION_STRING) or accountUrl');
  }
  if (c.queue.backend === 'azure') {
    if (!c.queue.azure.connectionString) {
      throw new ConfigError('queue.azure.connectionString: the azure queue needs a connection string (or AZURE_STORAGE_CONNECTION_STRING)');
    }
    if (c.store.backend !== 'azure') {
      throw new ConfigError('store.backend: the azure queue needs the azure store (TOOLHOST_STORE=azure), so every worker sees the same projects');
    }
    if (c.queue.azure.pollMinMs > c.queue.azure.pollMaxMs) throw new ConfigError('queue.azure.pollMinMs: must not exceed queue.azure.pollMaxMs');
  } else if (c.role !== 'all') {
    throw new ConfigError(`role: "${c.role}" needs queue.backend "azure" (TOOLHOST_QUEUE=azure): api and worker processes meet only through a shared queue`);
  }
  const maxThreads = c.pool.maxThreads === 'auto' ? 2 * availableParallelism() + 1 : c.pool.maxThreads;
  return deepFreeze({ ...c, dataDir: resolve(c.dataDir), pool: { ...c.pool, maxThreads } });
}

/** The options set by the variables of config/env.ts that `env` has (non-empty), as a partial raw config. */
function envOverrides(env: NodeJS.ProcessEnv): Record<string, unknown> {
  let out: unknown = {};
  for (const v of ENV_VARS) {
    const text = env[v.name];
    if (text === undefined || text === '') continue;
    const value = envValue(v, text);
    for (const option of v.options)
      out = deepMerge(
        out,
        option.split('.').reduceRight<unknown>((inner, key) => ({ [key]: inner }), value),
      );
  }
  return out as Record<string, unknown>;
}

function envValue(v: EnvVar, text: string): unknown {
  if (v.kind === 'string') return text;
  const n = Number(text);
  if (!Number.isInteger(n)) throw new ConfigError(`${v.name}: "${text}" is not an integer; it sets ${v.options.join(' and ')}`);
  return n;
}

/** True for "scheme://host[:port]" as a browser serializes it in the Origin header. */
function isOrigin(o: string): boolean {
  try {
    const u = new URL(o);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === o.toLowerCase();
  } catch {
    return false;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = deepMerge(base[k], v);
  return out;
}

function deepFreeze<T>(o: T): T {
  if (isPlainObject(o)) for (const v of Object.values(o)) deepFreeze(v);
  return Object.freeze(o);
}
