/**
 * scripts/check-cycles.ts on small trees written to a temp folder: a cycle of any kind of import fails it (exit 1)
 * and is printed as a chain of files; an acyclic tree passes (exit 0). The exit codes are checked by running the
 * script as `npm run check:cycles` does; the kinds of import through its functions, which is faster.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { findCycles, formatReport, importGraph } from '../scripts/check-cycles.js';
import { tempDir, writeTree } from './helpers/harness.js';

const run = promisify(execFile);
const SCRIPT = new URL('../scripts/check-cycles.ts', import.meta.url).pathname;

/** Runs the script on `root`: its exit code and what it printed. */
async function checkCycles(root: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', SCRIPT, root], { cwd: new URL('..', import.meta.url).pathname });
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The chains the script printed, each rotated to start at its smallest file so the test does not depend on where a cycle was entered. */
function chains(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('  ') && l.includes(' -> '))
    .map((l) => {
      const files = l.trim().split(' -> ').slice(0, -1);
      const first = files.indexOf([...files].sort()[0]!);
      const rotated = [...files.slice(first), ...files.slice(0, first)];
      return [...rotated, rotated[0]].join(' -> ');
    })
    .sort();
}

describe('check-cycles script', function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  const tree = async (files: Record<string, string>): Promise<string> => {
    const dir = await tempDir('toolhost-cycles-');
    dirs.push(dir);
    await writeTree(dir, files);
    return dir;
  };

  it('fails on a cycle made only of type imports, and prints it as a chain of files', async () => {
    const root = await tree({
      'lib/protocol.ts': "import type { Worker } from './worker.js';\nexport interface Message { from: Worker }\n",
      'lib/worker.ts': "import type { Message } from './protocol.js';\nexport interface Worker { inbox: Message[] }\n",
      'lib/leaf.ts': 'export const x = 1;\n',
    });
    const { code, out } = await checkCycles(root);
    expect(code, out).to.equal(1);
    expect(chains(out)).to.deep.equal(['lib/protocol.ts -> lib/worker.ts -> lib/protocol.ts']);
    expect(out).to.not.include('leaf.ts');
  });

  it('follows every kind of import across folders: export-from, side effects, import() in code and in types, a file importing itself', async () => {
    const root = await tree({
      'config/a.ts': "export * from '../lib/b.js';\n",
      'lib/b.ts': "import '../supervisor/c.js';\nexport const b = 1;\n",
      'supervisor/c.ts': "export type A = typeof import('../config/a.js');\n",
      'handlers/d.ts': "export async function load() { return import('./e.js'); }\n",
      'handlers/e.ts': "export type { D } from './d.js';\n",
      'lib/self.ts': "import type { S } from './self.js';\nexport interface S { next?: S }\n",
      'lib/outside-the-graph.ts':
        "import { readFileSync } from 'node:fs';\nimport { z } from 'zod';\nimport data from './data.json';\nimport { gone } from './missing.js';\n",
    });
    const out = formatReport(findCycles(importGraph(root)));
    expect(chains(out)).to.deep.equal([
      'config/a.ts -> lib/b.ts -> supervisor/c.ts -> config/a.ts',
      'handlers/d.ts -> handlers/e.ts -> handlers/d.ts',
      'lib/self.ts -> lib/self.ts',
    ]);
  });

  it('prints one chain through every file of a tangle of several cycles', async () => {
    // app imports each route for wiring and each route imports app for its types: a star of two-file cycles.
    const root = await tree({
      'supervisor/http/app.ts': "import './a-routes.js';\nimport './b-routes.js';\nimport './c-routes.js';\nexport interface Deps {}\n",
      'supervisor/http/a-routes.ts': "import type { Deps } from './app.js';\n",
      'supervisor/http/b-routes.ts': "import type { Deps } from './app.js';\n",
      'supervisor/http/c-routes.ts': "import type { Deps } from './app.js';\n",
    });
    const report = findCycles(importGraph(root));
    expect(report.tangles.map((t) => t.files.length)).to.deep.equal([4]);
    expect(chains(formatReport(report))).to.deep.equal([
      'supervisor/http/a-routes.ts -> supervisor/http/app.ts -> supervisor/http/a-routes.ts',
      'supervisor/http/app.ts -> supervisor/http/b-routes.ts -> supervisor/http/app.ts',
      'supervisor/http/app.ts -> supervisor/http/c-routes.ts -> supervisor/http/app.ts',
    ]);
  });

  it('passes an acyclic tree: chains, a diamond, packages, and tests (which are not part of the graph)', async () => {
    const root = await tree({
      'lib/types.ts': 'export interface T { n: number }\n',
      'lib/left.ts': "import type { T } from './types.js';\nexport const l = (t: T) => t.n;\n",
      'lib/right.ts': "export type { T } from './types.js';\n",
      'supervisor/main.ts': "import { l } from '../lib/left.js';\nimport type { T } from '../lib/right.js';\nimport { z } from 'zod';\n",
      'handlers/h.ts': "import type { T } from '../lib/types.js';\n",
      'test/main.test.ts': "import '../supervisor/main.js';\n",
      'lib/main-helper.ts': "import type { X } from '../test/main.test.js';\n",
    });
    const { code, out } = await checkCycles(root);
    expect(code, out).to.equal(0);
    expect(out).to.match(/no import cycles among 6 files/);
  });
});
