/**
 * Entry point (`npm start`). Loads the configuration, takes the data dir's pidfile (`<dataDir>/toolhost.pid`, or
 * refuses to start when another toolhost holds it), starts the supervisor and owns the signals: the first
 * SIGTERM/SIGINT drains gracefully, a second one forces; SIGHUP reloads the config file. The only place that exits
 * the process; it removes the pidfile on the way out.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ToolhostError } from '../lib/errors.js';
import { ContainmentError } from '../lib/process/containment.js';
import { acquirePidfile, DataDirInUse, type Pidfile } from '../lib/process/pidfile.js';
import { startSupervisor } from './supervisor.js';

/** Held from before the supervisor starts until the process exits. */
let pidfile: Pidfile | undefined;

/** Exits with `code` after removing the pidfile. */
async function exit(code: number): Promise<never> {
  await pidfile?.release().catch(() => {});
  process.exit(code);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
  const sources = { file: values.config ?? process.env.TOOLHOST_CONFIG, env: process.env };
  let config: Config;
  try {
    config = loadConfig(sources);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`toolhost: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // Before anything touches the data dir: a second supervisor on it would mark the first one's running jobs
  // interrupted and extract, save and evict its working copies under it.
  pidfile = await acquirePidfile(config.dataDir);
  const sup = await startSupervisor(config, undefined, { sources });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    sup.log.info({ signal: sig, force: signals > 1 }, signals > 1 ? 'second signal: forcing shutdown' : 'draining before shutdown');
    sup.close({ force: signals > 1 }).then(
      () => exit(0),
      (err: unknown) => {
        sup.log.error({ err: String(err) }, 'shutdown failed');
        return exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // The reloader logs what it applied, or why it refused the file.
  process.on('SIGHUP', () => void sup.reload().catch(() => {}));
}

main().catch((err: unknown) => {
  // A known failure (the store cannot be reached, its settings are wrong) is told by its code and message; only
  // the unexpected needs a stack.
  const told =
    err instanceof ToolhostError
      ? `${err.code}: ${err.message}`
      : err instanceof ContainmentError || err instanceof DataDirInUse
        ? err.message
        : err instanceof Error
          ? err.stack
          : String(err);
  process.stderr.write(`toolhost: failed to start: ${told}\n`);
  void exit(1);
});
