/** The structured JSON logger (pino). One line per request and per job; never bodies, contents or secrets. */
import { pino } from 'pino';

/** The logger type every actor receives. */
export type Logger = pino.Logger;

/** A logger at the configured level, writing JSON lines to stdout. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'toolhost' }, timestamp: pino.stdTimeFunctions.isoTime });
}
