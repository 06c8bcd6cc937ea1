/**
 * The schema parts tools share (project ids, paths, job ids) and the requests of routes that are not tools. Each
 * tool's own request schema is in its definition (lib/tool.ts). Objects are strict, so an unknown field is a 400
 * rather than silently ignored.
 */
import { z } from 'zod';

/** The suffix of a conflict copy's name (`<id>.conflict-<stamp>`), kept beside a project's archive in the store. */
export const CONFLICT_SUFFIX = /\.conflict-[A-Za-z0-9._-]+$/;

/**
 * `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`, safe as a file name and a blob name, and not ending like a conflict copy
 * (such a project would be hidden from listings and mistaken for another project's conflict copy).
 */
export const PROJECT_ID_PATTERN = /^(?!.*\.conflict-[A-Za-z0-9._-]+$)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** What a valid project id is, for error messages. */
export const PROJECT_ID_RULE =
  '1-128 letters, digits, ".", "_" or "-", starting with a letter or digit, and not ending in ".conflict-<anything>" (reserved for conflict copies)';

export const projectId = z.string().regex(PROJECT_ID_PATTERN, `must be ${PROJECT_ID_RULE}`).describe('Project identifier.');

/** A process argument or environment value cannot hold a NUL byte; refuse it up front rather than fail to spawn. */
export function noNul(s: z.ZodString) {
  return s.refine((v) => !v.includes('\0'), 'must not contain NUL bytes');
}

/** A path inside a project. */
export const relPath = z.string().min(1).max(4096).describe('Path relative to the project root.');

/** A 1-based line number. */
export const lineNumber = z.number().int().positive();

/** A job id as the API hands it out. */
export const jobId = z
  .string()
  .regex(/^[0-9a-f-]{36}$/, 'must be a job_id returned by /execute')
  .describe('Job identifier.');

/** GET /tools: which LLM API's tool format to answer in. */
export const toolsQuery = z.strictObject({
  format: z
    .enum(['openai', 'openai-responses', 'anthropic', 'anthropic-builtin'])
    .default('openai')
    .describe(
      "Tool definition format: OpenAI Chat Completions function tools (strict mode), OpenAI Responses API function tools (strict mode), Anthropic tools, or Anthropic's built-in tool types (text editor and bash, run with POST /anthropic/tool_use).",
    ),
});

/** A persistent shell session's name: the key the `shell` tool and the provider routes find a session by. */
export const sessionName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit');

/** A shell command, as every tool that runs one takes it. */
export const shellCommand = noNul(z.string().min(1).max(1_000_000));

/** How long a call that runs a command waits for it (HTTP clients give up at 300 s). */
export const commandWait = z
  .number()
  .min(0)
  .max(190)
  .describe('How long this request waits; a command still running then is answered with status "running" and keeps running.');
