/**
 * Trees as maps from path to entry, and the two things done with them: folding layers into the tree they make,
 * and the difference between two trees (what a layer from one to the other must hold). Pure data: no I/O.
 */
import type { IndexEntry, LayerIndex, NodeKind, TreeNode } from './format.js';

/** An entry of a folded tree, with the layer holding its content. */
export interface SourcedNode extends TreeNode {
  /** Digest of the layer the entry comes from. */
  src: string;
}

/** A tree: path -> entry. */
export type Tree<N extends TreeNode = TreeNode> = Map<string, N>;

/** Applies layers, base first, into one tree; each entry remembers the layer it comes from. */
export function foldLayers(layers: readonly { digest: string; index: LayerIndex }[]): Tree<SourcedNode> {
  const tree: Tree<SourcedNode> = new Map();
  for (const { digest, index } of layers) {
    removeUnder(tree, index.deleted);
    for (const [path, t, m, s, h] of index.entries) tree.set(path, { t, m, s, h, src: digest });
  }
  return tree;
}

/** Removes `paths` and everything under them. */
function removeUnder(tree: Tree<TreeNode>, paths: readonly string[]): void {
  if (paths.length === 0) return;
  const gone = new Set(paths);
  for (const key of tree.keys()) if (hasAncestorIn(key, gone)) tree.delete(key);
}

/** Whether `path` or one of its parent folders is in `set`. */
function hasAncestorIn(path: string, set: ReadonlySet<string>): boolean {
  for (let p = path; ; ) {
    if (set.has(p)) return true;
    const slash = p.lastIndexOf('/');
    if (slash < 0) return false;
    p = p.slice(0, slash);
  }
}

/** Whether two entries have the same kind, mode and content. */
export function sameNode(a: TreeNode, b: TreeNode): boolean {
  return a.t === b.t && a.m === b.m && a.h === b.h && a.s === b.s;
}

/**
 * The paths of `from` that `to` lacks or holds as another kind (a folder that became a file takes its contents
 * with it: a delete and a write), topmost only, sorted.
 */
export function removedPaths(from: Tree, to: Tree): string[] {
  const removed = new Set<string>();
  for (const [path, node] of from) {
    const next = to.get(path);
    if (!next || next.t !== node.t) removed.add(path);
  }
  return [...removed].filter((p) => !hasAncestorIn(parentOf(p), removed)).sort();
}

/** What turns tree `from` into tree `to`: the paths to delete (topmost only) and the entries to write. */
export function diffTrees(from: Tree, to: Tree): { deleted: string[]; changed: string[] } {
  const deleted = removedPaths(from, to);
  const changed: string[] = [];
  for (const [path, node] of to) {
    const before = from.get(path);
    if (!before || !sameNode(before, node)) changed.push(path);
  }
  return { deleted, changed };
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '\0' : path.slice(0, slash); // "\0": no parent, and no path is "\0"
}

/** An index entry of `node` at `path`. */
export function indexEntry(path: string, node: TreeNode): IndexEntry {
  return [path, node.t, node.m, node.s, node.h];
}

/** A tree node of kind `t`. */
export function node(t: NodeKind, m: number, s: number, h: string): TreeNode {
  return { t, m, s, h };
}
