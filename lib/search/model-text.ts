/**
 * A search answer as a model reads it, grep-style: `path:line: text` for a matching line, `path-line- text` for a
 * context line, `--` between groups that are not adjacent; with output "files", `path:count` per file. Each line's
 * text is already cut to MAX_LINE_CHARS around its match (collector.ts). The whole fits `budgets.listChars`,
 * cut between matches, and ends with one line: how many matching lines (and files) there are, how many are shown,
 * and how to see the rest.
 */
import type { Config } from '../../config/schema.js';
import { fitEntries } from '../model-lines.js';
import type { SearchQuery, SearchResult } from './types.js';

/** The search answer `r` to `req`, as text within `config.budgets.listChars`. */
export function searchModel(r: SearchResult, req: SearchQuery, config: Config): string {
  const plus = r.total_exact ? '' : '+';
  const more = `narrow it with path or glob, or pass max_results (up to ${config.search.maxResults})`;
  // Reasons other than max_results (a timeout, long lines, unreadable files) keep their note.
  const note = r.incomplete_reasons?.some((x) => x !== 'max_results') ? ` Incomplete: ${r.note ?? ''}` : '';
  if (req.output === 'files') {
    const files = r.files ?? [];
    const entries = files.map((f) => `${f.path}:${f.matches}`);
    return fitEntries(entries, config.budgets.listChars, (shown) => {
      const head = `${r.total_files}${plus} files, ${r.total_matches}${plus} matching lines`;
      if (shown === r.total_files && r.total_exact) return `[${head}]${note}`;
      return `[${head}; ${shown} files listed: to see the rest, ${more}]${note}`;
    });
  }
  if (r.total_matches === 0) return `[no matches]${note}`;
  const entries = matchEntries(r, req.context_lines > 0);
  return fitEntries(entries, config.budgets.listChars, (shown) => {
    const head = `${r.total_matches}${plus} matching lines in ${r.total_files}${plus} files`;
    if (shown === r.total_matches && r.total_exact) return `[${head}]${note}`;
    const lines = `${shown} shown${r.skipped_long_lines ? ` (${r.skipped_long_lines} too long to show)` : ''}`;
    return `[${head}; ${lines}: to see the rest, ${more}, or pass output: "files" to list the files]${note}`;
  });
}

/** One entry per match: its context lines and itself, without lines the previous entry already showed. */
function matchEntries(r: SearchResult, context: boolean): string[] {
  const entries: string[] = [];
  let prev: { path: string; end: number } | null = null;
  const matching = new Set(r.matches.map((m) => `${m.line}:${m.path}`));
  for (const m of r.matches) {
    const lines: string[] = [];
    const first = m.line - m.before.length;
    const sameFile = prev !== null && prev.path === m.path;
    const shownUpTo = sameFile && prev ? prev.end : 0;
    if (context && prev !== null && (!sameFile || first > shownUpTo + 1)) lines.push('--');
    m.before.forEach((text, i) => {
      if (first + i > shownUpTo) lines.push(`${m.path}-${first + i}- ${text}`);
    });
    lines.push(`${m.path}:${m.line}: ${m.text}`);
    // An after line that matches too is shown by its own entry.
    let end = m.line;
    for (const text of m.after) {
      if (matching.has(`${end + 1}:${m.path}`)) break;
      end++;
      lines.push(`${m.path}-${end}- ${text}`);
    }
    prev = { path: m.path, end };
    entries.push(lines.join('\n'));
  }
  return entries;
}
