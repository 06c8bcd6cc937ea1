/**
 * What a parsed patch is, whichever grammar it came in: the Codex envelope (`*** Begin Patch` ... `*** End Patch`)
 * or the OpenAI Responses API's `apply_patch_call` operations (V4A diffs). Both become the same list of file
 * operations, applied by lib/patch/apply.ts. A leaf module: it imports nothing.
 */

/** One line of a hunk: context (' '), removed ('-') or added ('+'), without its prefix. */
export interface HunkLine {
  op: ' ' | '-' | '+';
  text: string;
}

/** A change to one region of a file. */
export interface Hunk {
  /** The `@@ <line>` headers before it, in order: each names a line of the file the hunk comes after. */
  anchors: string[];
  /** Its lines, in order. Context and removed lines are what the file must hold there. */
  lines: HunkLine[];
  /** `*** End of File` followed it: its lines are at the end of the file. */
  endOfFile: boolean;
  /** 1-based line of the patch text (or diff) where the hunk starts, for messages. */
  at: number;
}

/** One file operation of a patch. `at` is the 1-based line of the patch (or the index of the operation) it starts at. */
export type FileOp =
  | { kind: 'add'; path: string; content: string; at: number }
  | { kind: 'delete'; path: string; at: number }
  | { kind: 'update'; path: string; moveTo?: string | undefined; hunks: Hunk[]; at: number };

/** The result of applying an update's hunks to a file's text. */
export interface Applied {
  /** The new text. */
  text: string;
  /** One line for each hunk that needed fuzz to find its place (or an anchor it could not find): say it to the model. */
  notes: string[];
}
