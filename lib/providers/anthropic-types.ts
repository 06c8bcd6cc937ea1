/**
 * Anthropic's built-in tools as toolhost serves them: the tool type declarations a client passes to the Messages
 * API (GET /tools?format=anthropic-builtin), and the request and answer of POST /anthropic/tool_use, which takes a
 * `tool_use` block as the model produced it and answers the `tool_result` block to append. The interfaces are our
 * own (the SDK is a dev dependency); test/providers.anthropic.test.ts holds them assignable to the SDK's types.
 */
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { projectId } from '../schemas.js';
import type { ModelContent } from '../tool.js';
import { anthropicToolResult } from '../tool-results.js';
import { sessionKey } from './session-key.js';

/** The name the model calls the text editor by (tool type text_editor_20250728). */
export const EDITOR_NAME = 'str_replace_based_edit_tool';
/** The name the model calls the shell by (tool type bash_20250124). */
export const BASH_NAME = 'bash';

/** The text editor's declaration (ToolTextEditor20250728). */
export interface AnthropicTextEditorTool {
  type: 'text_editor_20250728';
  name: typeof EDITOR_NAME;
  /** Characters a view shows of a file; toolhost's budgets.readChars, which bounds every view. */
  max_characters: number;
}

/** The bash tool's declaration (ToolBash20250124). */
export interface AnthropicBashTool {
  type: 'bash_20250124';
  name: typeof BASH_NAME;
}

/** What GET /tools?format=anthropic-builtin lists: the declarations to put into a Messages request's `tools`. */
export function anthropicBuiltinTools(config: Pick<Config, 'budgets'>): [AnthropicTextEditorTool, AnthropicBashTool] {
  return [
    { type: 'text_editor_20250728', name: EDITOR_NAME, max_characters: config.budgets.readChars },
    { type: 'bash_20250124', name: BASH_NAME },
  ];
}

/** The tool_use block as the model produced it; fields the route does not read (caller...) are allowed and ignored. */
const toolUseBlock = z.looseObject({
  type: z.literal('tool_use'),
  id: z.string().min(1).max(256).describe('The tool_use id; the answer is the tool_result for it.'),
  name: z.string().describe(`"${EDITOR_NAME}" or "${BASH_NAME}".`),
  input: z.unknown().describe("The tool's input, as the model wrote it."),
});

/** The body of POST /anthropic/tool_use. */
export const anthropicToolUseRequest = z.strictObject({
  project_id: projectId,
  session: sessionKey.optional(),
  block: toolUseBlock.describe('A tool_use content block of an assistant message, as the Messages API returned it.'),
});
/** The body of POST /anthropic/tool_use, as a client writes it (the block a ToolUseBlock of the SDK). */
export interface AnthropicToolUseRequest {
  project_id: string;
  session?: string | undefined;
  block: { type: 'tool_use'; id: string; name: string; input: unknown };
}

/** The answer of POST /anthropic/tool_use: a tool_result block to append in the next user message. */
export const anthropicToolResultBlock = z.strictObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string(),
  content: anthropicToolResult.shape.content,
  is_error: anthropicToolResult.shape.is_error,
});
export type AnthropicToolResultBlock = z.infer<typeof anthropicToolResultBlock>;

/** Image types a tool_result carries inline (file_read serves only these). */
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
type ImageType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';

/** The tool_result block answering `toolUseId` with `content`. */
export function toolResultBlock(toolUseId: string, content: readonly ModelContent[], isError: boolean): AnthropicToolResultBlock {
  return {
    type: 'tool_result',
    tool_use_id: toolUseId,
    content: content.map((c) =>
      c.type === 'text'
        ? { type: 'text', text: c.text }
        : IMAGE_TYPES.has(c.mediaType)
          ? { type: 'image', source: { type: 'base64', media_type: c.mediaType as ImageType, data: c.data } }
          : { type: 'text', text: `[${c.mediaType} image: not a type the API takes]` },
    ),
    is_error: isError,
  };
}
