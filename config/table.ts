/**
 * Renders the configuration table of the README from the schema and the defaults file, so the documentation
 * cannot drift from the code (a test compares the two). Run `npm run config:table` to print it.
 */
import { z } from 'zod';
import { readDefaults } from './load.js';
import { configSchema } from './schema.js';

/** Environment variables that override an option. */
const ENV: Record<string, string> = { port: 'PORT', dataDir: 'TOOLHOST_DATA_DIR', token: 'TOOLHOST_TOKEN' };

/** The markdown table: option, default, env, meaning. */
export function configTable(): string {
  const rows: string[] = ['| option | default | env | meaning |', '| --- | --- | --- | --- |'];
  const walk = (schema: z.ZodType, value: unknown, path: string): void => {
    if (schema instanceof z.ZodObject) {
      for (const [k, child] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
        walk(child, (value as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      }
      return;
    }
    const doc = (schema.description ?? '').replace(/\|/g, '\\|');
    rows.push(`| \`${path}\` | \`${JSON.stringify(value)}\` | ${ENV[path] ? `\`${ENV[path]}\`` : ''} | ${doc} |`);
  };
  walk(configSchema, readDefaults(), '');
  return rows.join('\n');
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  process.stdout.write(`${configTable()}\n`);
}
