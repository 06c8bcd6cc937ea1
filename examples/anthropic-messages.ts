// examples/anthropic-messages.ts: an Anthropic Messages tool loop over toolhost.
import Anthropic from '@anthropic-ai/sdk';
import type { MessageParam, Tool, ToolResultBlockParam } from '@anthropic-ai/sdk/resources/messages';

/** Works on `task` with the model and toolhost's tools until the model answers without calling one. */
export async function anthropicAgent(toolhost: string, token: string, task: string, anthropic = new Anthropic(), model = 'claude-sonnet-4-5'): Promise<string> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const listed = await fetch(`${toolhost}/tools?format=anthropic`, { headers });
  const { tools } = (await listed.json()) as { tools: Tool[] };
  const messages: MessageParam[] = [{ role: 'user', content: task }];
  for (let turn = 0; turn < 100; turn++) {
    const reply = await anthropic.messages.create({ model, max_tokens: 8192, messages, tools });
    messages.push({ role: 'assistant', content: reply.content });
    const uses = reply.content.filter((b) => b.type === 'tool_use');
    if (uses.length === 0) return reply.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
    const results: ToolResultBlockParam[] = [];
    for (const use of uses) {
      const res = await fetch(`${toolhost}/tools/${use.name}/call?format=anthropic`, { method: 'POST', headers, body: JSON.stringify(use.input) });
      if (!res.ok) throw new Error(`toolhost answered ${res.status}: ${await res.text()}`);
      // {content: [text and image blocks], is_error}: a failed call is a result too, for the model to read.
      const result = (await res.json()) as Pick<ToolResultBlockParam, 'content' | 'is_error'>;
      results.push({ type: 'tool_result', tool_use_id: use.id, ...result });
    }
    messages.push({ role: 'user', content: results });
  }
  throw new Error('no answer after 100 turns');
}
