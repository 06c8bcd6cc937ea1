/**
 * The `search` tool: ripgrep over a project, answering with matches and, when anything was left out, why.
 * The search itself is lib/search/ (search-project.ts describes what it guards against and promises).
 */
import { searchProject } from '../lib/search/search-project.js';
import type { SearchResult } from '../lib/search/types.js';
import type { SearchRequest } from '../lib/schemas.js';
import type { Handler } from './context.js';

export { MAX_LINE_CHARS, MAX_LISTED, type IncompleteReason, type SearchMatch, type SearchResult } from '../lib/search/types.js';

/** Searches the project with ripgrep. */
export const search: Handler<SearchRequest, SearchResult> = (req, ctx) => searchProject(req, ctx);
