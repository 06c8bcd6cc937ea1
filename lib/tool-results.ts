/**
 * A tool's answer as a model reads it (lib/tool.ts `ModelContent`) in the shapes LLM APIs take a tool's result:
 * what POST /tools/{name}/call answers, for the client to append to the conversation as is. Like the tool
 * definitions (tool-formats.ts), these are our own interfaces, held assignable to the SDKs' types by
 * test/tool-formats.types.test.ts.
 */
import { z } from 'zod';
import type { ModelContent } from './tool.js';

/** The result formats of POST /tools/{name}/call. */
export const CALL_FORMATS = ['openai', 'openai-responses', 'anthropic', 'text'] as const;
export type CallFormat = (typeof CALL_FORMATS)[number];

/** The image types every provider takes inline (file_read serves only these). */
const imageMediaType = z.enum(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);
export type ImageMediaType = z.infer<typeof imageMediaType>;
const IMAGE_TYPES: ReadonlySet<string> = new Set(imageMediaType.options);

const isError = z.boolean().describe('True when the call failed: the text is the JSON error body, which says what to do next.');
const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });

/** Anthropic: the `content` and `is_error` of a `tool_result` block (ToolResultBlockParam). */
export const anthropicToolResult = z.strictObject({
  content: z.array(
    z.union([
      textPart,
      z.strictObject({ type: z.literal('image'), source: z.strictObject({ type: z.literal('base64'), media_type: imageMediaType, data: z.string() }) }),
    ]),
  ),
  is_error: isError,
});
export type AnthropicToolResult = z.infer<typeof anthropicToolResult>;

/**
 * OpenAI Chat Completions: the `content` of the `tool` message. A tool message carries text only, so images come
 * as `user_message`, a user message to append after the turn's tool messages (the text says so).
 */
export const openAIChatToolResult = z.strictObject({
  content: z.string().describe('The content of the role "tool" message.'),
  is_error: isError,
  user_message: z
    .strictObject({
      role: z.literal('user'),
      content: z.array(z.union([textPart, z.strictObject({ type: z.literal('image_url'), image_url: z.strictObject({ url: z.string() }) })])),
    })
    .optional()
    .describe("Only when the answer has images: append it as a user message after the turn's tool messages."),
});
export type OpenAIChatToolResult = z.infer<typeof openAIChatToolResult>;

/** OpenAI Responses API: the `output` of a `function_call_output` item (text, or text and images). */
export const openAIResponsesToolResult = z.strictObject({
  output: z.union([
    z.string(),
    z.array(
      z.union([z.strictObject({ type: z.literal('input_text'), text: z.string() }), z.strictObject({ type: z.literal('input_image'), image_url: z.string() })]),
    ),
  ]),
  is_error: isError,
});
export type OpenAIResponsesToolResult = z.infer<typeof openAIResponsesToolResult>;

/** Plain text, for any other client: images are named, not shown. */
export const textToolResult = z.strictObject({ text: z.string(), is_error: isError });
export type TextToolResult = z.infer<typeof textToolResult>;

/** Each format's answer schema (OpenAPI documents them; the tests hold the answers to them). */
export const TOOL_RESULT_SCHEMAS = {
  openai: openAIChatToolResult,
  'openai-responses': openAIResponsesToolResult,
  anthropic: anthropicToolResult,
  text: textToolResult,
} as const satisfies Record<CallFormat, z.ZodType>;

export type ToolResult = AnthropicToolResult | OpenAIChatToolResult | OpenAIResponsesToolResult | TextToolResult;

type Image = Extract<ModelContent, { type: 'image' }> & { mediaType: ImageMediaType };

/** An image a provider takes; any other (none today) is named in text, so nothing is sent a provider refuses. */
function inline(c: ModelContent): c is Image {
  return c.type === 'image' && IMAGE_TYPES.has(c.mediaType);
}

/** Text of a content item: the text itself, or a line naming an image that cannot travel in this format. */
function asText(c: ModelContent, why: string): string {
  return c.type === 'text' ? c.text : `[${c.mediaType} image, ${Math.floor((c.data.length * 3) / 4)} bytes: ${why}]`;
}

const dataUrl = (c: Image): string => `data:${c.mediaType};base64,${c.data}`;

/** `items` (the answer of the tool named `tool`, or its error as text) in `format`; `isError` when the call failed. */
export function toolResult(tool: string, items: readonly ModelContent[], isError: boolean, format: CallFormat): ToolResult {
  switch (format) {
    case 'anthropic':
      return {
        content: items.map((c) =>
          inline(c)
            ? { type: 'image', source: { type: 'base64', media_type: c.mediaType, data: c.data } }
            : { type: 'text', text: asText(c, 'not an image type the API takes') },
        ),
        is_error: isError,
      };
    case 'openai-responses': {
      if (!items.some(inline)) return { output: items.map((c) => asText(c, 'not an image type the API takes')).join('\n'), is_error: isError };
      return {
        output: items.map((c) =>
          inline(c) ? { type: 'input_image', image_url: dataUrl(c) } : { type: 'input_text', text: asText(c, 'not an image type the API takes') },
        ),
        is_error: isError,
      };
    }
    case 'openai': {
      const images = items.filter(inline);
      const text = items.map((c) => (inline(c) ? `[${c.mediaType} image: in the user message that follows]` : asText(c, 'not shown'))).join('\n');
      if (images.length === 0) return { content: text, is_error: isError };
      const parts = images.map((c) => ({ type: 'image_url' as const, image_url: { url: dataUrl(c) } }));
      const intro = { type: 'text' as const, text: `${images.length === 1 ? 'The image' : 'The images'} the ${tool} call returned:` };
      return { content: text, is_error: isError, user_message: { role: 'user', content: [intro, ...parts] } };
    }
    default:
      return { text: items.map((c) => asText(c, 'not shown in text; read it with format anthropic or openai')).join('\n'), is_error: isError };
  }
}
