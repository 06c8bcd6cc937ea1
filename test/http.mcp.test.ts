import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'chai';
import { findTool, MODEL_TOOLS } from '../supervisor/http/tools.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { errorJson, jobIds, mcpClient, resultText, type ToolResult } from './helpers/mcp-client.js';
import { DEMO_FILES, liveArgs, startStdinJob } from './helpers/tool-calls.js';

describe('MCP endpoint (Streamable HTTP)', () => {
  let s: TestServer;
  const token = 'mcp-token-0123456789abcdef';
  const clients: Client[] = [];

  async function connect(auth: string | undefined = token): Promise<Client> {
    const client = await mcpClient(s, auth);
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
    expect(client.getServerCapabilities()?.resources).to.be.an('object');
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).to.deep.equal(MODEL_TOOLS.map((t) => t.name));
    const anthropic = (await s.api('/tools?format=anthropic')).body.tools as any[];
    tools.forEach((t, i) => {
      expect(t.inputSchema).to.deep.equal(anthropic[i].input_schema);
      expect(t.description).to.equal(anthropic[i].description);
      expect(t.outputSchema, 'results are model text, so no tool promises structured content').to.equal(undefined);
    });
    expect(tools.find((t) => t.name === 'file_read')!.annotations?.readOnlyHint).to.equal(true);
  });

  it('tells the model how to find a project, follow a command and read files as resources', async () => {
    const client = await connect();
    const text = client.getInstructions() ?? '';
    for (const name of ['project_list', 'project_create', 'file_glob', 'file_read', 'execute', 'job_status', 'shell', 'apply_patch']) {
      // A tool is named exactly when this build has it: the text never sends a model to a tool that is not there.
      expect(text.includes(name), name).to.equal(findTool(name) !== undefined);
    }
    expect(text).to.include('45 s');
    expect(text).to.include('toolhost://{project_id}/{path}');
  });

  it('calls every tool with its example, through the same job path as HTTP, and answers model content only', async () => {
    const client = await connect();
    const jobId = await startStdinJob(s);
    for (const tool of MODEL_TOOLS) {
      for (const example of tool.examples) {
        const r = await call(client, tool.name, await liveArgs(s, example, jobId));
        expect(r.isError ?? false, `${tool.name}: ${resultText(r)}`).to.equal(false);
        expect(r.structuredContent, tool.name).to.equal(undefined);
        expect(r.content.length, tool.name).to.be.above(0);
        for (const c of r.content) expect(['text', 'image'], tool.name).to.include(c.type);
      }
    }
    const read = await call(client, 'file_read', { project_id: 'demo', path: 'src/app.ts' });
    expect(resultText(read)).to.include('process.env.PORT', 'the file_edit example was applied');
    const jobs = (await s.api('/jobs?project_id=demo')).body.jobs as { command: string }[];
    expect(jobs.map((j) => j.command)).to.include('ls -la && git status --short');
  });

  it("answers tool errors as results flagged isError, with the HTTP API's JSON error body", async () => {
    const client = await connect();
    const missing = await call(client, 'file_read', { project_id: 'demo', path: 'nope.txt' });
    expect(missing.isError).to.equal(true);
    expect(errorJson(missing).error.code).to.equal('file_not_found');
    expect(errorJson(missing).error.message).to.include('nope.txt');

    const unknown = await call(client, 'file_read', { project_id: 'demo', path: 'README.md', encoding: 'latin1' });
    expect(errorJson(unknown).error).to.include({ code: 'unknown_field' });
    expect(errorJson(unknown).error.fields).to.deep.equal(['encoding']);

    const invalid = await call(client, 'execute', { project_id: 'demo' });
    expect(errorJson(invalid).error.code).to.equal('bad_request');
    expect(errorJson(invalid).error.message).to.include('command');

    const noJob = await call(client, 'job_status', { job_id: '00000000-0000-4000-8000-000000000000', wait_s: 0 });
    expect(errorJson(noJob).error.code).to.equal('job_not_found');

    const edit = await call(client, 'file_edit', { project_id: 'demo', path: 'README.md', old_str: 'absent text', new_str: 'x' });
    expect(errorJson(edit).error.code).to.equal('edit_no_match');
  });

  it('answers an unknown tool with a protocol error whose message has one "MCP error" prefix', async () => {
    const client = await connect();
    let err: unknown;
    try {
      await client.callTool({ name: 'file_reed', arguments: {} });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(McpError);
    expect((err as McpError).code).to.equal(-32602);
    expect((err as McpError).message).to.equal('MCP error -32602: unknown tool "file_reed"; tools/list names the tools');
  });

  it('waits for a command that ends in time and answers its output as text', async () => {
    const client = await connect();
    const r = await call(client, 'execute', { project_id: 'demo', command: 'sleep 2; echo done-marker' });
    expect(r.isError ?? false).to.equal(false);
    expect(resultText(r)).to.include('done-marker');
    const [id] = jobIds(resultText(r));
    if (id) expect((await s.api(`/jobs/${id}?wait_s=0`)).body.status).to.equal('completed');
  });

  it('answers a background command with its job_id and how to follow it', async () => {
    const client = await connect();
    const r = await call(client, 'execute', { project_id: 'demo', command: 'sleep 30', background: true });
    const text = resultText(r);
    const [id] = jobIds(text);
    expect(id, text).to.be.a('string');
    expect(text).to.include('job_status');
    expect((await s.api(`/jobs/${id}`, undefined, { method: 'DELETE' })).body.status).to.equal('cancelled');
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
