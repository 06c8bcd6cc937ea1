/**
 * Tools (lib/tool.ts) in the shapes LLM APIs take: plain JSON Schema for the input (type object, properties,
 * required, additionalProperties false, defaults shown), Anthropic's tool, and OpenAI's function tools of Chat
 * Completions and of the Responses API, both in strict mode (lib/strict-schema.ts). The interfaces here are our
 * own (the SDKs are dev dependencies); test/tool-formats.types.test.ts holds them assignable to the SDKs' types.
 */
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { ErrorCode } from './errors.js';
import type { toolsQuery } from './schemas.js';
import { type JsonSchema, strictSchema } from './strict-schema.js';
import { COMMON_ERRORS, type ToolBase } from './tool.js';

/** What each error means to a model, and what to do about it. */
export const ERROR_MEANINGS: Partial<Record<ErrorCode, string>> = {
  bad_request: 'an argument is invalid or over a server limit; the message names it: fix it and call again',
  unknown_field: 'an argument name is not accepted; the message lists the accepted ones',
  queue_full: 'the server is overloaded; wait a few seconds and retry',
  shutting_down: 'the server is restarting; wait a few seconds and retry',
  internal: 'a fault in the server; retry once, then report it',
  project_not_found: 'no project has this project_id; check the id',
  path_outside_project: 'the path leaves the project (absolute, "..", or a link pointing outside); use a path inside it',
  file_not_found: 'the file or folder does not exist; look with file_list or search',
  not_a_directory: 'a folder was expected but the path is a file',
  is_a_directory: 'a file was expected but the path is a folder; list it with file_list',
  not_a_regular_file: 'the path is a FIFO, socket or device, not a file or folder; inspect it with execute (ls -l, file)',
  line_out_of_range: 'start_line is past the end of the file; the message gives the line count',
  binary_file: 'the file is binary; inspect it with execute (file, xxd, hexdump) instead',
  file_too_large: 'the content is over the size limit; write large or generated files with execute',
  permission_denied: 'the file system refused; fix the mode with execute (chmod)',
  no_space: 'the server is out of disk space; remove build output or caches with execute and retry',
  edit_no_match: 'old_str is not in the file; the error shows the closest lines: read the file again and copy the exact text, whitespace included',
  edit_count_mismatch:
    'old_str matched a different number of times than expected_replacements; the error gives the count and lines: add context so it matches once, or set expected_replacements to the count',
  edit_no_op: 'old_str and new_str are the same, so the edit would change nothing; send the change you mean',
  invalid_regex: 'pattern is not a valid regular expression (Rust syntax); fix it, or search literally with regex: false',
  search_failed: 'the search died before finding anything (out of memory on a huge file, say); search a subfolder (path) or fewer files (glob)',
  job_not_found: 'no command job has this job_id (wrong id, or it ended more than the retention time ago); see job_list',
  job_finished: 'the job has already ended, so its stdin is closed',
  stdin_not_piped: 'the command was started without stdin: "pipe"; start it again with it to send input',
  cancelled: 'the job was cancelled (job_cancel or a server shutdown) before it finished',
  job_deadline: 'the server stopped waiting for the job; it may still complete: retry later',
  checkpoint_not_found: 'no checkpoint of this project has this checkpoint_id; find the ids with checkpoint_list',
  project_busy: 'a command or another job is running in the project; wait for it to end (job_status) or cancel it (job_cancel), then retry',
  project_exists: 'a project with this id exists already; pick another id',
};

export type { JsonSchema } from './strict-schema.js';

/** A format GET /tools serves toolhost's tools in ("anthropic-builtin" lists Anthropic's own tool types instead). */
export type ToolFormat = Exclude<z.infer<typeof toolsQuery>['format'], 'anthropic-builtin'>;

/** A tool's input schema: always an object. */
export interface ObjectSchema {
  type: 'object';
  properties: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties: false;
  [keyword: string]: unknown;
}

/** OpenAI's function tool of Chat Completions (`tools`), in strict mode. */
export interface OpenAITool {
  type: 'function';
  function: { name: string; description: string; parameters: ObjectSchema; strict: true };
}

/** OpenAI's function tool of the Responses API (`tools`): flat, in strict mode. */
export interface OpenAIResponsesTool {
  type: 'function';
  name: string;
  description: string;
  parameters: ObjectSchema;
  strict: true;
}

/** Anthropic's client tool (Messages `tools`). */
export interface AnthropicTool {
  name: string;
  description: string;
  input_schema: ObjectSchema;
}

/** A tool definition in any of the formats. */
export type ToolDefinition = OpenAITool | OpenAIResponsesTool | AnthropicTool;

/**
 * The tool's input as plain JSON Schema, from the request schema as it is now. Zod's safe-integer bounds are
 * dropped and exclusive integer minimums become inclusive ones, which every LLM API understands.
 */
export function inputJsonSchema(tool: ToolBase): ObjectSchema {
  const schema = z.toJSONSchema(tool.input, { io: 'input', unrepresentable: 'any' }) as ObjectSchema;
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
export function toolDescription(tool: ToolBase, config: Config): string {
  const errors = [...new Set([...tool.errors, ...COMMON_ERRORS])].map((code) => `${code} (${ERROR_MEANINGS[code] ?? 'see the message'})`);
  return `${tool.describe(config)}\nErrors come back as {"error": {"code", "message"}}, the message saying what to do next: ${errors.join('; ')}.`;
}

/** The tool's input in OpenAI's strict mode: every field required, the optional ones nullable (null: not given). */
export function strictParameters(tool: ToolBase): ObjectSchema {
  return strictSchema(inputJsonSchema(tool), tool.name) as ObjectSchema;
}

/** The tool as an OpenAI Chat Completions function tool, in strict mode. */
export function openAITool(tool: ToolBase, config: Config): OpenAITool {
  return { type: 'function', function: { name: tool.name, description: toolDescription(tool, config), parameters: strictParameters(tool), strict: true } };
}

/** The tool as an OpenAI Responses API function tool, in strict mode. */
export function openAIResponsesTool(tool: ToolBase, config: Config): OpenAIResponsesTool {
  return { type: 'function', name: tool.name, description: toolDescription(tool, config), parameters: strictParameters(tool), strict: true };
}

/** The tool as an Anthropic tool. */
export function anthropicTool(tool: ToolBase, config: Config): AnthropicTool {
  return { name: tool.name, description: toolDescription(tool, config), input_schema: inputJsonSchema(tool) };
}

/** The tool in `format`. */
export function toolDefinition(tool: ToolBase, config: Config, format: ToolFormat): ToolDefinition {
  switch (format) {
    case 'anthropic':
      return anthropicTool(tool, config);
    case 'openai-responses':
      return openAIResponsesTool(tool, config);
    default:
      return openAITool(tool, config);
  }
}
