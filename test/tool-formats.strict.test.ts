/**
 * OpenAI strict mode: every served OpenAI tool (Chat Completions and Responses) passes the strict-mode rule check,
 * the check itself fails on schemas strict mode refuses, and a call as a strict-mode model makes it (every field
 * present, null for the ones left out) works on every tool through HTTP.
 */
import { expect } from 'chai';
import { z } from 'zod';
import { NotStrict, STRICT_LIMITS, strictProblems, strictSchema, withoutLookarounds } from '../lib/strict-schema.js';
import type { JsonSchema } from '../lib/tool-formats.js';
import { MODEL_TOOLS } from '../supervisor/http/tools.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { callRoute, DEMO_FILES, liveArgs, startStdinJob } from './helpers/tool-calls.js';

/** The arguments a strict-mode model sends for `args`: every property of every object present, null when not given. */
function strictArgs(schema: JsonSchema, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => strictArgs((schema.items ?? {}) as JsonSchema, v));
  if (typeof value !== 'object' || value === null || schema.properties === undefined) return value;
  const given = value as Record<string, unknown>;
  const props = schema.properties as Record<string, JsonSchema>;
  return Object.fromEntries(Object.entries(props).map(([k, p]) => [k, k in given ? strictArgs(p, given[k]) : null]));
}

const objectOf = (properties: Record<string, JsonSchema>, extra: JsonSchema = {}): JsonSchema => ({
  type: 'object',
  properties,
  required: Object.keys(properties),
  additionalProperties: false,
  ...extra,
});

describe('strict-mode rule check', () => {
  it('accepts a strict schema', () => {
    expect(strictProblems(objectOf({ a: { type: 'string' }, b: { type: ['integer', 'null'], minimum: 1 } }))).to.deep.equal([]);
  });

  it('names every rule a non-strict schema breaks', () => {
    const loose: JsonSchema = {
      type: 'object',
      properties: {
        id: { type: 'string', pattern: '^(?!x)[a-z]+$', minLength: 1 },
        opt: { type: 'integer', default: 3 },
        nested: { type: 'object', properties: { x: { type: 'string' } }, required: ['x'] },
        env: { type: 'object', additionalProperties: { type: 'string' }, propertyNames: { pattern: '^[A-Z]+$' } },
        when: { type: 'string', format: 'uri' },
        any: {},
      },
      required: ['id', 'nested', 'env', 'when', 'any', 'ghost'],
      additionalProperties: false,
    };
    const problems = strictProblems(loose).join('\n');
    expect(problems).to.include('root.id: pattern uses lookaround');
    expect(problems).to.include('root.id: keyword "minLength" is not supported');
    expect(problems).to.include('root.opt: not in required');
    expect(problems).to.include('root.opt: keyword "default" is not supported');
    expect(problems).to.include('root.nested: additionalProperties must be false');
    expect(problems).to.include('root.env: keyword "propertyNames" is not supported');
    expect(problems).to.include('root.env: additionalProperties must be false');
    expect(problems).to.include('root.when: format "uri" is not supported');
    expect(problems).to.include('root.any: no type');
    expect(problems).to.include('root: required "ghost" is not a property');
    expect(strictProblems({ anyOf: [objectOf({})] }).join('\n'))
      .to.include('root: must be type "object"')
      .and.include('root: must not be anyOf');
  });

  it('holds the size limits: nesting depth, property count, enum values', () => {
    let deep = objectOf({ leaf: { type: 'string' } });
    for (let i = 0; i < STRICT_LIMITS.depth; i++) deep = objectOf({ child: deep });
    expect(strictProblems(deep).join('\n')).to.include('levels of nested objects');
    const wide = objectOf(Object.fromEntries(Array.from({ length: STRICT_LIMITS.properties + 1 }, (_, i) => [`p${i}`, { type: 'string' }])));
    expect(strictProblems(wide).join('\n')).to.include('properties, over');
    const values = Array.from({ length: 600 }, (_, i) => `value-${i}-${'x'.repeat(30)}`);
    const enums = strictProblems(objectOf({ a: { type: 'string', enum: values }, b: { type: 'string', enum: values } })).join('\n');
    expect(enums).to.include('enum values, over').and.include('an enum of over 250 values');
  });
});

describe('strict-mode conversion', () => {
  it('requires every field, types the optional ones with null, and moves dropped keywords into the description', () => {
    const input = z.strictObject({ a: z.string().min(1).max(9).describe('A.'), n: z.number().int().min(0).default(30) });
    const { $schema: _, ...plain } = z.toJSONSchema(input, { io: 'input' }) as JsonSchema;
    const s = strictSchema(plain);
    expect(s.required).to.deep.equal(['a', 'n']);
    const props = s.properties as Record<string, JsonSchema>;
    expect(props.a).to.deep.equal({ type: 'string', description: 'A. Not empty; at most 9 characters.' });
    expect(props.n).to.include({ description: 'Default 30.', minimum: 0 });
    expect(props.n!.type).to.deep.equal(['integer', 'null']);
    expect(strictProblems(s)).to.deep.equal([]);
  });

  it('keeps the branch of a union strict mode can express, and refuses a field it cannot', () => {
    const env = z.union([z.record(z.string(), z.string()), z.array(z.strictObject({ name: z.string(), value: z.string() }))]).optional();
    const s = strictSchema(z.toJSONSchema(z.strictObject({ env })) as JsonSchema);
    expect((s.properties as Record<string, JsonSchema>).env!.type).to.deep.equal(['array', 'null']);
    expect(() => strictSchema(z.toJSONSchema(z.strictObject({ env: z.record(z.string(), z.string()) })) as JsonSchema)).to.throw(NotStrict, 'env');
  });

  it('drops lookarounds from patterns (the pattern then accepts more; the server still checks all)', () => {
    expect(withoutLookarounds('^(?!.*\\.conflict-[A-Za-z0-9._-]+$)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$')).to.equal('^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$');
    expect(withoutLookarounds('a(?<=(b|c))d(?=e)')).to.equal('ad');
    expect(withoutLookarounds('\\(?=x[(?=]')).to.equal('\\(?=x[(?=]');
  });
});

describe('strict-mode tools over HTTP', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({});
    expect((await s.putProject('demo', DEMO_FILES)).status).to.equal(201);
    expect((await s.putProject('demo-copy', DEMO_FILES)).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  it('serves every tool in both OpenAI formats passing every strict-mode rule', async () => {
    const chat = (await s.api('/tools?format=openai')).body.tools as Array<{ function: { name: string; parameters: JsonSchema; strict: boolean } }>;
    const responses = (await s.api('/tools?format=openai-responses')).body.tools as Array<{ name: string; parameters: JsonSchema; strict: boolean }>;
    expect(chat.map((t) => t.function.name)).to.deep.equal(MODEL_TOOLS.map((t) => t.name));
    expect(responses.map((t) => t.name)).to.deep.equal(MODEL_TOOLS.map((t) => t.name));
    chat.forEach((t, i) => {
      expect(t.function.strict, t.function.name).to.equal(true);
      expect(strictProblems(t.function.parameters), t.function.name).to.deep.equal([]);
      expect(responses[i]!.parameters, t.function.name).to.deep.equal(t.function.parameters);
      expect(responses[i]!.strict).to.equal(true);
    });
  });

  it('runs a strict-mode call (every field, null when not given) of every tool, on its route and on /tools/{name}/call', async () => {
    const chat = (await s.api('/tools?format=openai')).body.tools as Array<{ function: { name: string; parameters: JsonSchema } }>;
    const { routes } = (await s.api('/tools')).body as { routes: Record<string, { method: string; path: string }> };
    const jobId = await startStdinJob(s);
    for (const tool of MODEL_TOOLS) {
      const parameters = chat.find((t) => t.function.name === tool.name)!.function.parameters;
      for (const example of tool.examples) {
        const args = strictArgs(parameters, await liveArgs(s, example, jobId)) as Record<string, unknown>;
        // What the model sends fits the schema it was given (zod reads the served JSON Schema).
        const fits = z.fromJSONSchema(parameters as Parameters<typeof z.fromJSONSchema>[0]).safeParse(args);
        expect(fits.success, `${tool.name}: ${JSON.stringify(args)} fits its strict schema: ${JSON.stringify(fits.error?.issues)}`).to.equal(true);
        const optional = Object.keys(tool.input.shape).length > Object.keys(example).length;
        if (optional) expect(Object.values(args), `${tool.name} has a field left out, sent as null`).to.include(null);
        // The route gets the same call on a copy of the project: an edit applied once cannot be applied twice.
        const inCopy = args.project_id === 'demo' ? { ...args, project_id: 'demo-copy' } : args;
        const viaCall = await s.api(`/tools/${tool.name}/call?format=openai`, inCopy);
        expect(viaCall.status, tool.name).to.equal(200);
        expect(viaCall.body.is_error, `${tool.name}: ${viaCall.body.content}`).to.equal(false);
        // A query string has no null; a call in another project cannot run twice.
        if (tool.route.method !== 'POST' || inCopy === args) continue;
        // A fork of one name cannot be made twice either.
        const again = typeof args.new_project_id === 'string' ? { ...args, new_project_id: `${args.new_project_id}-route` } : args;
        const viaRoute = await callRoute(s, routes[tool.name]!, again);
        expect(viaRoute.status, `${tool.name}: ${JSON.stringify(viaRoute.body)}`).to.equal(200);
      }
    }
  });

  it('takes null as not given in nested objects too, and keeps a "__proto__" field a field', async () => {
    const env = await s.api('/execute', {
      project_id: 'demo',
      command: 'echo "$GREETING"',
      cwd: null,
      env: [{ name: 'GREETING', value: 'hello' }],
      timeout_s: null,
      wait_s: null,
      background: null,
      stdin: null,
    });
    expect(env.status, JSON.stringify(env.body)).to.equal(200);
    expect(env.body.stdout).to.equal('hello\n');
    const twice = await s.api('/execute', {
      project_id: 'demo',
      command: 'true',
      env: [
        { name: 'A', value: '1' },
        { name: 'A', value: '2' },
      ],
    });
    expect(twice.status).to.equal(400);
    expect(twice.body.error.message).to.include('env: each env name may appear once');
    const badName = await s.api('/execute', { project_id: 'demo', command: 'true', env: { 'A-B': '1' } });
    expect(badName.status).to.equal(400);
    expect(badName.body.error.message).to.include('env names must match').and.not.include('Invalid input');
    const proto = await s.api('/file/read', '{"project_id":"demo","path":"README.md","__proto__":{"start_line":null}}');
    expect(proto.status).to.equal(400);
    expect(proto.body.error.code).to.equal('unknown_field');
  });
});
