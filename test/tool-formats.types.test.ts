/**
 * The tool definitions and tool results we serve fit the official SDKs' types: checked by the typecheck
 * (tsconfig.test.json compiles this file), each of our interfaces assigned to the SDK's type without a cast, and at
 * run time by holding what the server sends to those same functions' values.
 */
import type { Tool as AnthropicSdkTool, ToolResultBlockParam } from '@anthropic-ai/sdk/resources/messages';
import { expect } from 'chai';
import type { ChatCompletionFunctionTool, ChatCompletionToolMessageParam, ChatCompletionUserMessageParam } from 'openai/resources/chat/completions';
import type { FunctionTool, ResponseInputItem } from 'openai/resources/responses/responses';
import { anthropicTool, openAIResponsesTool, openAITool } from '../lib/tool-formats.js';
import type { AnthropicToolResult, OpenAIChatToolResult, OpenAIResponsesToolResult } from '../lib/tool-results.js';
import { MODEL_TOOLS } from '../supervisor/http/tools.js';
import { startServer, type TestServer } from './helpers/harness.js';

/** Compiles only when every `From` is assignable to `To`. */
function assignable<To>() {
  return <From extends To>(value: From): To => value;
}

// The definitions: our return types go where the SDKs take tools.
const chatTools = (config: Parameters<typeof openAITool>[1]): ChatCompletionFunctionTool[] => MODEL_TOOLS.map((t) => openAITool(t, config));
const responsesTools = (config: Parameters<typeof openAITool>[1]): FunctionTool[] => MODEL_TOOLS.map((t) => openAIResponsesTool(t, config));
const anthropicTools = (config: Parameters<typeof openAITool>[1]): AnthropicSdkTool[] => MODEL_TOOLS.map((t) => anthropicTool(t, config));

// The results: what POST /tools/{name}/call answers goes into the SDKs' tool-result messages as is.
function anthropicMessage(result: AnthropicToolResult): ToolResultBlockParam {
  return { type: 'tool_result', tool_use_id: 'toolu_1', ...result };
}
function chatMessages(result: OpenAIChatToolResult): [ChatCompletionToolMessageParam, ...ChatCompletionUserMessageParam[]] {
  const tool: ChatCompletionToolMessageParam = { role: 'tool', tool_call_id: 'call_1', content: result.content };
  return result.user_message ? [tool, assignable<ChatCompletionUserMessageParam>()(result.user_message)] : [tool];
}
function responsesItem(result: OpenAIResponsesToolResult): ResponseInputItem.FunctionCallOutput {
  return { type: 'function_call_output', call_id: 'call_1', output: result.output };
}

describe('tool formats fit the SDK types', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({});
  });
  after(async () => s?.close({ force: true }));

  it('serves exactly what the typed functions make, in every format', async () => {
    const made: Record<string, unknown[]> = {
      openai: chatTools(s.sup.config),
      'openai-responses': responsesTools(s.sup.config),
      anthropic: anthropicTools(s.sup.config),
    };
    for (const [format, tools] of Object.entries(made)) {
      const served = (await s.api(`/tools?format=${format}`)).body.tools;
      expect(served, format).to.deep.equal(JSON.parse(JSON.stringify(tools)));
    }
  });

  it('answers tool results that go into the SDK messages as they are', async () => {
    expect((await s.putProject('demo', { 'a.txt': 'hello\n' })).status).to.equal(201);
    const args = { project_id: 'demo', path: 'a.txt' };
    const anthropic: AnthropicToolResult = (await s.api('/tools/file_read/call?format=anthropic', args)).body;
    expect(anthropicMessage(anthropic).content).to.deep.equal(anthropic.content);
    const chat: OpenAIChatToolResult = (await s.api('/tools/file_read/call?format=openai', args)).body;
    expect(chatMessages(chat)).to.have.length(1);
    const responses: OpenAIResponsesToolResult = (await s.api('/tools/file_read/call?format=openai-responses', args)).body;
    expect(responsesItem(responses).output).to.include('hello');
  });
});
