/**
 * The `search` tool: ripgrep over a project, answering with matches and, when anything was left out, why.
 * The search itself is lib/search/ (search-project.ts describes what it guards against and promises).
 */
import { z } from 'zod';
import { noNul, projectId, relPath } from '../lib/schemas.js';
import { searchModel } from '../lib/search/model-text.js';
import { searchProject } from '../lib/search/search-project.js';
import { COUNT_CAP, MAX_LINE_CHARS } from '../lib/search/types.js';
import { jobTool, PROJECT_ERRORS } from '../lib/tool.js';

const searchRequest = z.strictObject({
  project_id: projectId,
  pattern: noNul(z.string().min(1).max(10_000)),
  regex: z.boolean().default(false).describe('Treat pattern as a regular expression (Rust regex syntax).'),
  glob: noNul(z.string().min(1)).optional().describe('Only search files matching this glob, e.g. "*.ts" or "src/**".'),
  case_sensitive: z.boolean().default(true),
  context_lines: z.number().int().min(0).max(20).default(0),
  max_results: z.number().int().positive().optional(),
  output: z
    .enum(['matches', 'files'])
    .default('matches')
    .describe('"matches": the matching lines; "files": only the files that match, with how many lines match in each.'),
  path: relPath.default('.').describe('Folder or file to search within.'),
});

const searchMatch = z.strictObject({
  path: z.string().describe('Project-relative path with forward slashes.'),
  line: z.number().int().describe('1-based line number.'),
  column: z.number().int().describe('1-based column of the first match on the line, in code points.'),
  text: z.string().describe(`The line without its line break, cut to ${MAX_LINE_CHARS} code points around the match ("…" where cut).`),
  before: z.array(z.string()).describe('Up to context_lines lines just before the match, nearest last.'),
  after: z.array(z.string()).describe('Up to context_lines lines just after the match, nearest first.'),
});

const searchResult = z.strictObject({
  matches: z.array(searchMatch).describe('Matches in path order, then line order; empty with output "files".'),
  files: z
    .array(z.strictObject({ path: z.string(), matches: z.number().int().describe('Matching lines in the file.') }))
    .optional()
    .describe('With output "files": the files with a matching line, in path order, at most max_results.'),
  total_matches: z.number().int().describe('Matching lines found in all, counted past max_results (long lines included).'),
  total_files: z.number().int().describe('Files with a matching line, in all.'),
  total_exact: z.boolean().describe(`False when the totals are lower bounds: the search timed out, ripgrep ended early, or counting stopped at ${COUNT_CAP}.`),
  truncated: z.boolean().describe('True when max_results left matches (or files) out; the totals say how many there are.'),
  timed_out: z.boolean().optional().describe('True when the search was stopped at search.timeoutS; matches holds what it found by then.'),
  complete: z.boolean().describe('True only when every file under the target was searched to its end and every match found is in matches.'),
  incomplete_reasons: z.array(z.enum(['max_results', 'timed_out', 'long_lines', 'unreadable_files', 'search_aborted'])).optional(),
  note: z.string().optional().describe('When complete is false: what each reason means and what to do next.'),
  skipped_long_lines: z.number().int().optional().describe('Matching lines longer than search.maxLineBytes, left out of matches.'),
  long_lines: z
    .array(z.strictObject({ path: z.string(), line: z.number().int() }))
    .optional()
    .describe('Where the first of those lines are.'),
  errors: z.array(z.string()).optional().describe("rg's messages about files or folders it could not read."),
});

/** The search tool. */
export const searchTool = jobTool({
  name: 'search',
  title: 'Search file contents',
  route: { method: 'POST', path: '/search' },
  input: searchRequest,
  output: searchResult,
  readOnly: true,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'not_a_regular_file', 'invalid_regex', 'search_failed'],
  hints: {
    pattern: 'Text to find; a regular expression when regex is true.',
    case_sensitive: 'Match letter case exactly (false ignores case).',
    context_lines: 'Lines of context to return before and after each match.',
    max_results: 'Most matches (or files, with output "files") to return; default budgets.searchResults.',
  },
  describe: ({ search, budgets }) =>
    'Search file contents with ripgrep: literal text by default, a Rust-syntax regular expression with regex: true; ' +
    'narrow it with glob (e.g. "*.ts") and path. Returns matching lines as path:line: text in path order (each cut ' +
    `to ${MAX_LINE_CHARS} characters around the match), with context_lines around them, and the total count. At most ` +
    `max_results (default ${budgets.searchResults}, at most ${search.maxResults}) come back; the rest are counted ` +
    '(total_matches). output: "files" lists only the files that match, with their counts. ' +
    'Respects .gitignore, searches hidden files, never .git. ' +
    `A search still running after ${search.timeoutS} s returns what it found. complete: false says something was ` +
    'left out (incomplete_reasons and note say what and what to do): max_results, a timeout, matching lines over ' +
    `${search.maxLineBytes} bytes (counted in skipped_long_lines, located in long_lines), files it could not read ` +
    '(errors). Use it to find definitions, usages and strings before reading files.',
  limits: (req, { search }) =>
    req.max_results !== undefined && req.max_results > search.maxResults
      ? `max_results ${req.max_results} exceeds search.maxResults (${search.maxResults}); narrow the search instead`
      : undefined,
  examples: [
    { project_id: 'demo', pattern: 'TODO\\(\\w+\\)', regex: true, glob: '*.ts', context_lines: 1 },
    { project_id: 'demo', pattern: 'port', output: 'files' },
  ],
  toModel: (out, input, config) => [{ type: 'text', text: searchModel(out, input, config) }],
  job: { type: 'search', lane: 'files', mutates: false, handler: searchProject },
});
