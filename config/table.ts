/**
 * Renders the configuration section of the README from the schema, the defaults file and the environment
 * variables of config/env.ts, so the documentation cannot drift from the code (a test compares the two). Run
 * `npm run config:table` to print it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { ENV_VARS } from './env.js';
import { readDefaults } from './load.js';
import { configSchema } from './schema.js';

/** The markdown tables: every option (default, the variables that set it, meaning), then every variable. */
export function configTable(): string {
  const envOf = new Map<string, string[]>();
  for (const v of ENV_VARS) for (const option of v.options) envOf.set(option, [...(envOf.get(option) ?? []), v.name]);
  const rows: string[] = ['| option | default | env | meaning |', '| --- | --- | --- | --- |'];
  const walk = (schema: z.ZodType, value: unknown, path: string): void => {
    if (schema instanceof z.ZodObject) {
      for (const [k, child] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
        walk(child, (value as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      }
      return;
    }
    const doc = (schema.description ?? '').replace(/\|/g, '\\|');
    const env = (envOf.get(path) ?? []).map((name) => `\`${name}\``).join(', ');
    rows.push(`| \`${path}\` | \`${JSON.stringify(value)}\` | ${env} | ${doc} |`);
  };
  walk(configSchema, readDefaults(), '');
  rows.push(
    '',
    'Environment variables, applied over the config file (one set to the empty string counts as unset):',
    '',
    '| variable | sets | example | why |',
    '| --- | --- | --- | --- |',
  );
  for (const v of ENV_VARS) {
    rows.push(`| \`${v.name}\` | ${v.options.map((o) => `\`${o}\``).join(', ')} | \`${v.example}\` | ${v.doc.replace(/\|/g, '\\|')} |`);
  }
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
