/**
 * The OpenAPI 3.1 document of the whole HTTP API (GET /openapi.json), generated from the same zod schemas the
 * routes validate with: the tools, requests and answers, come from their definitions (tools.ts), the other routes
 * from the table below. Error responses
 * are derived from the error codes each route can return and share one error body schema.
 */
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { ERROR_STATUS, type ErrorCode } from '../../lib/errors.js';
import * as schemas from '../../lib/schemas.js';
import { COMMON_ERRORS } from '../../lib/tool.js';
import { inputJsonSchema, type JsonSchema, toolDescription } from '../../lib/tool-formats.js';
import { TOOL_RESULT_SCHEMAS } from '../../lib/tool-results.js';
import { VERSION } from '../../lib/version.js';
import { ANTHROPIC_ROUTE_DOC } from './anthropic-routes.js';
import { callQuery } from './call-routes.js';
import { outputOffsets } from './job-tools.js';
import { OPENAI_ROUTE_DOC } from './openai-routes.js';
import { archiveQuery, deleteProjectQuery, putProjectQuery } from './project-routes.js';
import { MODEL_TOOLS, TOOLS } from './tools.js';

/** A route that is not a tool. */
interface RouteDoc {
  method: 'get' | 'put' | 'post' | 'delete';
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  /** Path parameters, by name. */
  pathParams?: Record<string, z.ZodType>;
  query?: z.ZodObject;
  body?: { contentType: string; schema: JsonSchema; description: string };
  /** Success responses: status -> content type and description. */
  ok: Record<string, { description: string; contentType?: string; schema?: JsonSchema }>;
  errors: readonly ErrorCode[];
  /** False for the one route without auth. */
  auth?: boolean;
}

const object = (description: string): JsonSchema => ({ type: 'object', description });
const ADMIN_ERRORS: readonly ErrorCode[] = ['shutting_down', 'internal'];
/** What a route with a JSON body can add: a body that is not JSON (415), too large (413), or malformed (400). */
const JSON_BODY_ERRORS: readonly ErrorCode[] = ['unsupported_media_type', 'payload_too_large', 'invalid_json'];

/** Every route that is not a tool (tools come from the catalog). */
const ROUTES: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/health',
    operationId: 'health',
    summary: 'Liveness, queue depth, pool and running jobs',
    auth: false,
    description: 'Needs no token; without a valid one the answer is only {"status"}.',
    ok: {
      '200': {
        description: 'The server is up (status "degraded" while write-backs fail: the server keeps serving, the copies stay cached).',
        schema: object(
          'status; with the token also uptime_s, role, node, queue (backend, depth), pool (threads, busy, per lane), jobs (running, by_type), cache (projects, dirty, bytes), writeback (failing: [{project_id, error, since, attempts}]), containment (sandbox, user, capabilities, network, process_limit, read_only, warnings).',
        ),
      },
    },
    errors: [],
  },
  {
    method: 'delete',
    path: '/projects/{id}',
    operationId: 'project_delete',
    summary: 'Delete a project from the store and the cache',
    description:
      'Refused (409 project_busy, saying what to do) while the project has jobs queued or running or unsaved changes in its working copy, unless force=true: then its commands are cancelled and unsaved changes are lost. Conflict copies in the store stay.',
    pathParams: { id: schemas.projectId },
    query: deleteProjectQuery,
    ok: { '200': { description: 'Deleted.', schema: object('project_id, archive_deleted, copy_discarded, unsaved_discarded.') } },
    errors: ['invalid_project_id', 'bad_request', 'project_not_found', 'project_busy', 'not_on_this_role', 'store_unavailable', ...ADMIN_ERRORS],
  },
  {
    method: 'delete',
    path: '/projects/{id}/cache',
    operationId: 'project_evict',
    summary: 'Evict the working copy now (written back first if changed)',
    pathParams: { id: schemas.projectId },
    ok: { '200': { description: 'Evicted (or was not cached: evicted false).', schema: object('project_id, evicted.') } },
    errors: [
      'invalid_project_id',
      'project_not_found',
      'project_busy',
      'archive_too_large',
      'unsafe_archive_entry',
      'store_unavailable',
      'no_space',
      ...ADMIN_ERRORS,
    ],
  },
  {
    method: 'get',
    path: '/projects/{id}/archive',
    operationId: 'project_archive',
    summary: 'Download the whole current project as one archive',
    description:
      'The working copy as it is now (unsaved changes included), packed as tar.gz (the default, application/gzip) or zip (application/zip), sent as an attachment.',
    pathParams: { id: schemas.projectId },
    query: archiveQuery,
    ok: { '200': { description: 'The archive.', contentType: 'application/gzip', schema: { type: 'string', contentMediaType: 'application/gzip' } } },
    errors: ['invalid_project_id', 'bad_request', 'unknown_field', 'project_not_found', 'not_on_this_role', 'store_unavailable', 'no_space', ...ADMIN_ERRORS],
  },
  {
    method: 'put',
    path: '/projects/{id}',
    operationId: 'project_put',
    summary: 'Upload a project archive (zip or tar.gz)',
    description: 'The body is the archive; it is extracted and checked before anything is stored.',
    pathParams: { id: schemas.projectId },
    query: putProjectQuery,
    body: {
      contentType: 'application/octet-stream',
      schema: { type: 'string', contentMediaType: 'application/octet-stream' },
      description: 'The archive bytes.',
    },
    ok: {
      '201': { description: 'Created.', schema: object('The project, as GET /projects/{id}.') },
      '200': { description: 'Replaced.', schema: object('The project, as GET /projects/{id}.') },
    },
    errors: [
      'invalid_project_id',
      'bad_request',
      'project_exists',
      'project_busy',
      'payload_too_large',
      'unsupported_media_type',
      'bad_archive',
      'unsafe_archive_entry',
      'archive_too_large',
      'no_space',
      'store_unavailable',
      ...ADMIN_ERRORS,
    ],
  },
  {
    method: 'get',
    path: '/jobs/{job_id}/stream',
    operationId: 'job_stream',
    summary: "Stream a command job's output (Server-Sent Events)",
    description: 'Events `stdout` and `stderr` carry {text, offset, next_offset}; `end` carries the final status.',
    pathParams: { job_id: schemas.jobId },
    query: outputOffsets,
    ok: { '200': { description: 'The event stream.', contentType: 'text/event-stream', schema: { type: 'string' } } },
    errors: ['job_not_found', 'bad_request', ...ADMIN_ERRORS],
  },
  {
    method: 'get',
    path: '/tools',
    operationId: 'tools',
    summary: 'Tool definitions for LLM tool calling',
    query: schemas.toolsQuery,
    ok: { '200': { description: 'The tools.', schema: object('{"format", "tools": [...], "routes": {name: {method, path}}}') } },
    errors: ['bad_request', 'unknown_field', ...ADMIN_ERRORS],
  },
  {
    method: 'post',
    path: '/tools/{name}/call',
    operationId: 'tool_call',
    summary: "Run a model's tool call; answers the tool result to append to the conversation",
    description:
      "The body is the tool's arguments exactly as the model produced them (null meaning not given). The answer is the tool's answer as a model reads it, in the provider's shape the format names. A failed call answers 200 with is_error true and the JSON error body as text, for the model to read.",
    pathParams: { name: z.enum(MODEL_TOOLS.map((t) => t.name) as [string, ...string[]]).describe('The tool, as GET /tools names it.') },
    query: callQuery,
    body: { contentType: 'application/json', schema: { type: 'object', description: "The tool's arguments." }, description: "The tool's arguments." },
    ok: { '200': { description: 'The tool result, in the format asked for.', schema: jsonSchema(z.union(Object.values(TOOL_RESULT_SCHEMAS)), 'output') } },
    errors: ['not_found', 'bad_request', 'unknown_field', 'not_on_this_role', ...JSON_BODY_ERRORS, ...ADMIN_ERRORS],
  },
  ANTHROPIC_ROUTE_DOC,
  OPENAI_ROUTE_DOC,
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openapi',
    summary: 'This document',
    ok: { '200': { description: 'OpenAPI 3.1.', schema: object('The OpenAPI document.') } },
    errors: ADMIN_ERRORS,
  },
  {
    method: 'post',
    path: '/mcp',
    operationId: 'mcp',
    summary: 'Model Context Protocol endpoint (Streamable HTTP, stateless)',
    description: 'JSON-RPC messages of MCP; the tools are the same as GET /tools. Send Accept: application/json, text/event-stream.',
    body: { contentType: 'application/json', schema: { type: ['object', 'array'] }, description: 'A JSON-RPC message or batch.' },
    ok: { '200': { description: 'JSON-RPC responses as an event stream.', contentType: 'text/event-stream', schema: { type: 'string' } } },
    errors: [...JSON_BODY_ERRORS, ...ADMIN_ERRORS],
  },
  {
    method: 'get',
    path: '/mcp',
    operationId: 'mcp_get',
    summary: 'Not supported in stateless mode (405)',
    ok: { '405': { description: 'Method not allowed.', schema: object('A JSON-RPC error.') } },
    errors: [],
  },
  {
    method: 'delete',
    path: '/mcp',
    operationId: 'mcp_delete',
    summary: 'Not supported in stateless mode (405)',
    ok: { '405': { description: 'Method not allowed.', schema: object('A JSON-RPC error.') } },
    errors: [],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'metrics',
    summary: 'Prometheus metrics',
    ok: { '200': { description: 'Prometheus text exposition format.', contentType: 'text/plain', schema: { type: 'string' } } },
    errors: ADMIN_ERRORS,
  },
  {
    method: 'get',
    path: '/admin/overview',
    operationId: 'admin_overview',
    summary: 'What the operator console shows: jobs in flight and recent, cache use against its budget, latency by tool',
    ok: {
      '200': {
        description: 'A snapshot.',
        schema: object(
          'node, role, jobs ([{job_id, tool, lane, project_id, status, command, created_at, finished_at, duration_ms, cancellable}]), cache ({projects, dirty, bytes, max_bytes} or null), latency ([{tool, count, p50_s, p95_s}]).',
        ),
      },
    },
    errors: ADMIN_ERRORS,
  },
  ...(['/console', '/console/console.js', '/console/console.css'] as const).map(
    (path): RouteDoc => ({
      method: 'get',
      path,
      operationId: `console_${path === '/console' ? 'page' : path.endsWith('.js') ? 'script' : 'style'}`,
      summary: 'The operator console (a static page: it holds no data; its calls carry the token the operator enters)',
      auth: false,
      ok: {
        '200': {
          description: 'The file.',
          contentType: path === '/console' ? 'text/html' : path.endsWith('.js') ? 'text/javascript' : 'text/css',
          schema: { type: 'string' },
        },
      },
      errors: [],
    }),
  ),
  {
    method: 'post',
    path: '/admin/reload',
    operationId: 'admin_reload',
    summary: 'Re-read the config file and apply it without a restart',
    ok: {
      '200': {
        description: 'Applied.',
        schema: {
          type: 'object',
          properties: {
            file: { type: ['string', 'null'] },
            applied: { type: 'array', items: { type: 'string' }, description: 'Options now in effect.' },
            restart_required: { type: 'array', items: { type: 'string' }, description: 'Changed options that keep their old value until a restart.' },
          },
        },
      },
    },
    errors: ['invalid_config', 'bad_request', ...ADMIN_ERRORS],
  },
];

/** The OpenAPI document for the configuration in effect, served from `serverUrl`. */
export function openApiDocument(config: Config, serverUrl: string): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  const add = (path: string, method: string, op: Record<string, unknown>): void => {
    const ops = paths[path] ?? {};
    ops[method] = op;
    paths[path] = ops;
  };
  const auth = config.auth === 'token';
  for (const tool of TOOLS) {
    const method = tool.route.method.toLowerCase();
    const input = inputJsonSchema(tool);
    const pathFields = [...tool.route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    const properties = input.properties as Record<string, JsonSchema>;
    const required = new Set((input.required ?? []) as string[]);
    const parameters: unknown[] = pathFields.map((name) => parameter(name, 'path', properties[name]!, true));
    const rest = Object.keys(properties).filter((k) => !pathFields.includes(k));
    const op: Record<string, unknown> = {
      operationId: tool.name,
      summary: tool.title,
      description: toolDescription(tool, config),
      tags: ['tools'],
    };
    if (method === 'post') {
      const body = { ...input, properties: pick(properties, rest), required: rest.filter((k) => required.has(k)) };
      const example = Object.fromEntries(Object.entries(tool.examples[0] ?? {}).filter(([k]) => !pathFields.includes(k)));
      op.requestBody = { required: true, content: { 'application/json': { schema: body, example } } };
    } else {
      parameters.push(...rest.map((name) => parameter(name, 'query', properties[name]!, required.has(name))));
    }
    if (parameters.length > 0) op.parameters = parameters;
    op.responses = responses(
      { '200': { description: "The tool's result.", schema: jsonSchema(tool.output, 'output') } },
      [...tool.errors, ...COMMON_ERRORS, ...(method === 'post' ? JSON_BODY_ERRORS : [])],
      auth,
    );
    add(tool.route.path, method, op);
  }
  for (const r of ROUTES) {
    const parameters = [...Object.entries(r.pathParams ?? {}).map(([name, s]) => parameter(name, 'path', jsonSchema(s), true)), ...queryParameters(r.query)];
    const op: Record<string, unknown> = { operationId: r.operationId, summary: r.summary, tags: [r.path.split('/')[1]!.replace('.json', '')] };
    if (r.description) op.description = r.description;
    if (parameters.length > 0) op.parameters = parameters;
    if (r.body) op.requestBody = { required: true, description: r.body.description, content: { [r.body.contentType]: { schema: r.body.schema } } };
    op.responses = responses(r.ok, r.errors, auth && r.auth !== false);
    if (auth && r.auth === false) op.security = [];
    add(r.path, r.method, op);
  }
  const doc: JsonSchema = {
    openapi: '3.1.0',
    info: {
      title: 'toolhost',
      version: VERSION,
      description:
        'Developer tools (shell, files, search) for coding LLM agents over many projects. Tools are also served as LLM tool definitions (GET /tools) and over MCP (POST /mcp).',
    },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      schemas: { Error: errorBodySchema() },
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'The server\'s token (its token setting, TOOLHOST_TOKEN, or the file "token" in its data directory): Authorization: Bearer <token>.',
        },
      },
    },
  };
  if (auth) doc.security = [{ bearer: [] }];
  return doc;
}

/** `{"error": {"code", "message", ...details}}`. */
function errorBodySchema(): JsonSchema {
  return {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', enum: Object.keys(ERROR_STATUS), description: 'Stable error code.' },
          message: { type: 'string', description: 'What went wrong and what to do next.' },
        },
        additionalProperties: true,
        description: 'Further fields are details of the error (path, lines, counts...).',
      },
    },
  };
}

function jsonSchema(s: z.ZodType, io: 'input' | 'output' = 'input'): JsonSchema {
  const out = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

function parameter(name: string, where: 'path' | 'query', schema: JsonSchema, required: boolean): Record<string, unknown> {
  const { description, ...rest } = schema;
  const p: Record<string, unknown> = { name, in: where, required, schema: rest };
  if (typeof description === 'string') p.description = description;
  return p;
}

function queryParameters(query: z.ZodObject | undefined): unknown[] {
  if (!query) return [];
  const s = jsonSchema(query);
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries((s.properties ?? {}) as Record<string, JsonSchema>).map(([name, p]) => parameter(name, 'query', p, required.has(name)));
}

function pick(o: Record<string, JsonSchema>, keys: string[]): Record<string, JsonSchema> {
  return Object.fromEntries(keys.map((k) => [k, o[k]!]));
}

/** Success responses, then one error response per status the codes map to (401 with auth). */
function responses(ok: RouteDoc['ok'], codes: readonly ErrorCode[], auth: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(ok)) {
    out[status] = { description: r.description, content: { [r.contentType ?? 'application/json']: { schema: r.schema ?? { type: 'object' } } } };
  }
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set<ErrorCode>([...codes, ...(auth ? (['unauthorized'] as const) : [])])) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: `Error: ${list.join(', ')}.`,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
    };
  }
  return out;
}
