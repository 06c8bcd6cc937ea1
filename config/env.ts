/**
 * The environment variables that override configuration options, declared once: the loader (config/load.ts)
 * applies exactly these, and the README's configuration section (config/table.ts) lists exactly these. A variable
 * set to the empty string counts as unset.
 *
 * A leaf module: it imports nothing, so both readers can import it without importing each other.
 */

/** How a variable's text becomes the option's value. */
export type EnvKind = 'string' | 'integer';

/** An environment variable and the options it sets. */
export interface EnvVar {
  /** The variable's name. */
  readonly name: string;
  /** The options it sets, as dot paths into the configuration (`store.azure.connectionString`). */
  readonly options: readonly string[];
  /** How its text is read: as is, or as an integer (anything else is a ConfigError naming the variable). */
  readonly kind: EnvKind;
  /** A valid value, shown in the README. */
  readonly example: string;
  /** Why one would set it rather than the option, in one line for the README. */
  readonly doc: string;
}

/** Every environment variable the configuration loader honours. */
export const ENV_VARS: readonly EnvVar[] = [
  { name: 'PORT', options: ['port'], kind: 'integer', example: '8081', doc: 'The port the platform assigns (container hosts set PORT).' },
  {
    name: 'TOOLHOST_DATA_DIR',
    options: ['dataDir'],
    kind: 'string',
    example: '/var/lib/toolhost',
    doc: 'Where this instance keeps its data, e.g. a mounted volume.',
  },
  { name: 'TOOLHOST_TOKEN', options: ['token'], kind: 'string', example: 'a-secret-of-16-chars-or-more', doc: 'The bearer token, kept out of config files.' },
  { name: 'TOOLHOST_ROLE', options: ['role'], kind: 'string', example: 'worker', doc: 'What this process does, so one image runs as api or worker.' },
  {
    name: 'TOOLHOST_NODE_ID',
    options: ['nodeId'],
    kind: 'string',
    example: 'worker-1',
    doc: 'A stable name for this process, e.g. the pod name of a stateful set.',
  },
  { name: 'TOOLHOST_QUEUE', options: ['queue.backend'], kind: 'string', example: 'azure', doc: 'The job queue backend.' },
  { name: 'TOOLHOST_STORE', options: ['store.backend'], kind: 'string', example: 'azure', doc: 'The project store backend.' },
  {
    name: 'AZURE_STORAGE_CONNECTION_STRING',
    options: ['store.azure.connectionString', 'queue.azure.connectionString'],
    kind: 'string',
    example: 'UseDevelopmentStorage=true',
    doc: 'One storage account for both the project store and the queue (the name Azure tools use).',
  },
];
