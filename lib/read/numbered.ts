/**
 * How file_read shows lines to a model: numbered like `cat -n` (the number right-aligned in 6 columns, a tab, the
 * line), a cut line ending in {@link CUT_MARK}. The reader charges each line what it costs here, so the model's
 * text stays within `budgets.readChars` however the lines are shaped (2000 one-character lines cost far more than
 * their content).
 */

/** What ends a line file_read cut at `budgets.lineChars` (or at the budget of the whole answer). */
export const CUT_MARK = ' …[cut]';

/** Characters kept free of lines for the one closing line of the model's text. */
export const FOOTER_RESERVE = 600;

/** Line `n` as the model reads it, without its line break; a trailing CR is dropped. */
export function numberedLine(n: number, text: string, cut: boolean): string {
  const shown = text.endsWith('\r') ? text.slice(0, -1) : text;
  return `${String(n).padStart(6)}\t${shown}${cut ? CUT_MARK : ''}`;
}

/** The characters line `n` adds to the model's text, its line break included. */
export function numberedCost(n: number, text: string, cut: boolean): number {
  return Math.max(6, String(n).length) + 1 + text.length + (cut ? CUT_MARK.length : 0) + 1;
}

/** `text` cut to at most `max` UTF-16 code units, never inside a surrogate pair. */
export function cutChars(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}
