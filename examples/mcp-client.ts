// examples/mcp-client.ts: toolhost over MCP (Streamable HTTP) with the official SDK's client.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

/** The text of a tool result (images left out). */
function textOf(result: Awaited<ReturnType<Client['callTool']>>): string {
  const content = Array.isArray(result.content) ? (result.content as Array<{ type: string; text?: string }>) : [];
  return content.flatMap((c) => (c.type === 'text' && c.text !== undefined ? [c.text] : [])).join('\n');
}

/** Lists the tools, runs a command in `projectId` and follows it with job_status until it ends; returns its text. */
export async function mcpExample(toolhost: string, token: string, projectId: string, command: string): Promise<{ tools: string[]; text: string }> {
  const client = new Client({ name: 'my-agent', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL('/mcp', toolhost), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  try {
    const { tools } = await client.listTools();
    // A command still running when the call's wait ends answers "running ...; job_id <id>" and keeps running.
    let result = await client.callTool({ name: 'execute', arguments: { project_id: projectId, command, wait_s: 1 } });
    let text = textOf(result);
    for (let polls = 0; /^(running|queued)/.test(text) && polls < 100; polls++) {
      const jobId = /job_id ([0-9a-f-]{36})/.exec(text)?.[1];
      if (!jobId) break;
      result = await client.callTool({ name: 'job_status', arguments: { job_id: jobId, wait_s: 30 } });
      text = textOf(result);
    }
    if (result.isError) throw new Error(text);
    return { tools: tools.map((t) => t.name), text };
  } finally {
    await client.close();
  }
}
