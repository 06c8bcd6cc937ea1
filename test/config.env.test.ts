/**
 * The environment variables of config/env.ts are the ones the loader honours, no more and no fewer, each sets
 * exactly the options it claims, and the README lists each where it belongs. Nothing here lists variables by
 * hand: the table is compared with what the loader does.
 */
import { expect } from 'chai';
import { ENV_VARS } from '../config/env.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { configTable } from '../config/table.js';

/** An environment that records every name the loader looks up, and refuses to be listed. */
function recordingEnv(values: Record<string, string> = {}): { env: NodeJS.ProcessEnv; read: Set<string> } {
  const read = new Set<string>();
  const env = new Proxy(values as NodeJS.ProcessEnv, {
    get(target, name) {
      if (typeof name === 'string') read.add(name);
      return Reflect.get(target, name);
    },
    has(target, name) {
      if (typeof name === 'string') read.add(name);
      return Reflect.has(target, name);
    },
    ownKeys() {
      throw new Error('the loader enumerated the environment: it must read only the variables of config/env.ts');
    },
  });
  return { env, read };
}

/** Every example value at once: together they make a valid configuration (a worker on Azure). */
const examples = (): Record<string, string> => Object.fromEntries(ENV_VARS.map((v) => [v.name, v.example]));

/** The value of the dot path `option` in `config`. */
const at = (config: unknown, option: string): unknown => option.split('.').reduce<any>((o, k) => o?.[k], config);

describe('configuration: environment variables', () => {
  it('the loader looks up exactly the variables of config/env.ts', () => {
    const { env, read } = recordingEnv();
    loadConfig({ env });
    expect([...read].sort()).to.deep.equal(ENV_VARS.map((v) => v.name).sort());
  });

  it('each variable sets exactly the options the table says it sets', () => {
    const defaults = loadConfig();
    const byEnv = loadConfig({ env: examples() });
    // The same values given as options instead: any option a variable sets beyond its entry, or fails to set, differs.
    let overrides: Record<string, unknown> = {};
    for (const v of ENV_VARS) {
      const value = v.kind === 'integer' ? Number(v.example) : v.example;
      for (const option of v.options) {
        expect(at(defaults, option), `${v.name}'s example must differ from the default of ${option}`).to.not.deep.equal(value);
        overrides = merge(overrides, option, value);
      }
    }
    expect(byEnv).to.deep.equal(loadConfig({ overrides }));
  });

  it('ignores a variable set to the empty string', () => {
    const empty = Object.fromEntries(ENV_VARS.map((v) => [v.name, '']));
    expect(loadConfig({ env: empty })).to.deep.equal(loadConfig());
  });

  it('refuses a non-integer value of an integer variable, naming the variable', () => {
    for (const v of ENV_VARS.filter((e) => e.kind === 'integer')) {
      for (const bad of ['eighty', '80.5', '8080abc']) {
        let err: unknown;
        try {
          loadConfig({ env: { [v.name]: bad } });
        } catch (e) {
          err = e;
        }
        expect(err, `${v.name}=${bad}`).to.be.instanceOf(ConfigError);
        expect((err as Error).message)
          .to.include(v.name)
          .and.include(bad);
      }
    }
  });

  it('the README lists every variable beside each option it sets, and in its own table', () => {
    const table = configTable();
    const [options, variables] = table.split('\n\n| variable |');
    expect(variables, 'the table of variables').to.be.a('string');
    const envColumn = new Map<string, string>();
    for (const m of options!.matchAll(/^\| `([^`]+)` \| `[^|]*` \| ([^|]*) \|/gm)) envColumn.set(m[1]!, m[2]!.trim());
    const expected = new Map<string, string[]>();
    for (const v of ENV_VARS) for (const o of v.options) expected.set(o, [...(expected.get(o) ?? []), `\`${v.name}\``]);
    for (const [option, cell] of envColumn) expect(cell, option).to.equal((expected.get(option) ?? []).join(', '));
    for (const option of expected.keys()) expect(envColumn.has(option), `${option} has a row`).to.equal(true);
    for (const v of ENV_VARS)
      expect(variables, v.name).to.match(new RegExp(`^\\| \`${v.name}\` \\| ${v.options.map((o) => `\`${o.replace(/\./g, '\\.')}\``).join(', ')} \\|`, 'm'));
  });
});

/** `base` with the dot path `option` set to `value`. */
function merge(base: Record<string, unknown>, option: string, value: unknown): Record<string, unknown> {
  const [key, ...rest] = option.split('.');
  const inner = rest.length === 0 ? value : merge((base[key!] as Record<string, unknown> | undefined) ?? {}, rest.join('.'), value);
  return { ...base, [key!]: inner };
}
