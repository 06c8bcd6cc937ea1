/**
 * The official MCP SDK client against a test server, as an MCP host would use it: default request timeout,
 * bearer token in the request headers.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { TestServer } from './harness.js';

/** A tool result as the client returns it. */
export interface ToolResult {
  isError?: boolean;
  content: ({ type: 'text'; text: string } | { type: 'image'; data: string; mimeType: string })[];
  structuredContent?: Record<string, unknown>;
}

/** Connects a client to `s`'s /mcp with `token` (the server's by default; undefined: none). */
export async function mcpClient(s: TestServer, token: string | null | undefined = s.token): Promise<Client> {
  const client = new Client({ name: 'toolhost-test', version: '1.0.0' });
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), { requestInit: { headers } }));
  return client;
}

/** The text of a result (every text item, joined by newlines). */
export function resultText(r: ToolResult): string {
  return r.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n');
}

/** The JSON of an error result's text (the HTTP API's error body). */
export function errorJson(r: ToolResult): { error: { code: string; message: string; [k: string]: unknown } } {
  if (!r.isError) throw new Error(`expected an error result, got ${resultText(r)}`);
  return JSON.parse(resultText(r));
}

/** Every job id (a UUID) a text names, in order. */
export function jobIds(text: string): string[] {
  return text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? [];
}
