/**
 * The `file_glob` tool: the files of the project a glob matches, newest first, as git would see them (.gitignore
 * respected, never .git). The listing itself is lib/search/glob-files.ts.
 */
import { z } from 'zod';
import { fitEntries } from '../lib/model-lines.js';
import { projectId, relPath } from '../lib/schemas.js';
import { globFiles } from '../lib/search/glob-files.js';
import { jobTool, PROJECT_ERRORS } from '../lib/tool.js';

const globRequest = z.strictObject({
  project_id: projectId,
  pattern: z
    .string()
    .min(1)
    .max(1000)
    .describe('A glob, gitignore-style: "*.ts" matches at any depth, "src/**/*.test.ts" from the project root; "!" in front excludes.'),
  path: relPath.default('.').describe('Folder to list within (default the project root).'),
  max_results: z.number().int().positive().optional().describe('Most paths to return; default budgets.globResults.'),
});

const globResult = z.strictObject({
  paths: z.array(z.string()).describe('Project-relative paths of matching files, newest first (by modification time), then by path.'),
  total: z.number().int().describe('Files the pattern matches in all; a lower bound when timed_out.'),
  truncated: z.boolean().describe('True when more files matched than paths holds: narrow the pattern or pass max_results.'),
  timed_out: z.boolean().optional().describe('True when the listing was stopped at search.timeoutS; paths holds what was found by then.'),
});

/** The file_glob tool. */
export const fileGlobTool = jobTool({
  name: 'file_glob',
  title: 'Find files by name',
  route: { method: 'POST', path: '/file/glob' },
  input: globRequest,
  output: globResult,
  readOnly: true,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'not_a_directory', 'search_failed'],
  describe: ({ budgets, search }) =>
    'Find files by name with a glob (gitignore-style: "*.ts" at any depth, "src/**/*.test.ts" from the project ' +
    `root), under path (default the root). Returns paths newest first, at most max_results (default ${budgets.globResults}, ` +
    `at most ${search.maxResults}), and the total count. Respects .gitignore, lists hidden files, never .git; files only ` +
    '(list folders with file_list). Use it to find files before reading them.',
  limits: (req, { search }) =>
    req.max_results !== undefined && req.max_results > search.maxResults
      ? `max_results ${req.max_results} exceeds search.maxResults (${search.maxResults}); narrow the pattern instead`
      : undefined,
  examples: [{ project_id: 'demo', pattern: '**/*.ts' }],
  toModel: (out, input, config) => [
    {
      type: 'text',
      text: fitEntries(out.paths, config.budgets.listChars, (shown) => {
        if (out.total === 0) return `[no files match ${JSON.stringify(input.pattern)}${out.timed_out ? ' (timed out: try a subfolder as path)' : ''}]`;
        if (shown === out.total && !out.timed_out) return undefined;
        const more = out.timed_out ? `${shown} of ${out.total}+ shown (timed out)` : `${out.total - shown} more`;
        return `[${more}; narrow the pattern or pass max_results (up to ${config.search.maxResults})]`;
      }),
    },
  ],
  job: { type: 'file.glob', lane: 'files', mutates: false, handler: globFiles },
});
