/**
 * The README's agent-builder examples are the files in examples/ (so the README cannot drift from code the
 * typecheck compiles), and they run: the MCP client against a real server, the OpenAI and Anthropic loops against
 * a real server and a stand-in model server that answers with a tool call, then with the tool result it got.
 */
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { expect } from 'chai';
import OpenAI from 'openai';
import { anthropicBuiltinAgent } from '../examples/anthropic-builtin.js';
import { anthropicAgent } from '../examples/anthropic-messages.js';
import { mcpExample } from '../examples/mcp-client.js';
import { openAIAgent } from '../examples/openai-chat.js';
import { MODEL_TOOLS } from '../supervisor/http/tools.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { DEMO_FILES } from './helpers/tool-calls.js';

const EXAMPLES = new URL('../examples/', import.meta.url);

/** A stand-in model API: the first request gets `first`, later ones get `then(body)` (the request's JSON). */
async function modelServer(first: unknown, then: (body: Record<string, any>) => unknown): Promise<{ url: string; server: Server; seen: any[] }> {
  const seen: any[] = [];
  const server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => {
      data += c;
    });
    req.on('end', () => {
      const body = JSON.parse(data);
      seen.push(body);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(seen.length === 1 ? first : then(body)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen };
}

/** A Messages API answer of the stand-in model. */
function anthropicReply(content: unknown[], stop_reason: string) {
  return {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'stand-in',
    content,
    stop_reason,
    stop_sequence: null,
    usage: { input_tokens: 1, output_tokens: 1 },
  };
}

describe('README examples for agent builders', () => {
  let s: TestServer;
  const token = 'examples-token-0123456789abcdef';
  const stop: Server[] = [];
  before(async () => {
    s = await startServer({ token });
    expect((await s.putProject('demo', DEMO_FILES)).status).to.equal(201);
  });
  after(async () => {
    for (const server of stop) server.close();
    await s?.close({ force: true });
  });

  it('shows every example file, verbatim, in the README', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const files = (await readdir(EXAMPLES)).filter((f) => f.endsWith('.ts')).sort();
    expect(files).to.deep.equal(['anthropic-builtin.ts', 'anthropic-messages.ts', 'mcp-client.ts', 'openai-chat.ts']);
    const blocks = [...readme.matchAll(/```ts\n(\/\/ examples\/[\s\S]*?)```/g)].map((m) => m[1]);
    for (const file of files) {
      const code = await readFile(new URL(file, EXAMPLES), 'utf8');
      expect(code.startsWith(`// examples/${file}`), file).to.equal(true);
      expect(blocks, `README has examples/${file} as it is`).to.include(code);
    }
    expect(blocks).to.have.length(files.length);
  });

  it('runs the MCP example: lists the tools, runs a command and follows it with job_status', async () => {
    const r = await mcpExample(s.url, token, 'demo', 'sleep 2; echo from-mcp');
    expect(r.tools).to.deep.equal(MODEL_TOOLS.map((t) => t.name));
    expect(r.text).to.include('exit_code 0').and.include('from-mcp');
  });

  it('runs the OpenAI example: strict-mode tools, a tool call with nulls, the tool message back', async () => {
    const args = { project_id: 'demo', command: 'echo from-openai', cwd: null, env: null, timeout_s: null, wait_s: null, background: null, stdin: null };
    const call = { id: 'call_1', type: 'function', function: { name: 'execute', arguments: JSON.stringify(args) } };
    const reply = (message: Record<string, unknown>, finish: string) => ({
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 0,
      model: 'stand-in',
      choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null, ...message }, finish_reason: finish, logprobs: null }],
    });
    const model = await modelServer(reply({ tool_calls: [call] }, 'tool_calls'), (body) => reply({ content: body.messages.at(-1).content }, 'stop'));
    stop.push(model.server);
    const answer = await openAIAgent(s.url, token, 'say hello', new OpenAI({ apiKey: 'none', baseURL: `${model.url}/v1` }), 'stand-in');
    expect(answer).to.include('from-openai');
    expect(model.seen[0].tools.every((t: { function: { strict: boolean } }) => t.function.strict === true)).to.equal(true);
    expect(model.seen[1].messages.at(-1)).to.include({ role: 'tool', tool_call_id: 'call_1' });
  });

  it('runs the Anthropic example: a tool_use answered with a tool_result', async () => {
    const use = { type: 'tool_use', id: 'toolu_1', name: 'file_read', input: { project_id: 'demo', path: 'README.md' } };
    const model = await modelServer(anthropicReply([use], 'tool_use'), (body) => {
      const result = body.messages.at(-1).content[0];
      return anthropicReply([{ type: 'text', text: result.content.map((c: { text: string }) => c.text).join('\n') }], 'end_turn');
    });
    stop.push(model.server);
    const answer = await anthropicAgent(s.url, token, 'read the README', new Anthropic({ apiKey: 'none', baseURL: model.url }), 'stand-in');
    expect(answer).to.include('# demo');
    expect(model.seen[1].messages.at(-1).content[0]).to.include({ type: 'tool_result', tool_use_id: 'toolu_1', is_error: false });
  });

  it("runs the Anthropic built-in tools example: bash on a persistent shell, then the text editor's view", async () => {
    const bash = (id: string, command: string) => ({ type: 'tool_use', id, name: 'bash', input: { command } });
    const turns = [
      [bash('toolu_1', 'cd src && export GREETING=hello')],
      [
        bash('toolu_2', 'pwd; echo "$GREETING"'),
        { type: 'tool_use', id: 'toolu_3', name: 'str_replace_based_edit_tool', input: { command: 'view', path: '/src/app.ts', view_range: [2, 2] } },
      ],
    ];
    const model = await modelServer(anthropicReply(turns[0]!, 'tool_use'), (body) => {
      const n = body.messages.filter((m: { role: string }) => m.role === 'assistant').length;
      if (n < turns.length) return anthropicReply(turns[n]!, 'tool_use');
      const results = body.messages.at(-1).content as { content: { text: string }[] }[];
      return anthropicReply([{ type: 'text', text: results.map((r) => r.content.map((c) => c.text).join('')).join('\n') }], 'end_turn');
    });
    stop.push(model.server);
    const answer = await anthropicBuiltinAgent(s.url, token, 'demo', 'look around', new Anthropic({ apiKey: 'none', baseURL: model.url }), 'stand-in');
    expect(answer).to.match(/\/src\nhello/);
    expect(answer).to.include("Here's the result of running `cat -n` on /src/app.ts").and.include('const port = 3000;');
    expect(model.seen[0].tools.map((t: { type: string }) => t.type)).to.deep.equal(['text_editor_20250728', 'bash_20250124']);
  });
});
