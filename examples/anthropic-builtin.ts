// examples/anthropic-builtin.ts: Claude's own text editor and bash tools, each call run by toolhost as it came.
import Anthropic from '@anthropic-ai/sdk';
import type { MessageParam, ToolResultBlockParam, ToolUnion } from '@anthropic-ai/sdk/resources/messages';

/** Works on `task` in `projectId` with Anthropic's built-in tools until the model answers without calling one. */
export async function anthropicBuiltinAgent(
  toolhost: string,
  token: string,
  projectId: string,
  task: string,
  anthropic = new Anthropic(),
  model = 'claude-sonnet-4-5',
): Promise<string> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  // [{type: "text_editor_20250728", name: "str_replace_based_edit_tool", ...}, {type: "bash_20250124", name: "bash"}]
  const listed = await fetch(`${toolhost}/tools?format=anthropic-builtin`, { headers });
  const { tools } = (await listed.json()) as { tools: ToolUnion[] };
  const messages: MessageParam[] = [{ role: 'user', content: task }];
  for (let turn = 0; turn < 100; turn++) {
    const reply = await anthropic.messages.create({ model, max_tokens: 8192, messages, tools });
    messages.push({ role: 'assistant', content: reply.content });
    const uses = reply.content.filter((b) => b.type === 'tool_use');
    if (uses.length === 0) return reply.content.flatMap((b) => (b.type === 'text' ? [b.text] : [])).join('');
    const results: ToolResultBlockParam[] = [];
    for (const block of uses) {
      // The block goes as the model produced it; bash runs on the project's persistent shell named by `session`.
      const body = JSON.stringify({ project_id: projectId, session: 'agent-1', block });
      const res = await fetch(`${toolhost}/anthropic/tool_use`, { method: 'POST', headers, body });
      if (!res.ok) throw new Error(`toolhost answered ${res.status}: ${await res.text()}`);
      // The tool_result block, ready to append: {type, tool_use_id, content, is_error}.
      results.push((await res.json()) as ToolResultBlockParam);
    }
    messages.push({ role: 'user', content: results });
  }
  throw new Error('no answer after 100 turns');
}
