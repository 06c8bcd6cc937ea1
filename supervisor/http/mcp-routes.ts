/**
 * The MCP endpoint (Model Context Protocol over Streamable HTTP, stateless: a new server and transport per
 * request). It serves the catalog's tools with the HTTP API's own validation and errors: a tool that fails answers
 * with a result flagged isError whose text is the JSON error body, never with a protocol error. Tools that queue a
 * job go through the tool routes' submission path; the other tools (the jobs API) are called on this server's own
 * HTTP route, so their behaviour is the route's by construction. Auth is the app's bearer check in front of it.
 */
import type { IncomingMessage } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ErrorCode as RpcErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import express, { type Request, type Response } from 'express';
import { type ErrorCode, fromSerialized, toToolhostError } from '../../lib/errors.js';
import { TOOL_CATALOG, findTool, type ToolSpec } from '../../lib/tool-catalog.js';
import { inputJsonSchema, toolDescription } from '../../lib/tool-formats.js';
import { VERSION } from '../../lib/version.js';
import type { AppDeps } from './app.js';
import { sendError } from './errors.js';
import { submitTool } from './tool-routes.js';
import { validate } from './validate.js';

const INSTRUCTIONS =
  'toolhost runs developer tools in projects stored on the server: every tool but the job_* ones takes a project_id, ' +
  'and paths are relative to the project root. Explore with file_list and search, read with file_read, change files ' +
  'with file_edit and file_write, and build or test with execute; follow long commands with job_status.';

/** POST /mcp, and 405 for GET and DELETE (no server-initiated streams or sessions in stateless mode). */
export function mcpRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  const json = express.json({ limit: d.config.http.maxBodyBytes, strict: true, type: () => true });
  router.post('/mcp', json, async (req, res) => {
    const server = mcpServer(d, req, res);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    try {
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    } catch (err) {
      sendError(res, err);
    }
  });
  const notAllowed = (_req: Request, res: Response): void => {
    res.status(405).set('Allow', 'POST').json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed: this MCP endpoint is stateless; POST JSON-RPC messages to it.' }, id: null });
  };
  router.get('/mcp', notAllowed);
  router.delete('/mcp', notAllowed);
  return router;
}

/**
 * One MCP server for one HTTP request. The low-level Server (not McpServer) because the tools carry our own JSON
 * Schemas and validation: McpServer would validate arguments itself and answer with its own errors.
 */
function mcpServer(d: AppDeps, req: Request, res: Response): Server {
  const server = new Server({ name: 'toolhost', version: VERSION }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOL_CATALOG.map((t) => mcpTool(t, d)) }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const tool = findTool(request.params.name);
    if (!tool) throw new McpError(RpcErrorCode.InvalidParams, `unknown tool "${request.params.name}"; tools/list names the tools`);
    try {
      const value = await callTool(d, tool, request.params.arguments ?? {}, {
        signal: extra.signal,
        requestId: res.locals.requestId as string | undefined,
        self: selfUrl(req),
        authorization: req.get('authorization'),
      });
      const result: CallToolResult = { content: [{ type: 'text', text: JSON.stringify(value) }] };
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) result.structuredContent = value as Record<string, unknown>;
      return result;
    } catch (err) {
      const e = toToolhostError(err);
      return { isError: true, content: [{ type: 'text', text: JSON.stringify({ error: { code: e.code, message: e.message, ...e.details } }) }] };
    }
  });
  return server;
}

function mcpTool(t: ToolSpec, d: AppDeps): Tool {
  return {
    name: t.name,
    title: t.title,
    description: toolDescription(t, d.config),
    inputSchema: inputJsonSchema(t) as Tool['inputSchema'],
    annotations: { title: t.title, readOnlyHint: t.readOnly, openWorldHint: false },
  };
}

interface CallContext {
  signal: AbortSignal;
  requestId: string | undefined;
  /** Base URL of this server, as the MCP request reached it. */
  self: string;
  authorization: string | undefined;
}

/** Validates the arguments with the tool's schema, then runs the tool; throws the tool's error. */
async function callTool(d: AppDeps, tool: ToolSpec, args: Record<string, unknown>, ctx: CallContext): Promise<unknown> {
  const body = validate(tool.input(), args, `tool ${tool.name}`);
  if (tool.jobType) return submitTool(d, tool.jobType, body as { project_id: string }, ctx.signal, ctx.requestId);
  return callRoute(tool, args, ctx);
}

/** Calls the tool's HTTP route on this server, with the caller's credentials and request id. */
async function callRoute(tool: ToolSpec, args: Record<string, unknown>, ctx: CallContext): Promise<unknown> {
  const rest = { ...args };
  const path = tool.route.path.replace(/\{(\w+)\}/g, (_m, field: string) => {
    const value = String(rest[field]);
    delete rest[field];
    return encodeURIComponent(value);
  });
  const url = new URL(path, ctx.self);
  const isPost = tool.route.method === 'POST';
  if (!isPost) for (const [k, v] of Object.entries(rest)) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (isPost) headers['content-type'] = 'application/json';
  if (ctx.authorization) headers.authorization = ctx.authorization;
  if (ctx.requestId) headers['x-request-id'] = ctx.requestId;
  const res = await fetch(url, { method: tool.route.method, headers, body: isPost ? JSON.stringify(rest) : null, signal: ctx.signal });
  const body = (await res.json()) as { error?: { code: string; message: string } & Record<string, unknown> };
  if (res.ok) return body;
  const { code, message, ...details } = body.error ?? { code: 'internal', message: `HTTP ${res.status}` };
  throw fromSerialized({ code: code as ErrorCode, message, details });
}

function selfUrl(req: IncomingMessage): string {
  const { localAddress, localPort } = req.socket;
  const host = localAddress?.includes(':') ? `[${localAddress}]` : (localAddress ?? '127.0.0.1');
  return `http://${host}:${localPort}`;
}
