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
    const diff = '@@\n-def fib(n):\n+def fibonacci(n):\n     if n <= 1:\n         return n\n-    return fib(n-1) + fib(n-2)\n+    return fibonacci(n-1) + fibonacci(n-2)\n';
    const item = applyPatchCall({ type: 'update_file', path: 'lib/fib.py', diff });
    const out = await run<ApplyPatchCallOutput>(patchItem(item));
    expect(patchOutput(out)).to.deep.equal({ type: 'apply_patch_call_output', call_id: item.call_id, status: 'completed', output: out.output });
    expect(out.output).to.include('lib/fib.py');
    expect((await read('lib/fib.py')).content).to.equal('def fibonacci(n):\n    if n <= 1:\n        return n\n    return fibonacci(n-1) + fibonacci(n-2)\n');
  });

  it('creates a file (an absolute path is taken from the project root) and deletes one', async () => {
    const created = await run<ApplyPatchCallOutput>(patchItem(applyPatchCall({ type: 'create_file', path: '/src/main.ts', diff: '+export function main() {\n+  console.log("hi");\n+}\n' })));
    expect(created.status, created.output).to.equal('completed');
    expect((await read('src/main.ts')).content).to.match(/^export function main\(\) \{\n {2}console\.log\("hi"\);\n\}\n?$/);
    const input: ResponseInputItem.ApplyPatchCall = { type: 'apply_patch_call', call_id: 'call_delete_1', status: 'completed', operation: { type: 'delete_file', path: 'old.txt' } };
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
    const out: ShellCallOutput = { type: 'shell_call_output', call_id: 'call_1', max_output_length: null, output: [{ stdout: '', stderr: '', outcome: { type: 'timeout' } }] };
    expect(shellItem(call).call_id).to.equal(shellOutput(out).call_id);
  });
});
