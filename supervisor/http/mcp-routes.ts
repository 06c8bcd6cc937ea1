/**
 * The MCP endpoint (Model Context Protocol over Streamable HTTP, stateless: a new server and transport per
 * request; the transport meets Node's request and response in mcp-transport.ts). It serves the catalog's tools with the HTTP API's own validation and errors, and every call takes the
 * same path as the tool's HTTP route (tools.ts). Auth is the app's bearer check in front of it.
 *
 * What differs from HTTP, and why:
 *   - A call answers with the tool's answer as a model reads it (`modelContent`: text, and images as MCP
 *     ImageContent), not its JSON: an MCP result lands in a model's context. No structuredContent, which would put
 *     the same answer there twice; clients that need the JSON use the HTTP routes.
 *   - A tool that fails answers with a result flagged isError whose text is the JSON error body; only an unknown
 *     tool name is a protocol error.
 *   - No call waits longer than `mcp.defaultWaitS` (45 s): MCP clients give up on a request after a timeout of
 *     their own (the TypeScript SDK's default is 60 s, and it is reset by progress only when the client opted in
 *     with resetTimeoutOnProgress, which a progressToken does not tell us), and a command whose answer is lost
 *     loses its job_id. So a command without wait_s waits that long, a larger wait_s (execute, job_status) is
 *     lowered to it, and a command still running is answered with its job_id to follow with job_status.
 *   - While a command runs, a call that sent a progressToken gets progress notifications with its output
 *     (mcp-progress.ts).
 *   - Files are readable as resources, `toolhost://{project_id}/{path}` (mcp-resources.ts).
 */

import { randomUUID } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  type Tool as McpTool,
  ReadResourceRequestSchema,
  ErrorCode as RpcErrorCode,
} from '@modelcontextprotocol/sdk/types.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import express, { type Request, type Response } from 'express';
import type { Config } from '../../config/schema.js';
import { inputJsonSchema, toolDescription } from '../../lib/tool-formats.js';
import { VERSION } from '../../lib/version.js';
import type { AppDeps } from './deps.js';
import { mcpContent, RpcError } from './mcp-content.js';
import { followCommand } from './mcp-progress.js';
import { FILE_TEMPLATE, readFileResource } from './mcp-resources.js';
import { serveMcpRequest } from './mcp-transport.js';
import { shellTool } from './session-tools.js';
import { callForModel, findModelTool, findTool, MODEL_TOOLS, type Tool, type ToolCall } from './tools.js';
import { jsonBody } from './validate.js';

/** POST /mcp, and 405 for GET and DELETE (no server-initiated streams or sessions in stateless mode). */
export function mcpRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  const json = jsonBody(d.config.http.maxBodyBytes);
  // A Server makes its own validator (a new Ajv with every format added) unless given one: that was a third of the
  // CPU an MCP call cost. It only checks elicitation answers, which this server never asks for; one serves all.
  const validator = new AjvJsonSchemaValidator();
  router.post('/mcp', json, async (req, res) => {
    const server = mcpServer(d, res, mcpSession(req, res), validator);
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await serveMcpRequest(transport, req, res, req.body);
  });
  const notAllowed = (_req: Request, res: Response): void => {
    res
      .status(405)
      .set('Allow', 'POST')
      .json({
        jsonrpc: '2.0',
        error: { code: -32000, message: 'Method not allowed: this MCP endpoint is stateless; POST JSON-RPC messages to it.' },
        id: null,
      });
  };
  router.get('/mcp', notAllowed);
  router.delete('/mcp', notAllowed);
  return router;
}

/**
 * What a client shows the model once: how the tools fit together. A tool is named only if this build has it, so
 * the text reads right whichever tools a version ships.
 */
export function instructions(config: Config): string {
  const some = (...names: string[]): string => list(names.filter((n) => findTool(n)));
  const projects = findTool('project_list')
    ? ` ${some('project_list')} names the projects${findTool('project_create') ? ' and project_create makes a new one' : ''}.`
    : '';
  const wait = config.mcp.defaultWaitS;
  return (
    `toolhost runs developer tools in projects stored on the server. The file tools, search and execute take a project_id.${projects} ` +
    'Paths are relative to the project root. ' +
    `Find files with ${some('file_glob', 'file_list', 'search')}, read them with ${some('file_read')}, change them with ` +
    `${some('file_edit', 'file_insert', 'apply_patch', 'file_write')}, and build or test with ${some('shell', 'execute')}` +
    (findTool('shell') ? ' (shell keeps its working directory and variables between calls of this MCP session)' : '') +
    '. ' +
    `Over MCP a command answers within ${wait} s: one still running then answers with its job_id and keeps running; ` +
    'follow it with job_status (passing the offsets it returns) until its status is final, or stop it with job_cancel. ' +
    `Files can also be read as resources: ${FILE_TEMPLATE.uriTemplate}.`
  );
}

function list(names: string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/**
 * One MCP server for one HTTP request. The low-level Server (not McpServer) because the tools carry our own JSON
 * Schemas and validation: McpServer would validate arguments itself and answer with its own errors.
 */
function mcpServer(d: AppDeps, res: Response, session: string | undefined, jsonSchemaValidator: AjvJsonSchemaValidator): Server {
  const server = new Server(
    { name: 'toolhost', version: VERSION },
    { capabilities: { tools: {}, resources: {} }, instructions: instructions(d.config), jsonSchemaValidator },
  );
  const requestId = res.locals.requestId as string | undefined;
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: MODEL_TOOLS.map((t) => mcpTool(t, d)) }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const tool = findModelTool(request.params.name);
    if (!tool) throw new RpcError(RpcErrorCode.InvalidParams, `unknown tool "${request.params.name}"; tools/list names the tools`);
    const token = extra._meta?.progressToken;
    const stopProgress = new AbortController();
    let progress: Promise<void> | undefined;
    const call: ToolCall = { signal: extra.signal, requestId, defaultWaitS: d.config.mcp.defaultWaitS };
    if (token !== undefined) {
      call.onAccepted = (jobId) => {
        const stop = AbortSignal.any([stopProgress.signal, extra.signal]);
        const send = (p: { progress: number; message: string }) =>
          extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, ...p } });
        progress = followCommand(d, jobId, send, stop);
      };
    }
    try {
      const adjust = (input: Record<string, unknown>) => capWait(tool === shellTool ? withSession(input, session) : input, d.config.mcp.defaultWaitS);
      const { items, isError } = await callForModel(d, tool, request.params.arguments ?? {}, call, res, adjust);
      return isError ? { isError: true, content: mcpContent(items) } : { content: mcpContent(items) };
    } finally {
      // No notification may follow the answer.
      stopProgress.abort();
      await progress;
    }
  });
  server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: [FILE_TEMPLATE] }));
  server.setRequestHandler(ListResourcesRequestSchema, () => ({ resources: [] }));
  server.setRequestHandler(ReadResourceRequestSchema, (request, extra) => readFileResource(d, res, request.params.uri, { signal: extra.signal, requestId }));
  return server;
}

/**
 * The MCP session of a request, for the `shell` tool's default session: the endpoint is stateless, but hands out an
 * Mcp-Session-Id at initialize all the same, which clients send back on every later request. One whose header is
 * not one of ours (any other text) has none; its shell calls share the project's "default" shell.
 */
function mcpSession(req: Request, res: Response): string | undefined {
  const body = req.body as { method?: unknown } | undefined;
  if (body?.method === 'initialize') {
    const id = randomUUID();
    res.setHeader('Mcp-Session-Id', id);
    return id;
  }
  const given = req.get('mcp-session-id');
  return given !== undefined && /^[0-9a-f-]{36}$/.test(given) ? given : undefined;
}

/** A shell call without `session` runs on the MCP session's own shell. */
function withSession<T extends Record<string, unknown>>(input: T, session: string | undefined): T {
  return session === undefined || input.session !== undefined ? input : { ...input, session: `mcp-${session}` };
}

/** The input with a `wait_s` above `maxS` lowered to it (see the file's doc: the answer must beat the client's timeout). */
function capWait<T extends Record<string, unknown>>(input: T, maxS: number): T {
  return typeof input.wait_s === 'number' && input.wait_s > maxS ? { ...input, wait_s: maxS } : input;
}

function mcpTool(t: Tool, d: AppDeps): McpTool {
  return {
    name: t.name,
    title: t.title,
    description: toolDescription(t, d.config),
    inputSchema: inputJsonSchema(t) as McpTool['inputSchema'],
    annotations: { title: t.title, readOnlyHint: t.readOnly, openWorldHint: false },
  };
}
