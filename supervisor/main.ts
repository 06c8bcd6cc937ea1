/**
 * Entry point (`npm start`). Loads the configuration, starts the supervisor and owns the signals: the first
 * SIGTERM/SIGINT drains gracefully, a second one forces; SIGHUP reloads the config file. The only place that exits
 * the process.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ToolhostError } from '../lib/errors.js';
import { ContainmentError } from '../lib/process/containment.js';
import { startSupervisor } from './supervisor.js';

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
  const sup = await startSupervisor(config, undefined, { sources });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    sup.log.info({ signal: sig, force: signals > 1 }, signals > 1 ? 'second signal: forcing shutdown' : 'draining before shutdown');
    sup.close({ force: signals > 1 }).then(
      () => process.exit(0),
      (err: unknown) => {
        sup.log.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
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
      : err instanceof ContainmentError
        ? err.message
        : err instanceof Error
          ? err.stack
          : String(err);
  process.stderr.write(`toolhost: failed to start: ${told}\n`);
  process.exit(1);
});
