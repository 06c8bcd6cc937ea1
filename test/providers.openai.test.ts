/**
 * OpenAI's built-in tools of the Responses API run natively: apply_patch_call and shell_call items in the shape
 * the API returns them (built from the apply_patch and shell guides' examples), replayed through POST
 * /openai/tool_call against a real project on a real supervisor, answered with the output items the next request
 * takes as input. The typecheck holds our request and answer types to the SDK's.
 */
import { expect } from 'chai';
import type { ResponseApplyPatchToolCall, ResponseFunctionShellToolCall, ResponseInputItem } from 'openai/resources/responses/responses';
import type { ApplyPatchCallOutput, OpenAIToolCallRequest, ShellCallOutput } from '../lib/providers/openai-types.js';
import { startServer, type TestServer } from './helpers/harness.js';

// Our types where the SDK's go, without casts: output items from the API (and their input item forms) are what
// the route takes, and what it answers goes into the next request's input.
const patchItem = (i: ResponseApplyPatchToolCall | ResponseInputItem.ApplyPatchCall): OpenAIToolCallRequest['item'] => i;
const shellItem = (i: ResponseFunctionShellToolCall | ResponseInputItem.ShellCall): OpenAIToolCallRequest['item'] => i;
const patchOutput = (o: ApplyPatchCallOutput): ResponseInputItem => o;
const shellOutput = (o: ShellCallOutput): ResponseInputItem.ShellCallOutput => o;

const FIB = 'def fib(n):\n    if n <= 1:\n        return n\n    return fib(n-1) + fib(n-2)\n';

let seq = 0;
/** An apply_patch_call as the Responses API returns one. */
function applyPatchCall(operation: ResponseApplyPatchToolCall['operation']): ResponseApplyPatchToolCall {
  seq += 1;
  return { type: 'apply_patch_call', id: `apc_08f3d96c87a58539006911${seq}`, call_id: `call_Rjsqzz96C5xzPb0jUW${seq}`, status: 'completed', operation };
}

describe('OpenAI built-in tools: POST /openai/tool_call', () => {
  let s: TestServer;

  async function run<T>(item: OpenAIToolCallRequest['item'], session?: string): Promise<T> {
    const r = await s.api('/openai/tool_call', { project_id: 'demo', item, ...(session ? { session } : {}) });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.call_id).to.equal(item.call_id);
    return r.body as T;
  }
  async function read(path: string): Promise<{ status: number; content?: string }> {
    const r = await s.api('/file/read', { project_id: 'demo', path });
    return { status: r.status, content: r.body.content };
  }

  before(async () => {
    s = await startServer({});
    expect((await s.putProject('demo', { 'lib/fib.py': FIB, 'old.txt': 'bye\n' })).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  it('applies an update_file V4A diff and answers apply_patch_call_output completed', async () => {
    const diff =
      '@@\n-def fib(n):\n+def fibonacci(n):\n     if n <= 1:\n         return n\n-    return fib(n-1) + fib(n-2)\n+    return fibonacci(n-1) + fibonacci(n-2)\n';
    const item = applyPatchCall({ type: 'update_file', path: 'lib/fib.py', diff });
    const out = await run<ApplyPatchCallOutput>(patchItem(item));
    expect(patchOutput(out)).to.deep.equal({ type: 'apply_patch_call_output', call_id: item.call_id, status: 'completed', output: out.output });
    expect(out.output).to.include('lib/fib.py');
    expect((await read('lib/fib.py')).content).to.equal('def fibonacci(n):\n    if n <= 1:\n        return n\n    return fibonacci(n-1) + fibonacci(n-2)\n');
  });

  it('creates a file (an absolute path is taken from the project root) and deletes one', async () => {
    const created = await run<ApplyPatchCallOutput>(
      patchItem(applyPatchCall({ type: 'create_file', path: '/src/main.ts', diff: '+export function main() {\n+  console.log("hi");\n+}\n' })),
    );
    expect(created.status, created.output).to.equal('completed');
    expect((await read('src/main.ts')).content).to.match(/^export function main\(\) \{\n {2}console\.log\("hi"\);\n\}\n?$/);
    const input: ResponseInputItem.ApplyPatchCall = {
      type: 'apply_patch_call',
      call_id: 'call_delete_1',
      status: 'completed',
      operation: { type: 'delete_file', path: 'old.txt' },
    };
    const deleted = await run<ApplyPatchCallOutput>(patchItem(input));
    expect(deleted.status, deleted.output).to.equal('completed');
    expect((await read('old.txt')).status).to.equal(404);
  });

  it('answers a patch that does not apply with status failed and why, changing nothing', async () => {
    const before = (await read('lib/fib.py')).content;
    const diff = '@@\n def fibonacci(n):\n-    if n <= 2:\n+    if n < 2:\n         return n\n';
    const out = await run<ApplyPatchCallOutput>(patchItem(applyPatchCall({ type: 'update_file', path: 'lib/fib.py', diff })));
    expect(out.status).to.equal('failed');
    expect(out.output).to.include('lib/fib.py').and.include('if n <= 1:');
    expect((await read('lib/fib.py')).content).to.equal(before);
    const missing = await run<ApplyPatchCallOutput>(patchItem(applyPatchCall({ type: 'update_file', path: 'nope.py', diff: '@@\n-a\n+b\n' })));
    expect(missing.status).to.equal('failed');
    expect(missing.output).to.include('nope.py');
  });

  it('refuses a path out of the project as a failed patch', async () => {
    for (const path of ['../escape.txt', '/../escape.txt', 'lib/../../escape.txt']) {
      const out = await run<ApplyPatchCallOutput>(patchItem(applyPatchCall({ type: 'create_file', path, diff: '+owned\n' })));
      expect(out.status, path).to.equal('failed');
      expect(out.output, path).to.match(/outside the project/);
    }
  });

  it('answers an item type it does not run with a 400 naming the supported ones', async () => {
    const r = await s.api('/openai/tool_call', { project_id: 'demo', item: { type: 'function_call', call_id: 'c1', name: 'x', arguments: '{}' } });
    expect(r.status).to.equal(400);
    expect(r.body.error.message).to.include('apply_patch_call and shell_call');
    const noProject = await s.api('/openai/tool_call', { project_id: 'nope', item: applyPatchCall({ type: 'delete_file', path: 'x' }) });
    expect(noProject.status).to.equal(404);
    const malformed = await s.api('/openai/tool_call', { project_id: 'demo', item: { type: 'shell_call', call_id: 'c2', action: {} } });
    expect(malformed.status).to.equal(400);
  });

  it('types shell_call items and their outputs as the SDK does', () => {
    const call: ResponseFunctionShellToolCall = {
      type: 'shell_call',
      id: 'sh_1',
      call_id: 'call_1',
      status: 'completed',
      environment: null,
      action: { commands: ['ls'], timeout_ms: null, max_output_length: null },
    };
    const out: ShellCallOutput = {
      type: 'shell_call_output',
      call_id: 'call_1',
      max_output_length: null,
      output: [{ stdout: '', stderr: '', outcome: { type: 'timeout' } }],
    };
    expect(shellItem(call).call_id).to.equal(shellOutput(out).call_id);
  });
});

describe('OpenAI built-in tools: shell_call on a persistent session', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({});
    expect((await s.putProject('demo', { 'lib/fib.py': FIB })).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  let n = 0;
  async function shell(action: ResponseFunctionShellToolCall['action'], session?: string): Promise<ShellCallOutput> {
    n += 1;
    const item: ResponseFunctionShellToolCall = {
      type: 'shell_call',
      id: `sh_${n}`,
      call_id: `call_shell_${n}`,
      status: 'completed',
      environment: null,
      action,
    };
    const r = await s.api('/openai/tool_call', { project_id: 'demo', item: shellItem(item), ...(session ? { session } : {}) });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    const out = r.body as ShellCallOutput;
    expect(shellOutput(out)).to.include({ type: 'shell_call_output', call_id: item.call_id });
    return out;
  }
  const exit = (exit_code: number) => ({ type: 'exit', exit_code });

  it('runs the commands in order on one shell, and the next call relies on what they set', async () => {
    const first = await shell({ commands: ['cd lib', 'export GREETING=hello', 'pwd; echo "$GREETING"'], timeout_ms: 10_000, max_output_length: null });
    expect(first.max_output_length).to.equal(null);
    expect(first.output.map((o) => o.outcome)).to.deep.equal([exit(0), exit(0), exit(0)]);
    const [pwd, greeting] = (first.output[2]?.stdout ?? '').split('\n');
    expect(pwd).to.match(/\/lib$/);
    expect(greeting).to.equal('hello');
    const later = await shell({ commands: ['ls; echo "$GREETING"'], timeout_ms: null, max_output_length: null });
    expect(later.output).to.deep.equal([{ stdout: 'fib.py\nhello\n', stderr: '', outcome: exit(0) }]);
  });

  it('reports each exit code and goes on after a non-zero one', async () => {
    const out = await shell({ commands: ['echo a; echo b >&2; false', 'echo after'], timeout_ms: null, max_output_length: null });
    expect(out.output).to.deep.equal([
      { stdout: 'a\n', stderr: 'b\n', outcome: exit(1) },
      { stdout: 'after\n', stderr: '', outcome: exit(0) },
    ]);
  });

  it('stops at a timeout, which it reports as one', async () => {
    const out = await shell({ commands: ['echo started; sleep 30', 'echo never'], timeout_ms: 1000, max_output_length: null }, 'slow');
    expect(out.output).to.have.length(1);
    expect(out.output[0]?.outcome).to.deep.equal({ type: 'timeout' });
    expect(out.output[0]?.stdout).to.equal('started\n');
    expect(out.output[0]?.stderr).to.include('[toolhost: timed out');
  });

  it("cuts each command's output to max_output_length and passes it back", async () => {
    const out = await shell({ commands: ['seq 1 100000', 'seq 1 10'], timeout_ms: null, max_output_length: 400 });
    expect(out.max_output_length).to.equal(400);
    const [big, small] = out.output;
    expect((big?.stdout.length ?? 0) + (big?.stderr.length ?? 0)).to.be.at.most(400);
    expect(big?.stdout)
      .to.match(/^1\n2\n/)
      .and.match(/\n100000\n$/)
      .and.include('left out');
    expect(small?.stdout).to.equal('1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n');
  });
});
