/**
 * Making a tree of layers real in a fresh folder: a cold start of a layered project, a restore of a checkpoint.
 * Each path is written once, from the layer that holds its final version (entries later layers replaced or
 * deleted are skipped as their layer streams by), through the same safe extraction as an uploaded archive
 * (`tree-writer.ts`: nothing outside the folder, no link leading out, bomb limits). A restore first hard-links the
 * working copy's files that still hold the wanted content, found through open folder fds (`tree-walk.ts`) and
 * checked against the state the pre-restore save recorded: only files are linked, never through a symlink.
 *
 * Synchronous file system work in slices, for a pool thread.
 */
import { chmodSync, lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { readTarGz } from '../archive/tar-reader.js';
import { lookAt, walk } from '../archive/tree-walk.js';
import { type TreeFileSink, TreeWriter } from '../archive/tree-writer.js';
import type { ArchiveLimits } from '../archive/types.js';
import { ToolhostError } from '../errors.js';
import { type CopyState, RACY_MS, type StatNode, stampOf } from './scan.js';
import { type SourcedNode, sameNode, type Tree } from './tree.js';

/** What {@link buildTree} made. */
export interface BuildResult {
  /** Files and links written from layers. */
  written: number;
  /** Files reused from the working copy. */
  linked: number;
  /** Bytes of file content in the tree. */
  bytes: number;
  /** The paths the build made (folders, and what came from layers): all but the linked files. */
  made: string[];
}

/** Writes the tree `tree` into `dest` (created; must not exist). On failure `dest` is removed. */
export async function buildTree(o: {
  tree: Tree<SourcedNode>;
  open(digest: string): Promise<Readable>;
  /** Sum of the layers' sizes, for the ratio limit. */
  layerBytes: number;
  dest: string;
  limits: ArchiveLimits;
  reuse?: { root: string; state: CopyState };
}): Promise<BuildResult> {
  mkdirSync(o.dest, { mode: 0o755 });
  try {
    chmodSync(o.dest, 0o755);
    const root = realpathSync.native(o.dest);
    const wanted = new Map<string, Set<string>>();
    const paths = [...o.tree.keys()].sort();
    const writer = new SelectiveWriter(root, o.limits, o.layerBytes);
    for (const p of paths) {
      const n = o.tree.get(p)!;
      writer.countPath(p);
      if (n.t === 'd') writer.directory(p);
    }
    const linked = o.reuse ? linkUnchanged(writer, o.tree, o.reuse) : new Set<string>();
    let bytes = 0;
    for (const p of paths) {
      const n = o.tree.get(p)!;
      if (n.t === 'f') bytes += n.s;
      if (n.t === 'd' || linked.has(p)) continue;
      const set = wanted.get(n.src) ?? new Set<string>();
      wanted.set(n.src, set);
      set.add(p);
    }
    let written = 0;
    for (const [digest, names] of wanted) {
      writer.select(names);
      await readTarGz(await o.open(digest), writer);
      const missing = writer.missing();
      written += names.size - missing.length;
      if (missing.length > 0) {
        throw new ToolhostError(
          'bad_archive',
          `layer ${digest} in the store lacks ${missing.length} entries its index lists (first: ${missing[0]}); restore the store from a backup`,
        );
      }
    }
    writer.verifyLinks();
    exactModes(root, o.tree, paths);
    return { written, linked: linked.size, bytes, made: paths.filter((p) => !linked.has(p)) };
  } catch (err) {
    await rm(o.dest, { recursive: true, force: true });
    throw err;
  }
}

/** Hard-links into the new tree the files of the old copy whose content, mode and stat are those last saved. */
function linkUnchanged(writer: SelectiveWriter, tree: Tree<SourcedNode>, reuse: { root: string; state: CopyState }): Set<string> {
  const linked = new Set<string>();
  for (const met of walk(reuse.root, [])) {
    if (met.kind !== 'file') continue;
    const want = tree.get(met.name);
    const saved = reuse.state.get(met.name);
    if (want?.t !== 'f' || !saved || !sameNode(saved, want) || saved.ct === -1) continue;
    const st = lookAt(met.at, met.name);
    if (!st?.isFile() || st.ino !== saved.ino || st.mtimeMs !== saved.mt || st.ctimeMs !== saved.ct || st.size !== saved.s) continue;
    // Only a file of the project's alone: a second name elsewhere would share its owner and mode changes.
    if (st.nlink !== 1) continue;
    if (writer.linkFrom(met.name, met.at, st.ino)) linked.add(met.name);
  }
  return linked;
}

/** Gives files and folders their saved permission bits (extraction makes 0644/0755). */
function exactModes(root: string, tree: Tree<SourcedNode>, paths: readonly string[]): void {
  for (const p of paths) {
    const n = tree.get(p)!;
    if (n.t === 'l') continue;
    const made = n.t === 'd' ? 0o755 : (n.m & 0o111) !== 0 ? 0o755 : 0o644;
    if (n.m === made) continue;
    // The folder is fresh and private; still, never chmod through anything but the entry the tree says it is.
    const st = lstatSync(`${root}/${p}`);
    if (n.t === 'd' ? st.isDirectory() : st.isFile()) chmodSync(`${root}/${p}`, n.m);
  }
}

/**
 * The state of a freshly built tree (not yet in use): the tree's entries with the stat of each file as it is now.
 * Waits out the coarse clock's tick first, so that no later change can leave a file's ctime as recorded.
 */
export async function statTree(root: string, tree: Tree): Promise<CopyState> {
  await sleep(RACY_MS + 5);
  const state: CopyState = new Map();
  for (const [p, n] of tree) {
    let stat = { ino: 0, mt: 0, ct: -1 };
    if (n.t === 'f') {
      const t0 = Date.now();
      stat = stampOf(lstatSync(`${root}/${p}`), t0);
    }
    state.set(p, { t: n.t, m: n.m, s: n.s, h: n.h, ...stat } satisfies StatNode);
  }
  return state;
}

const DISCARD: TreeFileSink = { write: () => undefined, close: () => undefined };

/** A TreeWriter that takes only the selected entries of the archive it reads, and skips the rest. */
class SelectiveWriter extends TreeWriter {
  #selected = new Set<string>();
  #seen = new Set<string>();
  #reading = false;

  /** The entries to take from the next archive. */
  select(names: Set<string>): void {
    this.#reading = true;
    this.#selected = names;
    this.#seen = new Set();
  }

  /** Selected entries the archive did not hold. */
  missing(): string[] {
    return [...this.#selected].filter((n) => !this.#seen.has(n));
  }

  #take(entry: string): boolean {
    const name = entry.replace(/^(?:\.\/)+/, '').replace(/\/+$/, '');
    if (!this.#selected.has(name) || this.#seen.has(name)) return false;
    this.#seen.add(name);
    return true;
  }

  override count(_entry: string): void {
    // Counted once per tree path by buildTree, not per archive entry: shadowed entries are not extracted.
  }

  countPath(entry: string): void {
    super.count(entry);
  }

  override directory(entry: string): void {
    // Folders come from the tree (made up front), never from a layer's own entries.
    if (!this.#reading) super.directory(entry);
  }

  override file(entry: string, mode: number, declared?: number): TreeFileSink {
    return this.#take(entry) ? super.file(entry, mode, declared) : DISCARD;
  }

  override symlink(entry: string, target: string): void {
    if (this.#take(entry)) super.symlink(entry, target);
  }

  override hardlink(entry: string, target: string): void {
    if (this.#take(entry)) super.hardlink(entry, target);
  }
}
