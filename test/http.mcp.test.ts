import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { expect } from 'chai';
import { TOOLS } from '../supervisor/http/tools.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { DEMO_FILES, startStdinJob, withJob } from './helpers/tool-calls.js';

type ToolResult = { isError?: boolean; content: { type: string; text: string }[]; structuredContent?: Record<string, unknown> };

/** The JSON in a tool result's text. */
function json(r: ToolResult): any {
  expect(r.content[0]!.type).to.equal('text');
  return JSON.parse(r.content[0]!.text);
}

describe('MCP endpoint (Streamable HTTP)', () => {
  let s: TestServer;
  const token = 'mcp-token-0123456789abcdef';
  const clients: Client[] = [];

  async function connect(auth: string | undefined = token): Promise<Client> {
    const client = new Client({ name: 'toolhost-test', version: '1.0.0' });
    const headers: Record<string, string> = auth ? { authorization: `Bearer ${auth}` } : {};
    await client.connect(new StreamableHTTPClientTransport(new URL(`${s.url}/mcp`), { requestInit: { headers } }));
    clients.push(client);
    return client;
  }

  async function call(client: Client, name: string, args: Record<string, unknown>): Promise<ToolResult> {
    return (await client.callTool({ name, arguments: args })) as ToolResult;
  }

  before(async () => {
    s = await startServer({ token });
    expect((await s.putProject('demo', DEMO_FILES)).status).to.equal(201);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });
  after(async () => s?.close({ force: true }));

  it("initializes and lists the catalog's tools with their JSON Schemas", async () => {
    const client = await connect();
    expect(client.getServerVersion()?.name).to.equal('toolhost');
    expect(client.getServerCapabilities()?.tools).to.be.an('object');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).to.deep.equal(TOOLS.map((t) => t.name));
    const anthropic = (await s.api('/tools?format=anthropic')).body.tools as any[];
    tools.forEach((t, i) => {
      expect(t.inputSchema).to.deep.equal(anthropic[i].input_schema);
      expect(t.description).to.equal(anthropic[i].description);
    });
    expect(tools.find((t) => t.name === 'file_read')!.annotations?.readOnlyHint).to.equal(true);
  });

  it('calls every tool with its example, through the same job path as HTTP', async () => {
    const client = await connect();
    const jobId = await startStdinJob(s);
    for (const tool of TOOLS) {
      for (const example of tool.examples) {
        const r = await call(client, tool.name, withJob(example, jobId));
        expect(r.isError ?? false, `${tool.name}: ${r.content[0]?.text}`).to.equal(false);
        expect(r.structuredContent).to.deep.equal(json(r));
      }
    }
    const read = await call(client, 'file_read', { project_id: 'demo', path: 'src/app.ts' });
    expect(json(read).content).to.include('process.env.PORT', 'the file_edit example was applied');
    const jobs = (await s.api('/jobs?project_id=demo')).body.jobs as { command: string }[];
    expect(jobs.map((j) => j.command)).to.include('ls -la && git status --short');
  });

  it("answers tool errors as results flagged isError, with the HTTP API's JSON error body", async () => {
    const client = await connect();
    const missing = await call(client, 'file_read', { project_id: 'demo', path: 'nope.txt' });
    expect(missing.isError).to.equal(true);
    expect(json(missing).error.code).to.equal('file_not_found');
    expect(json(missing).error.message).to.include('nope.txt');

    const unknown = await call(client, 'file_read', { project_id: 'demo', path: 'README.md', encoding: 'latin1' });
    expect(unknown.isError).to.equal(true);
    expect(json(unknown).error).to.include({ code: 'unknown_field' });
    expect(json(unknown).error.fields).to.deep.equal(['encoding']);

    const invalid = await call(client, 'execute', { project_id: 'demo' });
    expect(json(invalid).error.code).to.equal('bad_request');
    expect(json(invalid).error.message).to.include('command');

    const noJob = await call(client, 'job_status', { job_id: '00000000-0000-4000-8000-000000000000', wait_s: 0 });
    expect(noJob.isError).to.equal(true);
    expect(json(noJob).error.code).to.equal('job_not_found');

    const edit = await call(client, 'file_edit', { project_id: 'demo', path: 'README.md', old_str: 'absent text', new_str: 'x' });
    expect(json(edit).error.code).to.equal('edit_no_match');
  });

  it('waits for a longer command and returns its output', async () => {
    const client = await connect();
    const r = await call(client, 'execute', { project_id: 'demo', command: 'sleep 2; echo done' });
    expect(r.isError ?? false).to.equal(false);
    expect(json(r)).to.include({ status: 'completed', exit_code: 0, stdout: 'done\n' });
    expect(json(r).duration_ms).to.be.at.least(2000);
  });

  it('refuses a client without the bearer token', async () => {
    let err: unknown;
    try {
      await connect('wrong-token-wrong-token');
    } catch (e) {
      err = e;
    }
    expect((err as { code?: number }).code).to.equal(401);
    expect(String(err)).to.include('unauthorized');
    const raw = await fetch(`${s.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(raw.status).to.equal(401);
    expect(((await raw.json()) as any).error.code).to.equal('unauthorized');
  });

  it('answers GET and DELETE with 405: the endpoint is stateless', async () => {
    for (const method of ['GET', 'DELETE']) {
      const r = await s.api('/mcp', undefined, { method });
      expect(r.status, method).to.equal(405);
      expect(r.headers.get('allow')).to.equal('POST');
    }
  });
});
