/**
 * Finds import cycles among the TypeScript files of lib/, supervisor/, handlers/, config/, scripts/ and bench/,
 * type-only imports included: "no two files import each other, not even for types" (STYLE.md). Every import
 * counts (`import type`, `export ... from`, side-effect imports, `import()` in code and in types), as
 * `ts.preProcessFile` lists them; relative `.js` specifiers are resolved to the `.ts` files they compile from, and
 * anything else (packages, node: builtins, JSON) is not a file of the graph.
 *
 * The strongly connected components (Tarjan) are the tangles; for each, it prints the shortest cycle through each
 * of its files until every file is on one, so the chains show which imports to cut. Exits 1 when there is a
 * cycle, 0 when there is none.
 *
 * Usage: `npm run check:cycles` or `tsx scripts/check-cycles.ts [root]` (root defaults to the repository).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

/** The folders whose files make the graph, relative to the root; those that do not exist are skipped. */
export const SOURCE_DIRS = ['lib', 'supervisor', 'handlers', 'config', 'scripts', 'bench'] as const;

/** Who imports whom: root-relative paths with forward slashes, each mapped to the files it imports. */
export type ImportGraph = Map<string, Set<string>>;

/** What {@link findCycles} found. */
export interface CycleReport {
  /** Files in the graph. */
  files: number;
  /** Each tangle (a strongly connected component with a cycle), with cycles that together cover its files. */
  tangles: Array<{ files: string[]; cycles: string[][] }>;
}

/** Builds the import graph of the `.ts` files under `dirs` of `root`. */
export function importGraph(root: string, dirs: readonly string[] = SOURCE_DIRS): ImportGraph {
  const files = dirs.flatMap((d) => tsFiles(root, join(root, d)));
  const known = new Set(files);
  const graph: ImportGraph = new Map();
  for (const file of files) {
    const targets = new Set<string>();
    const { importedFiles } = ts.preProcessFile(readFileSync(join(root, file), 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      const target = resolveSpecifier(file, fileName, known);
      if (target !== undefined) targets.add(target);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** The tangles of `graph`, each with cycles that cover its files. */
export function findCycles(graph: ImportGraph): CycleReport {
  const tangles = stronglyConnected(graph)
    .filter((c) => c.length > 1 || graph.get(c[0]!)!.has(c[0]!))
    .map((component) => {
      const files = [...component].sort();
      return { files, cycles: coveringCycles(graph, files) };
    })
    .sort((a, b) => b.files.length - a.files.length || a.files[0]!.localeCompare(b.files[0]!));
  return { files: graph.size, tangles };
}

/** The report as text: one block per tangle, one chain per line ("a.ts -> b.ts -> a.ts"). */
export function formatReport(report: CycleReport): string {
  if (report.tangles.length === 0) return `no import cycles among ${report.files} files\n`;
  const lines = [
    `import cycles: ${report.tangles.length} tangle(s) of files that import each other, among ${report.files} files.`,
    'Each line is one cycle; together they cover every file of their tangle. Cut one import of each line (types that',
    'cross files move to a small leaf module).',
  ];
  report.tangles.forEach((t, i) => {
    lines.push('', `tangle ${i + 1}: ${t.files.length} file(s): ${t.files.join(', ')}`);
    for (const cycle of t.cycles) lines.push(`  ${[...cycle, cycle[0]].join(' -> ')}`);
  });
  return `${lines.join('\n')}\n`;
}

/** Root-relative paths (forward slashes) of the `.ts` files below `dir`, declaration files left out. */
function tsFiles(root: string, dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(root, path));
    else if (entry.isFile() && /\.(c|m)?tsx?$/.test(entry.name) && !/\.d\.(c|m)?ts$/.test(entry.name)) out.push(relative(root, path).split(sep).join('/'));
  }
  return out.sort();
}

/** The file of the graph that `specifier`, imported by `from`, names; undefined for packages and other files. */
function resolveSpecifier(from: string, specifier: string, known: ReadonlySet<string>): string | undefined {
  if (!specifier.startsWith('./') && !specifier.startsWith('../')) return undefined;
  const base = posix.join(posix.dirname(from), specifier);
  // NodeNext: a specifier names the emitted file (.js for .ts, .mjs for .mts, .cjs for .cts); .ts appears with
  // allowImportingTsExtensions, and bare names only in code tsx runs directly.
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.js$/, '.tsx'),
    base.replace(/\.mjs$/, '.mts'),
    base.replace(/\.cjs$/, '.cts'),
    base,
    `${base}.ts`,
    `${base}/index.ts`,
  ];
  return candidates.find((c) => known.has(c));
}

/** Tarjan's strongly connected components, iteratively (a long import chain must not overflow the stack). */
function stronglyConnected(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; edges: Iterator<string> }> = [];
    const visit = (node: string): void => {
      index.set(node, next);
      low.set(node, next);
      next++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, edges: graph.get(node)!.values() });
    };
    visit(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const step = top.edges.next();
      if (!step.done) {
        const to = step.value;
        if (!index.has(to)) visit(to);
        else if (onStack.has(to)) low.set(top.node, Math.min(low.get(top.node)!, index.get(to)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(top.node)!));
      if (low.get(top.node) === index.get(top.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== top.node);
        components.push(component);
      }
    }
  }
  return components;
}

/** Shortest cycles inside one component, through each of its files in turn until every file is on one. */
function coveringCycles(graph: ImportGraph, component: readonly string[]): string[][] {
  const inside = new Set(component);
  const covered = new Set<string>();
  const seen = new Set<string>();
  const cycles: string[][] = [];
  for (const start of component) {
    if (covered.has(start)) continue;
    const cycle = shortestCycle(graph, inside, start);
    for (const f of cycle) covered.add(f);
    // The same cycle found from another of its files: keep one, starting at its smallest file.
    const first = cycle.indexOf([...cycle].sort()[0]!);
    const canonical = [...cycle.slice(first), ...cycle.slice(0, first)];
    if (seen.has(canonical.join('\0'))) continue;
    seen.add(canonical.join('\0'));
    cycles.push(canonical);
  }
  return cycles;
}

/** The shortest cycle through `start` using only files of `inside` (breadth-first), without the closing repeat. */
function shortestCycle(graph: ImportGraph, inside: ReadonlySet<string>, start: string): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    for (const to of graph.get(node)!) {
      if (!inside.has(to)) continue;
      if (to === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
        return path;
      }
      if (cameFrom.has(to)) continue;
      cameFrom.set(to, node);
      queue.push(to);
    }
  }
  throw new Error(`${start} is on no cycle of its component; this is a bug of check-cycles`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const root = resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)));
  if (!existsSync(root)) {
    process.stderr.write(`check-cycles: ${root} does not exist; pass the repository root (or nothing)\n`);
    process.exitCode = 2;
  } else {
    const report = findCycles(importGraph(root));
    process.stdout.write(formatReport(report));
    process.exitCode = report.tangles.length > 0 ? 1 : 0;
  }
}
