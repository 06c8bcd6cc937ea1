import { Validator } from '@seriousme/openapi-schema-validator';
import { expect } from 'chai';
import { loadConfig } from '../config/load.js';
import { strictSchema } from '../lib/strict-schema.js';
import { createApp } from '../supervisor/http/app.js';
import type { AppDeps } from '../supervisor/http/deps.js';
import { MODEL_TOOLS, TOOLS } from '../supervisor/http/tools.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { callRoute, DEMO_FILES, liveArgs, startStdinJob } from './helpers/tool-calls.js';

const NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const JSON_TYPES = new Set(['object', 'array', 'string', 'number', 'integer', 'boolean', 'null']);

/** Checks a schema node and its children use only JSON Schema types; returns the paths of nodes without a type. */
function checkTypes(schema: Record<string, unknown>, at: string, untyped: string[]): void {
  const types = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? [] : [schema.type];
  for (const t of types) expect(JSON_TYPES.has(t as string), `${at}: type ${String(t)}`).to.equal(true);
  if (types.length === 0 && !schema.enum && !schema.anyOf && !schema.oneOf && schema.const === undefined) untyped.push(at);
  for (const [k, child] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>)) checkTypes(child, `${at}.${k}`, untyped);
  if (typeof schema.items === 'object') checkTypes(schema.items as Record<string, unknown>, `${at}[]`, untyped);
  if (typeof schema.additionalProperties === 'object') checkTypes(schema.additionalProperties as Record<string, unknown>, `${at}.*`, untyped);
}

/** The checks every LLM API makes on a tool's input schema. */
function expectPlainObjectSchema(schema: Record<string, unknown>, tool: string): void {
  expect(schema.type, tool).to.equal('object');
  expect(schema.additionalProperties, tool).to.equal(false);
  expect(schema).not.to.have.property('$schema');
  const props = schema.properties as Record<string, Record<string, unknown>>;
  expect(props, tool).to.be.an('object');
  for (const r of (schema.required ?? []) as string[]) expect(props, `${tool} requires ${r}`).to.have.property(r);
  for (const [k, p] of Object.entries(props)) expect(p.description, `${tool}.${k} description`).to.be.a('string').and.not.equal('');
  const untyped: string[] = [];
  checkTypes(schema, tool, untyped);
  expect(untyped, 'schema nodes without a type').to.deep.equal([]);
}

/** Express's routes as "METHOD /path/{}" (parameter names dropped). */
function appRoutes(app: ReturnType<typeof createApp>): string[] {
  const out: string[] = [];
  type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };
  const walk = (stack: Layer[]): void => {
    for (const layer of stack) {
      if (layer.route) for (const m of Object.keys(layer.route.methods)) out.push(`${m.toUpperCase()} ${layer.route.path.replace(/:\w+/g, '{}')}`);
      else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return out;
}

describe('tool definitions and OpenAPI', () => {
  let s: TestServer;
  const token = 'tools-token-0123456789abcdef';
  before(async () => {
    s = await startServer({ token, commands: { defaultTimeoutS: 77, maxTimeoutS: 7777 }, search: { maxResults: 321 } });
    expect((await s.putProject('demo', DEMO_FILES)).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  it('serves every catalog tool in OpenAI format with plain JSON Schema', async () => {
    const r = await s.api('/tools?format=openai');
    expect(r.status).to.equal(200);
    expect(r.body.format).to.equal('openai');
    expect(r.body.tools.map((t: any) => t.function.name)).to.deep.equal(MODEL_TOOLS.map((t) => t.name));
    for (const t of r.body.tools) {
      expect(Object.keys(t).sort()).to.deep.equal(['function', 'type']);
      expect(t.type).to.equal('function');
      expect(Object.keys(t.function).sort()).to.deep.equal(['description', 'name', 'parameters', 'strict']);
      expect(t.function.strict, 'strict mode (test/tool-formats.strict.test.ts checks its rules)').to.equal(true);
      expect(t.function.name).to.match(NAME);
      expect(t.function.description).to.be.a('string').with.length.greaterThan(80);
      expect(t.function.description).to.include('Errors come back as');
      expectPlainObjectSchema(t.function.parameters, t.function.name);
    }
    expect((await s.api('/tools')).body.format, 'the default format').to.equal('openai');
  });

  it('serves the same tools in Anthropic format', async () => {
    const r = await s.api('/tools?format=anthropic');
    expect(r.status).to.equal(200);
    const openai = (await s.api('/tools?format=openai')).body.tools;
    expect(r.body.tools).to.have.length(MODEL_TOOLS.length);
    r.body.tools.forEach((t: any, i: number) => {
      expect(Object.keys(t).sort()).to.deep.equal(['description', 'input_schema', 'name']);
      expect(t.name).to.match(NAME);
      expect(t.name).to.equal(openai[i].function.name);
      expect(strictSchema(t.input_schema), 'the OpenAI schema is this one in strict mode').to.deep.equal(openai[i].function.parameters);
      expectPlainObjectSchema(t.input_schema, t.name);
    });
  });

  it('refuses an unknown format, naming the accepted ones', async () => {
    const r = await s.api('/tools?format=gemini');
    expect(r.status).to.equal(400);
    expect(r.body.error.message).to.include('openai').and.include('openai-responses').and.include('anthropic');
  });

  it('is generated from the request schemas: defaults shown, every tool and its route named once', async () => {
    const body = (await s.api('/tools?format=anthropic')).body as { tools: any[]; routes: Record<string, { method: string; path: string }> };
    const byName = new Map(body.tools.map((t) => [t.name, t]));
    expect(byName.get('file_edit').input_schema.properties.edits.items.properties.expected_replacements.default).to.equal(1);
    expect(byName.get('search').input_schema.properties.output).to.include({ type: 'string', default: 'matches' });
    expect(byName.get('execute').input_schema.required).to.deep.equal(['project_id', 'command']);
    expect(new Set(TOOLS.map((t) => t.name)).size, 'tool names are unique').to.equal(TOOLS.length);
    expect(new Set(TOOLS.map((t) => `${t.route.method} ${t.route.path}`)).size, 'routes are unique').to.equal(TOOLS.length);
    for (const tool of MODEL_TOOLS) expect(body.routes[tool.name]).to.deep.equal({ method: tool.route.method, path: tool.route.path });
  });

  it('describes limits from the running configuration', async () => {
    const tools = (await s.api('/tools?format=openai')).body.tools as any[];
    const describe = (name: string): string => tools.find((t) => t.function.name === name).function.description;
    expect(describe('execute')).to.include('default 77 s, at most 7777 s');
    expect(describe('search')).to.include('at most 321');
    expect(describe('file_edit')).to.include('edit_no_match');
  });

  it("runs a call built from every tool's example, over the route GET /tools names", async () => {
    const { routes } = (await s.api('/tools')).body as { routes: Record<string, { method: string; path: string }> };
    const jobId = await startStdinJob(s);
    for (const tool of MODEL_TOOLS) {
      expect(tool.examples.length, tool.name).to.be.greaterThan(0);
      for (const example of tool.examples) {
        const args = await liveArgs(s, example, jobId);
        expect(tool.input.safeParse(args).success, `${tool.name} example fits its schema`).to.equal(true);
        const r = await callRoute(s, routes[tool.name]!, args);
        expect(r.status, `${tool.name}: ${JSON.stringify(r.body)}`).to.equal(200);
        // The response schemas are strict: an answer with a field the schema lacks, or without one it requires, fails.
        const answer = tool.output.safeParse(r.body);
        expect(answer.success, `${tool.name} answers as its output schema says: ${JSON.stringify(answer.error?.issues)}`).to.equal(true);
      }
    }
  });

  it('serves a valid OpenAPI 3.1 document listing every route of the app', async () => {
    const r = await s.api('/openapi.json');
    expect(r.status).to.equal(200);
    const doc = r.body;
    const result = await new Validator().validate(doc);
    expect(result.valid, JSON.stringify(result.errors)).to.equal(true);
    expect(doc.openapi).to.equal('3.1.0');

    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{\w+\}/g, '{}')}`),
    );
    const app = createApp({ config: s.sup.config } as AppDeps);
    expect([...new Set(appRoutes(app))].sort()).to.deep.equal([...new Set(documented)].sort());

    expect(doc.paths['/health'].get.security).to.deep.equal([]);
    expect(doc.security).to.deep.equal([{ bearer: [] }]);
    const put = doc.paths['/projects/{id}'].put;
    expect(Object.keys(put.requestBody.content)).to.deep.equal(['application/octet-stream']);
    expect(put.responses['422'].content['application/json'].schema).to.deep.equal({ $ref: '#/components/schemas/Error' });
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).to.include('edit_no_match');
    const exec = doc.paths['/execute'].post;
    expect(exec.requestBody.content['application/json'].schema.properties).to.have.property('command');
    expect(exec.responses).to.have.property('404');
    expect(doc.paths['/jobs/{job_id}'].get.parameters.map((p: any) => `${p.in}:${p.name}`)).to.include.members(['path:job_id', 'query:wait_s']);
  });

  it('documents the API in the README, with a link to /openapi.json', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).to.include('/openapi.json');
    expect(readme).to.include('/tools?format=');
  });
});

describe('tool descriptions follow a loaded configuration', () => {
  it('takes its numbers from the config in effect', () => {
    const config = loadConfig({ overrides: { files: { maxReadBytes: 4242 } } });
    const read = TOOLS.find((t) => t.name === 'file_read')!;
    expect(read.describe(config)).to.include('4242 bytes');
  });
});
