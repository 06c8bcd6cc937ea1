/**
 * The `shell` tool, a model's persistent shell: over HTTP and through the MCP SDK's own client, where each MCP
 * session gets its own shell; state carries over between calls of one session and never to another's.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';
import { mcpClient, resultText, type ToolResult } from './helpers/mcp-client.js';

describe('shell tool: persistent shells for models', function () {
  this.timeout(120_000);
  let s: TestServer;
  const clients: Client[] = [];

  before(async () => {
    s = await startServer({ commands: { killGraceS: 1 } });
    expect((await s.putProject('demo', { 'a.txt': 'a\n', 'src/b.txt': 'b\n' })).status).to.equal(201);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await s?.close();
  });

  const shell = (args: Record<string, unknown>) => s.api('/shell', { project_id: 'demo', ...args });
  async function connect(): Promise<Client> {
    const c = await mcpClient(s);
    clients.push(c);
    return c;
  }
  const call = async (c: Client, args: Record<string, unknown>): Promise<ToolResult> =>
    (await c.callTool({ name: 'shell', arguments: { project_id: 'demo', ...args } })) as ToolResult;

  it('keeps state between calls of one named shell, apart from other names, and restarts on request', async () => {
    expect((await shell({ command: 'cd src && export MODE=test' })).body.result.exit_code).to.equal(0);
    const same = await shell({ command: 'basename "$PWD"; echo $MODE' });
    expect(same.body.result.stdout).to.equal('src\ntest\n');
    expect(same.body.restarted).to.equal(false);
    const other = await shell({ command: 'basename "$PWD"; echo "[$MODE]"', session: 'second' });
    expect(other.body.result.stdout).to.equal('demo\n[]\n');
    expect(other.body.session_id).not.to.equal(same.body.session_id);
    const restarted = await shell({ restart: true });
    expect(restarted.body).to.deep.equal({ session_id: same.body.session_id, restarted: true, result: null });
    expect((await shell({ command: 'basename "$PWD"' })).body.result.stdout).to.equal('demo\n');
    // A command refused (a NUL, as a model's bash call may carry) restarts nothing, even with restart: true.
    await shell({ command: 'export KEPT=yes' });
    const block = { type: 'tool_use', id: 'toolu_nul', name: 'bash', input: { command: 'echo a\u0000b', restart: true } };
    const refused = await s.api('/anthropic/tool_use', { project_id: 'demo', block });
    expect(refused.body.is_error, JSON.stringify(refused.body)).to.equal(true);
    expect((await shell({ command: 'echo $KEPT' })).body.result.stdout).to.equal('yes\n');
    const nothing = await shell({});
    expect(nothing.status).to.equal(400);
    expect(nothing.body.error.message).to.include('restart: true');
  });

  it('gives each MCP session its own shell, which lasts across its calls', async () => {
    const [a, b] = [await connect(), await connect()];
    expect((await call(a, { command: 'cd src && export WHO=a' })).isError ?? false).to.equal(false);
    expect(resultText(await call(a, { command: 'basename "$PWD"; echo $WHO' }))).to.include('src\na');
    const fromB = resultText(await call(b, { command: 'basename "$PWD"; echo "[$WHO]"' }));
    expect(fromB).to.include('demo\n[]');
    // The HTTP default shell is neither of them.
    expect((await shell({ command: 'echo "[$WHO]"' })).body.result.stdout).to.equal('[]\n');
    const sessions = (await s.api('/sessions?project_id=demo')).body.sessions as { name: string }[];
    expect(sessions.filter((x) => x.name.startsWith('mcp-'))).to.have.length(2);
  });

  it('tells the model when its shell did not survive a command', async () => {
    const c = await connect();
    await call(c, { command: 'export GONE=1' });
    const text = resultText(await call(c, { command: 'exit 3' }));
    expect(text).to.include('exit_code 3');
    expect(text).to.include('restarted');
    expect(resultText(await call(c, { command: 'echo "[$GONE]"' }))).to.include('[]');
  });
});
