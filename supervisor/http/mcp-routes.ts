/**
 * The MCP endpoint (Model Context Protocol over Streamable HTTP, stateless: a new server and transport per
 * request). It serves the catalog's tools with the HTTP API's own validation and errors: a tool that fails answers
 * with a result flagged isError whose text is the JSON error body, never with a protocol error.  Every call takes
 * the same path as the tool's HTTP route (tools.ts). Auth is the app's bearer check in front of it.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  McpError,
  type Tool as McpTool,
  ErrorCode as RpcErrorCode,
} from '@modelcontextprotocol/sdk/types.js';
import express, { type Request, type Response } from 'express';
import { inputJsonSchema, toolDescription } from '../../lib/tool-formats.js';
import { VERSION } from '../../lib/version.js';
import type { AppDeps } from './deps.js';
import { errorBody } from './errors.js';
import { callTool, findTool, TOOLS, type Tool } from './tools.js';
import { jsonBody, toolInput } from './validate.js';

const INSTRUCTIONS =
  'toolhost runs developer tools in projects stored on the server: every tool but the job_* ones takes a project_id, ' +
  'and paths are relative to the project root. Explore with file_list and search, read with file_read, change files ' +
  'with file_edit and file_write, and build or test with execute; follow long commands with job_status.';

/** POST /mcp, and 405 for GET and DELETE (no server-initiated streams or sessions in stateless mode). */
export function mcpRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  const json = jsonBody(d.config.http.maxBodyBytes);
  router.post('/mcp', json, async (req, res) => {
    const server = mcpServer(d, res);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
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
 * One MCP server for one HTTP request. The low-level Server (not McpServer) because the tools carry our own JSON
 * Schemas and validation: McpServer would validate arguments itself and answer with its own errors.
 */
function mcpServer(d: AppDeps, res: Response): Server {
  const server = new Server({ name: 'toolhost', version: VERSION }, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS.map((t) => mcpTool(t, d)) }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const tool = findTool(request.params.name);
    if (!tool) throw new McpError(RpcErrorCode.InvalidParams, `unknown tool "${request.params.name}"; tools/list names the tools`);
    try {
      const input = toolInput(tool.input, request.params.arguments ?? {}, `tool ${tool.name}`);
      const value = await callTool(d, tool, input, { signal: extra.signal, requestId: res.locals.requestId as string | undefined });
      const result: CallToolResult = { content: [{ type: 'text', text: JSON.stringify(value) }] };
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) result.structuredContent = value as Record<string, unknown>;
      return result;
    } catch (err) {
      return { isError: true, content: [{ type: 'text', text: JSON.stringify(errorBody(res, err)) }] };
    }
  });
  return server;
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
