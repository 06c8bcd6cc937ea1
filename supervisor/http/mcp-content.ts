/**
 * What an MCP call answers: a tool's answer as a model reads it (lib/tool.ts `modelContent`) mapped to MCP
 * content, and protocol errors whose message the SDK client prefixes exactly once.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ModelContent } from '../../lib/tool.js';

type McpContent = CallToolResult['content'][number];

/** Text stays text; an image becomes MCP's ImageContent (base64 data and its MIME type). */
export function mcpContent(items: readonly ModelContent[]): McpContent[] {
  return items.map((c) => (c.type === 'text' ? { type: 'text', text: c.text } : { type: 'image', data: c.data, mimeType: c.mediaType }));
}

/**
 * A command still queued or running is answered with its job id, whatever its tool's model text says: a model
 * that never learns the id cannot follow the command, and the command keeps running. The line names the call that
 * follows it. Undefined when the answer is not such a view or its text already names the id and job_status.
 */
export function followLine(value: unknown, items: readonly ModelContent[]): ModelContent | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as { job_id?: unknown; status?: unknown; stdout_offset?: unknown; stderr_offset?: unknown };
  if (typeof v.job_id !== 'string' || (v.status !== 'running' && v.status !== 'queued')) return undefined;
  const id = v.job_id;
  if (items.some((c) => c.type === 'text' && c.text.includes(id) && c.text.includes('job_status'))) return undefined;
  const args = { job_id: id, stdout_offset: Number(v.stdout_offset ?? 0), stderr_offset: Number(v.stderr_offset ?? 0) };
  return { type: 'text', text: `Still ${v.status}: job_id ${id}. Follow it with job_status ${JSON.stringify(args)}.` };
}

/**
 * A JSON-RPC error to throw from a request handler. Not an McpError: the SDK puts a thrown error's `message` on
 * the wire as is, McpError's message already reads "MCP error <code>: ...", and the SDK client adds that prefix
 * again when it rebuilds the error, so a client showed "MCP error -32602: MCP error -32602: ...".
 */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}
