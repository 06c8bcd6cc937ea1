/**
 * The tool catalog: every tool an LLM agent can call, with a description written for the model (limits taken from
 * the running configuration), the request schema the HTTP front validates with (read at call time, so a field
 * added to lib/schemas.ts shows up at once), the HTTP route that serves it and example calls. GET /tools,
 * GET /openapi.json and POST /mcp are all generated from this list: a tool added here appears everywhere.
 */
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { ErrorCode } from './errors.js';
import type { JobType } from './jobs.js';
import * as schemas from './schemas.js';

/** One tool. */
export interface ToolSpec {
  /** The name models call it by: ^[a-zA-Z0-9_-]{1,64}$. */
  name: string;
  /** A short human title (MCP clients show it). */
  title: string;
  /**
   * The HTTP route that serves the tool. A `{field}` in the path takes that input field; the other fields go in
   * the query string (GET, DELETE) or the JSON body (POST).
   */
  route: { method: 'GET' | 'POST' | 'DELETE'; path: string };
  /** Set when the route queues a job of this type: MCP calls then take the HTTP route's own submission path. */
  jobType?: JobType;
  /** The input schema: the route's request schema (with its path fields, if any). */
  input(): z.ZodObject;
  /** True when the tool never changes the project or a job. */
  readOnly: boolean;
  /** What the tool does, when to use it and its limits, for the model. */
  describe(config: Config): string;
  /** Error codes this tool can end with, besides {@link COMMON_ERRORS}. */
  errors: readonly ErrorCode[];
  /** Descriptions of input fields that the schema leaves undocumented. */
  hints?: Readonly<Record<string, string>>;
  /** Valid calls; a `job_id` in them stands for a job the caller started. Tests run every one. */
  examples: readonly Record<string, unknown>[];
}

/** Errors any tool can end with. */
export const COMMON_ERRORS: readonly ErrorCode[] = ['bad_request', 'unknown_field', 'queue_full', 'shutting_down', 'internal'];

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
  edit_count_mismatch: 'old_str matched a different number of times than expected_replacements; the error gives the count and lines: add context so it matches once, or set expected_replacements to the count',
  invalid_regex: 'pattern is not a valid regular expression (Rust syntax); fix it, or search literally with regex: false',
  search_failed: 'the search died before finding anything (out of memory on a huge file, say); search a subfolder (path) or fewer files (glob)',
  job_not_found: 'no command job has this job_id (wrong id, or it ended more than the retention time ago); see job_list',
  job_finished: 'the job has already ended, so its stdin is closed',
  stdin_not_piped: 'the command was started without stdin: "pipe"; start it again with it to send input',
  cancelled: 'the job was cancelled (job_cancel or a server shutdown) before it finished',
  job_deadline: 'the server stopped waiting for the job; it may still complete: retry later',
};

const PROJECT_ERRORS: readonly ErrorCode[] = ['project_not_found', 'path_outside_project', 'permission_denied', 'no_space'];

/** A `{field}` path parameter for a job id, merged with the route's own query or body schema. */
function withJobId(rest: z.ZodObject = z.strictObject({})): z.ZodObject {
  return z.strictObject({ job_id: schemas.jobId.describe('The job_id that execute returned.'), ...rest.shape });
}

/** Every tool, in the order models see them. */
export const TOOL_CATALOG: readonly ToolSpec[] = [
  {
    name: 'execute',
    title: 'Run a shell command',
    route: { method: 'POST', path: '/execute' },
    jobType: 'execute',
    input: () => schemas.executeRequest,
    readOnly: false,
    errors: [...PROJECT_ERRORS, 'file_not_found', 'not_a_directory'],
    describe: ({ commands: c }) =>
      'Run a shell command in the project with `bash -c` and return its exit_code, stdout and stderr. Use it to build, ' +
      'run tests and scripts, use git, install dependencies, or inspect what the file tools cannot (binary files, processes). ' +
      'It runs in the project root (or `cwd`) with a clean environment: none of the server\'s secrets, CI=1, no pager, no ' +
      'prompts; stdin is closed unless `stdin: "pipe"` (then write to it with job_input), so pass flags such as -y ' +
      'instead of answering prompts. ' +
      `The call waits up to wait_s (default ${c.defaultWaitS} s); a command still running then is answered with ` +
      'status "running" and its job_id and keeps running: follow it with job_status. `background: true` answers at once ' +
      '(dev servers, watchers). ' +
      `The whole process tree is killed after timeout_s (default ${c.defaultTimeoutS} s, at most ${c.maxTimeoutS} s) and ` +
      `the answer says timed_out: true. Each of stdout and stderr keeps at most ${c.maxOutputBytes} bytes, head and tail, ` +
      'the middle counted in omitted_bytes; job_status reads the whole log by offset. Processes a command leaves behind ' +
      'are killed when it ends (start servers with background: true). A non-zero exit_code is a normal result, not an error.',
    examples: [{ project_id: 'demo', command: 'ls -la && git status --short' }],
  },
  {
    name: 'file_read',
    title: 'Read a file',
    route: { method: 'POST', path: '/file/read' },
    jobType: 'file.read',
    input: () => schemas.readRequest,
    readOnly: true,
    errors: [...PROJECT_ERRORS, 'file_not_found', 'is_a_directory', 'binary_file', 'line_out_of_range'],
    describe: ({ files }) =>
      'Read a text file of the project, whole or a range of lines (start_line and end_line, 1-based, inclusive). Returns ' +
      'content, total_lines and the range returned. Prefer it to `cat` in execute. ' +
      `At most ${files.maxReadBytes} bytes come back, cut at a line end with truncated: true: continue from end_line + 1. ` +
      'Binary files are refused.',
    examples: [{ project_id: 'demo', path: 'src/app.ts', start_line: 1, end_line: 40 }],
  },
  {
    name: 'file_write',
    title: 'Write a file',
    route: { method: 'POST', path: '/file/write' },
    jobType: 'file.write',
    input: () => schemas.writeRequest,
    readOnly: false,
    errors: [...PROJECT_ERRORS, 'is_a_directory', 'not_a_directory', 'file_too_large'],
    describe: ({ files }) =>
      'Create a file or replace its whole content (UTF-8), atomically; missing parent folders are created and an ' +
      'existing file keeps its mode. Use it for new files and complete rewrites; to change part of a file use file_edit. ' +
      `The content may be at most ${files.maxWriteBytes} bytes.`,
    examples: [{ project_id: 'demo', path: 'docs/notes.md', content: '# Notes\n' }],
  },
  {
    name: 'file_edit',
    title: 'Edit a file',
    route: { method: 'POST', path: '/file/edit' },
    jobType: 'file.edit',
    input: () => schemas.editRequest,
    readOnly: false,
    errors: [...PROJECT_ERRORS, 'file_not_found', 'is_a_directory', 'binary_file', 'file_too_large', 'edit_no_match', 'edit_count_mismatch'],
    describe: ({ files }) =>
      'Replace exact text in a file. old_str must occur exactly expected_replacements times (default 1), whitespace and ' +
      'indentation included; otherwise nothing is written and the error gives the number of matches and their lines, or ' +
      'the closest lines when there is none. Read the file first and copy old_str from it with enough surrounding lines ' +
      'to be unique. CRLF files stay CRLF. Edits of one file are applied one after another, so none is lost. ' +
      `The file may be at most ${files.maxWriteBytes} bytes after the edit.`,
    examples: [{ project_id: 'demo', path: 'src/app.ts', old_str: 'const port = 3000;', new_str: 'const port = Number(process.env.PORT ?? 3000);' }],
  },
  {
    name: 'file_list',
    title: 'List files',
    route: { method: 'POST', path: '/file/list' },
    jobType: 'file.list',
    input: () => schemas.listRequest,
    readOnly: true,
    errors: [...PROJECT_ERRORS, 'file_not_found', 'not_a_directory'],
    describe: ({ list }) =>
      'List the files and folders under a folder of the project (default its root) with their types and sizes, ' +
      `depth-first in tree order, down to depth levels (default 2, at most ${list.maxDepth}). .git and what the ` +
      'project\'s .gitignore files exclude are skipped unless include_ignored. Symlinks are listed, not followed. ' +
      `At most ${list.maxEntries} entries, then truncated: true: list a subfolder to see the rest.`,
    examples: [{ project_id: 'demo', path: 'src', depth: 1 }],
  },
  {
    name: 'search',
    title: 'Search file contents',
    route: { method: 'POST', path: '/search' },
    jobType: 'search',
    input: () => schemas.searchRequest,
    readOnly: true,
    errors: [...PROJECT_ERRORS, 'file_not_found', 'not_a_regular_file', 'invalid_regex', 'search_failed'],
    hints: {
      pattern: 'Text to find; a regular expression when regex is true.',
      case_sensitive: 'Match letter case exactly (false ignores case).',
      context_lines: 'Lines of context to return before and after each match.',
      max_results: 'Most matches to return.',
    },
    describe: ({ search }) =>
      'Search file contents with ripgrep: literal text by default, a Rust-syntax regular expression with regex: true; ' +
      'narrow it with glob (e.g. "*.ts") and path. Returns matches (path, line, column, text, optional context lines) in ' +
      `path order. At most max_results (default 200, at most ${search.maxResults}) come back, then truncated: true. ` +
      'Respects .gitignore, searches hidden files, never .git. ' +
      `A search still running after ${search.timeoutS} s returns what it found. complete: false says something was ` +
      'left out (incomplete_reasons and note say what and what to do): max_results, a timeout, matching lines over ' +
      `${search.maxLineBytes} bytes (counted in skipped_long_lines, located in long_lines), files it could not read ` +
      '(errors). Use it to find definitions, usages and strings before reading files.',
    examples: [{ project_id: 'demo', pattern: 'TODO\\(\\w+\\)', regex: true, glob: '*.ts', context_lines: 1 }],
  },
  {
    name: 'job_status',
    title: 'Follow a command job',
    route: { method: 'GET', path: '/jobs/{job_id}' },
    input: () => withJobId(schemas.jobPollQuery),
    readOnly: true,
    errors: ['job_not_found'],
    describe: ({ jobs }) =>
      'Get a command job\'s status and its output since the offsets you pass (stdout_offset and stderr_offset from the ' +
      'previous answer; 0 for everything). Waits up to wait_s (default 30, at most 190) for new output or the end, so ' +
      'calling it in a loop does not spin. Returns status (queued, running, completed, timed_out, cancelled, failed), ' +
      'exit_code once done, the new stdout and stderr text and the offsets to pass next; more_bytes above 0 means more ' +
      `output is already there. Finished jobs are kept ${jobs.retentionMinutes} minutes.`,
    examples: [{ job_id: '00000000-0000-4000-8000-000000000000', stdout_offset: 0, stderr_offset: 0, wait_s: 5 }],
  },
  {
    name: 'job_input',
    title: 'Send input to a command',
    route: { method: 'POST', path: '/jobs/{job_id}/input' },
    input: () => withJobId(schemas.jobInputRequest),
    readOnly: false,
    errors: ['job_not_found', 'job_finished', 'stdin_not_piped'],
    describe: () =>
      'Write text to the stdin of a command started with stdin: "pipe" (end a line with "\\n"; eof: true closes stdin). ' +
      'Use it to answer a prompt or drive a REPL, then read the reaction with job_status.',
    examples: [{ job_id: '00000000-0000-4000-8000-000000000000', data: 'yes\n' }],
  },
  {
    name: 'job_list',
    title: 'List command jobs',
    route: { method: 'GET', path: '/jobs' },
    input: () => schemas.jobListQuery,
    readOnly: true,
    errors: [],
    describe: () =>
      'List running and recent command jobs, newest first, of one project or all: job_id, command, status, exit_code. ' +
      'Use it to find the job_id of a background command.',
    examples: [{ project_id: 'demo' }],
  },
  {
    name: 'job_cancel',
    title: 'Stop a command job',
    route: { method: 'DELETE', path: '/jobs/{job_id}' },
    input: () => withJobId(),
    readOnly: false,
    errors: ['job_not_found'],
    describe: ({ commands }) =>
      'Stop a command job: a queued one never starts, a running one has its whole process tree killed (SIGTERM, then ' +
      `SIGKILL after ${commands.killGraceS} s). Returns the job's final status and output. Use it for background ` +
      'servers you no longer need and for commands that hang.',
    examples: [{ job_id: '00000000-0000-4000-8000-000000000000' }],
  },
];

/** The tool of that name, if any. */
export function findTool(name: string): ToolSpec | undefined {
  return TOOL_CATALOG.find((t) => t.name === name);
}
