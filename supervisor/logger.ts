/** The structured JSON logger (pino). One line per request and per job; never bodies, contents or secrets. */
import { pino } from 'pino';

/** The logger type every actor receives. */
export type Logger = pino.Logger;

/**
 * A logger at the configured level, writing JSON lines to stdout. Writes are asynchronous (sonic-boom gathers the
 * lines logged while one write is in flight into the next): a synchronous write per line was a tenth of the
 * supervisor thread's CPU on a small file read (two lines per request). pino flushes what is pending when the
 * process exits, so a stop or a crash still ends with its last lines.
 */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'toolhost' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: false }));
}
