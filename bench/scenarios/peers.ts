/**
 * peers: toolhost beside the reference MCP server, @modelcontextprotocol/server-filesystem (a devDependency), on
 * the call an agent makes most: reading a small file. The same 4 KiB file is read three ways, one call at a time,
 * in rotating order so drift on the machine hits every side alike:
 *   - the reference server over stdio (its own process, started the way MCP hosts start it), through the MCP SDK's
 *     Client and StdioClientTransport, tool `read_text_file`;
 *   - toolhost's HTTP API, POST /file/read on a keep-alive connection;
 *   - toolhost's MCP endpoint, Streamable HTTP at /mcp, through the SDK's Client and StreamableHTTPClientTransport,
 *     tool `file_read`.
 *   - toolhost's MCP endpoint again through a plain node:http client (the HTTP side's kind of client) posting the
 *     JSON-RPC call and reading the SSE answer itself: the MCP figure without the SDK client's costs, for
 *     information, which tells the server's share of the MCP figure from the client's.
 * Both SDK sides use the same Client, so its protocol costs (schema validation of every message) are on both; the
 * Streamable HTTP client adds fetch (undici) and web streams per call, which stdio does not have.
 */
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { sourceFile } from '../lib/dataset.js';
import { authHeaders, JsonClient } from '../lib/http.js';
import { uploadFiles, writeFiles } from '../lib/project.js';
import { percentile } from '../lib/stats.js';
import { launchSupervisor, REPO_ROOT } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

/** The reference server's entry point, run with this Node like the supervisor. */
const REFERENCE_ENTRY = join(REPO_ROOT, 'node_modules/@modelcontextprotocol/server-filesystem/dist/index.js');

/** A side of the comparison: its name and one read. */
interface Side {
  name: string;
  read: () => Promise<void>;
}

/**
 * Warms every side up, then calls them `n` rounds, one call each per round; the order rotates each round so no
 * side always follows the same other one (its GC, its log writes). Returns each side's samples (ms) by name.
 */
async function timeRotating(n: number, warmup: number, sides: readonly Side[]): Promise<Map<string, number[]>> {
  for (let i = 0; i < warmup; i++) for (const s of sides) await s.read();
  const out = new Map(sides.map((s) => [s.name, [] as number[]]));
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < sides.length; k++) {
      const s = sides[(i + k) % sides.length]!;
      const t0 = performance.now();
      await s.read();
      out.get(s.name)!.push(performance.now() - t0);
    }
  }
  return out;
}

/** The text of an MCP tool result's text items, joined. */
function resultText(r: Awaited<ReturnType<Client['callTool']>>): string {
  if (r.isError) throw new Error(`the tool failed: ${JSON.stringify(r.content).slice(0, 500)}`);
  return (r.content as { type: string; text?: string }[]).map((c) => (c.type === 'text' ? (c.text ?? '') : '')).join('\n');
}

/** file_read's model text back to the file: the `cat -n` numbers and the closing "[lines ...]" line taken off. */
function unnumbered(text: string): string {
  const lines = text.split('\n');
  if (!/^\[lines .*end of file\]$/.test(lines.at(-1) ?? '')) throw new Error(`file_read did not read to the end: ${lines.at(-1)}`);
  return `${lines
    .slice(0, -1)
    .map((l) => l.replace(/^ *\d+\t/, ''))
    .join('\n')}\n`;
}

/**
 * A tools/call posted to /mcp with node:http on a keep-alive connection, the SSE answer read by hand: the MCP call
 * with the client the HTTP side uses. Resolves with the result's text.
 */
function rawMcpCaller(url: string, token: string): { call: (name: string, args: Record<string, unknown>) => Promise<string>; close: () => void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const headers = {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
    'mcp-protocol-version': LATEST_PROTOCOL_VERSION,
  };
  let id = 0;
  const call = (name: string, args: Record<string, unknown>): Promise<string> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name, arguments: args } });
      const req = request(new URL('/mcp', url), { method: 'POST', agent, headers }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          const data = text.split('\n').find((l) => l.startsWith('data: '));
          if (res.statusCode !== 200 || !data) return reject(new Error(`/mcp answered ${res.statusCode}: ${text.slice(0, 500)}`));
          const msg = JSON.parse(data.slice(6)) as { result?: Parameters<typeof resultText>[0]; error?: unknown };
          if (!msg.result) return reject(new Error(`/mcp answered an error: ${JSON.stringify(msg.error)}`));
          resolve(resultText(msg.result));
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  return { call, close: () => agent.destroy() };
}

export const peers: Scenario = {
  name: 'peers',
  description:
    'A 4 KiB text file read one call at a time through the reference MCP server (@modelcontextprotocol/server-filesystem over stdio, read_text_file, MCP SDK client), toolhost POST /file/read (keep-alive), and toolhost /mcp (Streamable HTTP, file_read, MCP SDK client; and a plain node:http client for information), in rotating order.',
  async run(ctx) {
    const n = ctx.smoke ? 20 : 500;
    const warmup = ctx.smoke ? 5 : 50;
    const content = sourceFile(3, 4096);
    const local = join(ctx.tmp, 'reference');
    await writeFiles(local, { 'file4k.ts': content });
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const http = new JsonClient(sup);
    const reference = new Client({ name: 'toolhost-bench', version: '1' });
    const toolhost = new Client({ name: 'toolhost-bench', version: '1' });
    const raw = rawMcpCaller(sup.url, sup.token);
    try {
      await uploadFiles(http, 'peers', { 'src/file4k.ts': content }, ctx.tmp);
      await reference.connect(new StdioClientTransport({ command: process.execPath, args: [REFERENCE_ENTRY, local], stderr: 'ignore' }));
      await toolhost.connect(new StreamableHTTPClientTransport(new URL('/mcp', sup.url), { requestInit: { headers: authHeaders(sup) } }));
      const referencePath = join(local, 'file4k.ts');
      const sides: Side[] = [
        {
          name: 'reference',
          read: async () => {
            const text = resultText(await reference.callTool({ name: 'read_text_file', arguments: { path: referencePath } }));
            if (text !== content) throw new Error('read_text_file returned other content than the file');
          },
        },
        {
          name: 'http',
          read: async () => {
            const r = await http.post('/file/read', { project_id: 'peers', path: 'src/file4k.ts' });
            if (r.body.content !== content) throw new Error('/file/read returned other content than the file');
          },
        },
        {
          name: 'mcp',
          read: async () => {
            const text = resultText(await toolhost.callTool({ name: 'file_read', arguments: { project_id: 'peers', path: 'src/file4k.ts' } }));
            if (unnumbered(text) !== content) throw new Error('file_read over /mcp returned other content than the file');
          },
        },
        {
          name: 'raw',
          read: async () => {
            const text = await raw.call('file_read', { project_id: 'peers', path: 'src/file4k.ts' });
            if (unnumbered(text) !== content) throw new Error('file_read over /mcp (node:http) returned other content than the file');
          },
        },
      ];
      ctx.log(`${n} reads each side`);
      const s = await timeRotating(n, warmup, sides);
      const p = (side: string, q: number): number => percentile(s.get(side)!, q);
      return [
        {
          figure: 'HTTP read p50 vs reference MCP (stdio) read p50',
          unit: 'ms',
          value: p('http', 50),
          baseline: p('reference', 50),
          target: { of: 'ratio', op: '<', limit: 1 },
          note: 'toolhost POST /file/read vs server-filesystem read_text_file over stdio',
        },
        { figure: 'HTTP read p99 vs reference MCP (stdio) read p99', unit: 'ms', value: p('http', 99), baseline: p('reference', 99) },
        {
          figure: 'MCP read p50 vs HTTP read p50',
          unit: 'ms',
          value: p('mcp', 50),
          baseline: p('http', 50),
          target: { of: 'ratio', op: '<=', limit: 1.5 },
          note: 'toolhost /mcp file_read vs toolhost POST /file/read',
        },
        { figure: 'MCP read p99 vs HTTP read p99', unit: 'ms', value: p('mcp', 99), baseline: p('http', 99) },
        {
          figure: 'MCP read p50 vs reference MCP (stdio) read p50',
          unit: 'ms',
          value: p('mcp', 50),
          baseline: p('reference', 50),
          note: 'both through the MCP SDK client: toolhost over Streamable HTTP, the reference over stdio',
        },
        { figure: 'MCP read p99 vs reference MCP (stdio) read p99', unit: 'ms', value: p('mcp', 99), baseline: p('reference', 99) },
        {
          figure: 'MCP read p50 with a plain node:http client vs HTTP read p50',
          unit: 'ms',
          value: p('raw', 50),
          baseline: p('http', 50),
          note: "the same /mcp call without the SDK client (the HTTP side's kind of client): the server's share of the MCP figure",
        },
      ];
    } finally {
      await Promise.allSettled([reference.close(), toolhost.close()]);
      raw.close();
      http.close();
      await sup.stop();
    }
  },
};
