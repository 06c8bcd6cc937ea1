/**
 * Renders the configuration table of the README from the schema and the defaults file, so the documentation
 * cannot drift from the code (a test compares the two). Run `npm run config:table` to print it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
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

const START = /<!-- config-table:start[^>]*-->\n/;
const END = '<!-- config-table:end -->';

/** The README's configuration section as it stands (between its markers). */
export function readmeTable(readme: string): string | undefined {
  const start = START.exec(readme);
  const end = readme.indexOf(END);
  return start && end > start.index ? readme.slice(start.index + start[0].length, end).trim() : undefined;
}

/** The README with its configuration section replaced by the generated table. */
export function withTable(readme: string): string {
  const start = START.exec(readme);
  const end = readme.indexOf(END);
  if (!start || end < start.index) throw new Error('README.md lacks the config-table markers');
  return `${readme.slice(0, start.index + start[0].length)}${configTable()}\n${readme.slice(end)}`;
}

// `npm run config:table` prints the table; `-- --write` updates README.md in place.
if (process.argv[1]?.endsWith('table.ts') || process.argv[1]?.endsWith('table.js')) {
  if (process.argv.includes('--write')) {
    const readme = new URL('../README.md', import.meta.url);
    writeFileSync(readme, withTable(readFileSync(readme, 'utf8')));
  } else {
    process.stdout.write(`${configTable()}\n`);
  }
}
