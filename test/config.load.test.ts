import { rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { z } from 'zod';
import { ConfigError, loadConfig, readDefaults } from '../config/load.js';
import { configSchema } from '../config/schema.js';
import { tempDir } from './helpers/harness.js';

function fails(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  expect.fail('expected a ConfigError');
}

describe('configuration', () => {
  const dirs: string[] = [];
  const scratch = async (): Promise<string> => {
    const dir = await tempDir();
    dirs.push(dir);
    return dir;
  };
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('loads the defaults, resolving pool.maxThreads "auto" to 2 x cores + 1', () => {
    const c = loadConfig();
    expect(c.pool.maxThreads).to.equal(2 * availableParallelism() + 1);
    expect(c.host).to.equal('127.0.0.1');
    expect(Object.isFrozen(c) && Object.isFrozen(c.commands)).to.equal(true);
  });

  it('documents every option of the schema and has a default for each', () => {
    const defaults = readDefaults();
    const walk = (schema: z.ZodType, value: unknown, path: string): void => {
      expect(schema.description ?? (schema instanceof z.ZodObject ? 'object' : undefined), `${path} has no doc`).to.be.a('string');
      if (schema instanceof z.ZodObject) {
        for (const [k, child] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
          expect(value, `${path}.${k} default`).to.have.property(k);
          walk(child, (value as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
        }
      }
    };
    walk(configSchema, defaults, '');
  });

  it('names the field of a bad value and of an unknown key', () => {
    const m = fails(() => loadConfig({ overrides: { pool: { maxThreads: 0 }, commands: { maxConcurent: 3 } } }));
    expect(m).to.include('pool.maxThreads');
    expect(m).to.include('commands.maxConcurent: unknown key');
  });

  it('applies a config file, then env overrides', async () => {
    const dir = await scratch();
    const file = join(dir, 'c.json');
    await writeFile(file, JSON.stringify({ port: 9999, commands: { maxConcurrent: 3 } }));
    const c = loadConfig({ file, env: { PORT: '1234', TOOLHOST_DATA_DIR: dir, TOOLHOST_TOKEN: 'a-token-of-16-chars!' } });
    expect(c.port).to.equal(1234);
    expect(c.commands.maxConcurrent).to.equal(3);
    expect(c.commands.maxPerProject).to.equal(4);
    expect(c.dataDir).to.equal(dir);
    expect(c.token).to.equal('a-token-of-16-chars!');
  });

  it('reads the queue, role and node from the environment, and refuses combinations that cannot work', () => {
    const cs = 'UseDevelopmentStorage=true';
    const c = loadConfig({
      env: { TOOLHOST_QUEUE: 'azure', TOOLHOST_STORE: 'azure', TOOLHOST_ROLE: 'worker', TOOLHOST_NODE_ID: 'w-1', AZURE_STORAGE_CONNECTION_STRING: cs },
    });
    expect([c.queue.backend, c.role, c.nodeId, c.queue.azure.connectionString, c.store.azure.connectionString]).to.deep.equal([
      'azure',
      'worker',
      'w-1',
      cs,
      cs,
    ]);
    expect(fails(() => loadConfig({ env: { TOOLHOST_ROLE: 'api' } }))).to.include('role: "api" needs queue.backend "azure"');
    expect(fails(() => loadConfig({ env: { TOOLHOST_QUEUE: 'azure', AZURE_STORAGE_CONNECTION_STRING: cs } }))).to.include(
      'store.backend: the azure queue needs the azure store',
    );
    expect(
      fails(() => loadConfig({ env: { TOOLHOST_QUEUE: 'azure', TOOLHOST_STORE: 'azure' }, overrides: { store: { azure: { connectionString: cs } } } })),
    ).to.include('queue.azure.connectionString');
    expect(fails(() => loadConfig({ env: { TOOLHOST_QUEUE: 'kafka' } }))).to.include('queue.backend');
    expect(fails(() => loadConfig({ overrides: { nodeId: 'has space' } }))).to.include('nodeId');
    expect(fails(() => loadConfig({ overrides: { queue: { azure: { prefix: 'Bad_Prefix' } } } }))).to.include('queue.azure.prefix');
  });

  it('refuses an unreadable or invalid config file with its path', async () => {
    expect(fails(() => loadConfig({ file: '/nonexistent/toolhost.json' }))).to.include('/nonexistent/toolhost.json');
    const dir = await scratch();
    await writeFile(join(dir, 'bad.json'), '{ nope');
    expect(fails(() => loadConfig({ file: join(dir, 'bad.json') }))).to.include('not valid JSON');
  });

  it('requires a token by default, and allows auth "none" only on a loopback host', () => {
    const c = loadConfig();
    expect([c.auth, c.token]).to.deep.equal(['token', null]);
    // Beyond loopback with auth "token": the token is generated at start when none is configured.
    expect(loadConfig({ overrides: { host: '0.0.0.0' } }).host).to.equal('0.0.0.0');
    expect(loadConfig({ overrides: { host: '0.0.0.0', token: 'x'.repeat(32) } }).token).to.equal('x'.repeat(32));
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'toolhost.example', '127.0.0.1.nip.io']) {
      const m = fails(() => loadConfig({ overrides: { host, auth: 'none' } }));
      expect(m, host).to.include('auth: "none" is allowed only on a loopback host');
      expect(m, host).to.include('set auth to "token"');
    }
    for (const host of ['127.0.0.1', '127.8.9.10', '::1', 'localhost']) expect(loadConfig({ overrides: { host, auth: 'none' } }).auth, host).to.equal('none');
    expect(fails(() => loadConfig({ overrides: { auth: 'off' } }))).to.include('auth');
  });

  it('refuses a token that cannot travel in a header, and host names or origins that could never match', () => {
    expect(fails(() => loadConfig({ overrides: { token: 'short' } }))).to.include('token');
    expect(fails(() => loadConfig({ overrides: { token: 'has spaces in it, sixteen+' } }))).to.include('token: must be visible ASCII');
    for (const h of ['http://toolhost.example', 'toolhost.example:8080', '*.example', 'a b', 'x/y']) {
      expect(
        fails(() => loadConfig({ overrides: { http: { allowedHosts: [h] } } })),
        h,
      ).to.include('http.allowedHosts[0]');
    }
    expect(
      loadConfig({ overrides: { http: { allowedHosts: ['toolhost.internal', '10.0.0.5', '[fd00::5]', 'Toolhost.Example.'] } } }).http.allowedHosts,
    ).to.have.length(4);
    for (const o of [
      'null',
      'https://console.example.com/',
      'https://console.example.com/app',
      'console.example.com',
      'https://console.example.com:443',
      'file:///x',
      '*',
    ]) {
      expect(
        fails(() => loadConfig({ overrides: { http: { allowedOrigins: [o] } } })),
        o,
      ).to.include('http.allowedOrigins[0]');
    }
    expect(
      loadConfig({ overrides: { http: { allowedOrigins: ['https://console.example.com', 'http://localhost:3000'] } } }).http.allowedOrigins,
    ).to.have.length(2);
  });

  it('refuses a bad PORT', () => {
    expect(fails(() => loadConfig({ env: { PORT: 'eighty' } }))).to.include('PORT');
  });
});

describe('README configuration table', () => {
  it('matches the schema and defaults (run `npm run config:table -- --write` after changing them)', async () => {
    const { readFile } = await import('node:fs/promises');
    const { configTable, readmeTable } = await import('../config/table.js');
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    expect(readmeTable(readme)).to.equal(configTable());
  });
});
