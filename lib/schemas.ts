/**
 * Request schemas of the public HTTP API. They are the single source of truth: the HTTP front validates with
 * them, handlers take their inferred types, and documentation is generated from them. Objects are strict, so an
 * unknown field is a 400 rather than silently ignored.
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
export const PROJECT_ID_RULE = '1-128 letters, digits, ".", "_" or "-", starting with a letter or digit, and not ending in ".conflict-<anything>" (reserved for conflict copies)';

export const projectId = z.string().regex(PROJECT_ID_PATTERN, `must be ${PROJECT_ID_RULE}`).describe('Project identifier.');

/** A process argument or environment value cannot hold a NUL byte; refuse it up front rather than fail to spawn. */
function noNul(s: z.ZodString) {
  return s.refine((v) => !v.includes('\0'), 'must not contain NUL bytes');
}

const relPath = z.string().min(1).max(4096).describe('Path relative to the project root.');

export const executeRequest = z.strictObject({
  project_id: projectId,
  command: noNul(z.string().min(1).max(1_000_000)).describe('Shell command, run as `bash -c command`.'),
  cwd: relPath.optional().describe('Working directory relative to the project root (default: the root).'),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names must match ^[A-Za-z_][A-Za-z0-9_]*$'), noNul(z.string()))
    .optional()
    .describe('Extra environment variables for the command.'),
  timeout_s: z.number().positive().optional().describe('Kill the command tree after this many seconds.'),
  wait_s: z
    .number()
    .min(0)
    .max(190)
    .optional()
    .describe('How long this request waits; a command still running then is answered with status "running" and keeps running.'),
  background: z.boolean().default(false).describe('Answer at once with the job_id (dev servers, watchers); follow it with the jobs API.'),
  stdin: z.enum(['null', 'pipe']).default('null').describe('"pipe" keeps stdin open for POST /jobs/:id/input; "null" makes prompts fail fast.'),
});
export type ExecuteRequest = z.infer<typeof executeRequest>;

const lineNumber = z.number().int().positive();

export const readRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  start_line: lineNumber.optional().describe('First line to return (1-based, inclusive).'),
  end_line: lineNumber.optional().describe('Last line to return (1-based, inclusive).'),
});
export type ReadRequest = z.infer<typeof readRequest>;

export const writeRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  content: z.string().describe('The whole new content of the file (UTF-8).'),
});
export type WriteRequest = z.infer<typeof writeRequest>;

export const editRequest = z.strictObject({
  project_id: projectId,
  path: relPath,
  old_str: z.string().min(1).describe('Exact text to replace, including whitespace.'),
  new_str: z.string().describe('Replacement text.'),
  expected_replacements: z.number().int().positive().default(1).describe('How many matches old_str must have.'),
});
export type EditRequest = z.infer<typeof editRequest>;

export const listRequest = z.strictObject({
  project_id: projectId,
  path: relPath.default('.'),
  depth: z.number().int().positive().default(2).describe('How many directory levels to descend.'),
  include_ignored: z.boolean().default(false).describe('Also list .git and what .gitignore excludes.'),
});
export type ListRequest = z.infer<typeof listRequest>;

export const searchRequest = z.strictObject({
  project_id: projectId,
  pattern: z.string().min(1).max(10_000),
  regex: z.boolean().default(false).describe('Treat pattern as a regular expression (Rust regex syntax).'),
  glob: z.string().min(1).optional().describe('Only search files matching this glob, e.g. "*.ts" or "src/**".'),
  case_sensitive: z.boolean().default(true),
  context_lines: z.number().int().min(0).max(20).default(0),
  max_results: z.number().int().positive().default(200),
  path: relPath.default('.').describe('Folder or file to search within.'),
});
export type SearchRequest = z.infer<typeof searchRequest>;

/** A job id as the API hands it out. */
export const jobId = z.string().regex(/^[0-9a-f-]{36}$/, 'must be a job_id returned by /execute').describe('Job identifier.');

const offset = z.coerce.number().int().min(0).default(0);

export const jobPollQuery = z.strictObject({
  wait_s: z.coerce.number().min(0).max(190).default(30).describe('Answer at the latest after this long (at most 190).'),
  stdout_offset: offset.describe('Byte offset in stdout already seen; only newer output is returned.'),
  stderr_offset: offset.describe('Byte offset in stderr already seen.'),
});
export type JobPollQuery = z.infer<typeof jobPollQuery>;

export const jobListQuery = z.strictObject({
  project_id: projectId.optional(),
});

export const jobInputRequest = z.strictObject({
  data: z.string().max(1_000_000).describe('Text written to the command\'s stdin (add "\\n" to end a line).'),
  eof: z.boolean().default(false).describe('Close stdin after writing.'),
});
export type JobInputRequest = z.infer<typeof jobInputRequest>;

/** GET /tools: which LLM API's tool format to answer in. */
export const toolsQuery = z.strictObject({
  format: z.enum(['openai', 'anthropic']).default('openai').describe('Tool definition format: OpenAI function tools or Anthropic tools.'),
});
