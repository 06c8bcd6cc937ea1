/**
 * The catalog's tools in the shapes LLM APIs take: plain JSON Schema for the input (type object, properties,
 * required, additionalProperties false, defaults shown) and the OpenAI and Anthropic tool definitions.
 */
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { toolsQuery } from './schemas.js';
import { COMMON_ERRORS, ERROR_MEANINGS, type ToolSpec } from './tool-catalog.js';

/** A JSON Schema object. */
export type JsonSchema = Record<string, unknown>;

/** A tool definition format GET /tools serves. */
export type ToolFormat = z.infer<typeof toolsQuery>['format'];

/** OpenAI's function tool (Chat Completions `tools`). */
export interface OpenAITool {
  type: 'function';
  function: { name: string; description: string; parameters: JsonSchema };
}

/** Anthropic's client tool (Messages `tools`). */
export interface AnthropicTool {
  name: string;
  description: string;
  input_schema: JsonSchema;
}

/**
 * The tool's input as plain JSON Schema, from the request schema as it is now. Zod's safe-integer bounds are
 * dropped and exclusive integer minimums become inclusive ones, which every LLM API understands.
 */
export function inputJsonSchema(tool: ToolSpec): JsonSchema {
  const schema = z.toJSONSchema(tool.input(), { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete schema.$schema;
  simplify(schema);
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  for (const [field, hint] of Object.entries(tool.hints ?? {})) {
    if (properties[field] && properties[field].description === undefined) properties[field].description = hint;
  }
  return schema;
}

function simplify(s: JsonSchema): void {
  if (s.maximum === Number.MAX_SAFE_INTEGER) delete s.maximum;
  if (s.minimum === Number.MIN_SAFE_INTEGER) delete s.minimum;
  if (s.type === 'integer' && typeof s.exclusiveMinimum === 'number') {
    s.minimum = s.exclusiveMinimum + 1;
    delete s.exclusiveMinimum;
  }
  const children: unknown[] = [
    ...Object.values((s.properties ?? {}) as Record<string, unknown>),
    s.items,
    s.additionalProperties,
    s.propertyNames,
    ...((s.anyOf ?? []) as unknown[]),
    ...((s.oneOf ?? []) as unknown[]),
    ...((s.allOf ?? []) as unknown[]),
  ];
  for (const child of children) if (typeof child === 'object' && child !== null) simplify(child as JsonSchema);
}

/** The description a model reads: what the tool does and its limits, then what each of its errors means. */
export function toolDescription(tool: ToolSpec, config: Config): string {
  const errors = [...new Set([...tool.errors, ...COMMON_ERRORS])].map((code) => `${code} (${ERROR_MEANINGS[code] ?? 'see the message'})`);
  return `${tool.describe(config)}\nErrors come back as {"error": {"code", "message"}}, the message saying what to do next: ${errors.join('; ')}.`;
}

/** The tool as an OpenAI function tool. */
export function openAITool(tool: ToolSpec, config: Config): OpenAITool {
  return { type: 'function', function: { name: tool.name, description: toolDescription(tool, config), parameters: inputJsonSchema(tool) } };
}

/** The tool as an Anthropic tool. */
export function anthropicTool(tool: ToolSpec, config: Config): AnthropicTool {
  return { name: tool.name, description: toolDescription(tool, config), input_schema: inputJsonSchema(tool) };
}

/** The tool in `format`. */
export function toolDefinition(tool: ToolSpec, config: Config, format: ToolFormat): OpenAITool | AnthropicTool {
  return format === 'anthropic' ? anthropicTool(tool, config) : openAITool(tool, config);
}
