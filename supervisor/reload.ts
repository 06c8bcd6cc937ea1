/**
 * Live configuration reload (SIGHUP, POST /admin/reload): re-read the configuration from the sources the
 * supervisor was started with, validate it, and apply what can change without a restart. A bad file is refused
 * with the reason and the old configuration stays. Options that cannot change live keep their old value and are
 * reported as needing a restart, so the configuration in effect is always one consistent, validated object.
 */
import { ConfigError, type ConfigSources, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ToolhostError } from '../lib/errors.js';
import type { Logger } from './logger.js';

/**
 * Options that take effect live, as dotted paths or prefixes. Everything else needs a restart: an option is
 * restart-only until whatever reads it reads the current configuration and it is listed here.
 * - pool.*, commands.* (but those below): new pools, resized lanes, and handlers read their limits from the pool
 *   they run on.
 * - files.*, search.*, list.*, archive.*: handler limits, and the HTTP front's checks read the current config.
 * - http.requestTimeoutS, http.maxArchiveBytes: read per request. shutdown.graceS: read by the pump at close.
 * - cache.*: read by the janitor at each run; store.exclude: read at each save.
 * - budgets.*: handlers, the command registry (through a getter) and the model text read the current ones;
 *   mcp.*: read per MCP call.
 * Not live: host, port, dataDir, token, queue.*, store.* but exclude (bound or built at start), http.maxBodyBytes (body
 * parsers are built at start), jobs.* and commands.maxOutputBytes (the command-job registry reads them at start),
 * commands.sandbox and commands.network (resolved at start for /health; isolation never changes under a report).
 */
const LIVE = [
  'logLevel',
  'http.requestTimeoutS',
  'http.maxArchiveBytes',
  'pool',
  'commands',
  'files',
  'search',
  'list',
  'budgets',
  'mcp',
  'archive',
  'shutdown',
  'cache',
  'store.exclude',
];
const NOT_LIVE = ['commands.maxOutputBytes', 'commands.sandbox', 'commands.network'];

function isLive(path: string): boolean {
  const under = (p: string): boolean => path === p || path.startsWith(`${p}.`);
  return LIVE.some(under) && !NOT_LIVE.some(under);
}

/**
 * The configuration in effect: one holder, built before every part that reads it. A reload puts a new `current`
 * in it; the parts read `current` when they need it (per request, per run, per save) and so see the change.
 */
export interface LiveConfig {
  current: Config;
}

/** What a reload did. */
export interface ReloadReport {
  /** The config file that was re-read, or null when the supervisor runs on defaults and environment only. */
  file: string | null;
  /** Options whose new value is now in effect. */
  applied: string[];
  /** Options changed in the sources that keep their old value until a restart. */
  restart_required: string[];
}

/** The outcome of comparing the configuration in effect with a freshly loaded one. */
export interface ReloadPlan {
  /** The configuration to put in effect: the new one, with restart-only options at their old values. */
  config: Config;
  applied: string[];
  restartRequired: string[];
}

/** Compares two validated configurations option by option. */
export function planReload(current: Config, next: Config): ReloadPlan {
  const applied: string[] = [];
  const restartRequired: string[] = [];
  const merged = structuredClone(next) as Record<string, unknown>;
  const walk = (a: unknown, b: unknown, path: string[]): void => {
    if (isObject(a) && isObject(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[k], b[k], [...path, k]);
      return;
    }
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    const dotted = path.join('.');
    if (isLive(dotted)) {
      applied.push(dotted);
      return;
    }
    restartRequired.push(dotted);
    let at = merged;
    for (const k of path.slice(0, -1)) at = at[k] as Record<string, unknown>;
    at[path[path.length - 1]!] = structuredClone(a);
  };
  walk(current, next, []);
  return { config: deepFreeze(merged) as unknown as Config, applied, restartRequired };
}

/** Dependencies of the reloader. */
export interface ReloaderOptions {
  /** Where the configuration came from at start; undefined when it was built in memory (tests). */
  sources: ConfigSources | undefined;
  /** The configuration in effect. */
  current(): Config;
  /** Puts a new configuration in effect (pools, lanes, log level, the HTTP front's view). */
  apply(next: Config): void;
  /** True once shutdown began. */
  closing(): boolean;
  log: Logger;
}

/** Re-reads, validates and applies the configuration. */
export class ConfigReloader {
  readonly #o: ReloaderOptions;

  constructor(o: ReloaderOptions) {
    this.#o = o;
  }

  /**
   * Reloads. Throws `invalid_config` (the old configuration stays, the reason is logged), `shutting_down`, or
   * `bad_request` when the supervisor was not started from configuration sources.
   */
  async reload(): Promise<ReloadReport> {
    const { sources, log } = this.#o;
    if (this.#o.closing()) throw new ToolhostError('shutting_down', 'the server is shutting down; a reload would not outlive it');
    if (!sources) {
      throw new ToolhostError(
        'bad_request',
        'this supervisor was given its configuration in memory, not from a file; there is nothing to re-read (restart it instead)',
      );
    }
    const file = sources.file ?? null;
    let next: Config;
    try {
      next = loadConfig(sources);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      // V8's JSON.parse messages can quote the file's text, which may hold the token: keep only the position.
      const reason = err.message.replace(/, ".*? is not valid JSON/s, '');
      log.error({ file, reason }, 'config reload refused');
      throw new ToolhostError('invalid_config', `${reason}\nthe configuration in effect stays; fix the file and reload again`, { file });
    }
    const plan = planReload(this.#o.current(), next);
    if (plan.applied.length > 0) this.#o.apply(plan.config);
    const report: ReloadReport = { file, applied: plan.applied, restart_required: plan.restartRequired };
    log.info(report, 'config reloaded');
    return report;
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function deepFreeze<T>(o: T): T {
  if (isObject(o)) for (const v of Object.values(o)) deepFreeze(v);
  return Object.freeze(o);
}
