/**
 * The one way a model's list answer (search, file_glob, file_list) is fitted into its budget: whole entries, in
 * order, as many as fit, then exactly one closing line, written knowing how many entries were shown, that says what
 * was left out and how to get it.
 */

/**
 * `entries` (each one or more lines) and the closing line, joined by line breaks, within `budget` characters:
 * entries are dropped from the end until it fits. `closing(shown)` is the closing line for the first `shown`
 * entries, or undefined for none.
 */
export function fitEntries(entries: readonly string[], budget: number, closing: (shown: number) => string | undefined): string {
  const reserve = Math.max(closing(0)?.length ?? 0, closing(entries.length)?.length ?? 0) + 16;
  let used = 0;
  let shown = 0;
  while (shown < entries.length && used + (entries[shown] as string).length + 1 <= budget - reserve) {
    used += (entries[shown] as string).length + 1;
    shown++;
  }
  for (;;) {
    const end = closing(shown);
    const text = [...entries.slice(0, shown), ...(end === undefined ? [] : [end])].join('\n');
    if (text.length <= budget || shown === 0) return text.length <= budget ? text : text.slice(0, budget);
    shown--;
  }
}
