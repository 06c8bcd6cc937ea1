// examples/openai-chat.ts: an OpenAI Chat Completions tool loop over toolhost (strict-mode tools).
import OpenAI from 'openai';
import type { ChatCompletionFunctionTool, ChatCompletionMessageParam, ChatCompletionUserMessageParam } from 'openai/resources/chat/completions';

/** Works on `task` with the model and toolhost's tools until the model answers without calling one. */
export async function openAIAgent(toolhost: string, token: string, task: string, openai = new OpenAI(), model = 'gpt-4.1'): Promise<string> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const listed = await fetch(`${toolhost}/tools?format=openai`, { headers });
  const { tools } = (await listed.json()) as { tools: ChatCompletionFunctionTool[] };
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: task }];
  for (let turn = 0; turn < 100; turn++) {
    const reply = (await openai.chat.completions.create({ model, messages, tools })).choices[0]?.message;
    if (!reply) throw new Error('the model sent no message');
    messages.push(reply);
    const calls = (reply.tool_calls ?? []).filter((c) => c.type === 'function');
    if (calls.length === 0) return reply.content ?? '';
    const images: ChatCompletionUserMessageParam[] = [];
    for (const call of calls) {
      // The arguments go as the model wrote them (strict mode: null for a field it leaves out).
      const res = await fetch(`${toolhost}/tools/${call.function.name}/call?format=openai`, { method: 'POST', headers, body: call.function.arguments });
      if (!res.ok) throw new Error(`toolhost answered ${res.status}: ${await res.text()}`);
      const result = (await res.json()) as { content: string; is_error: boolean; user_message?: ChatCompletionUserMessageParam };
      messages.push({ role: 'tool', tool_call_id: call.id, content: result.content });
      // A tool message carries text only: an image (file_read of a png) comes as a user message after the turn's tool messages.
      if (result.user_message) images.push(result.user_message);
    }
    messages.push(...images);
  }
  throw new Error('no answer after 100 turns');
}
