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
