#!/usr/bin/env node
/**
 * `npm start`: serves from the build that `npm ci` made (the `prepare` script), without compiling on every start.
 * The build is compiled again first only when a source file is newer than it (a checkout or an edit since), so
 * a stale build never runs.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'supervisor', 'main.js');
const SOURCES = ['lib', 'supervisor', 'handlers', 'config', 'bin', 'tsconfig.json', 'package.json'];

/** The newest modification time under `path` (a file or a folder of sources), in ms. */
function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const e of readdirSync(path)) max = Math.max(max, newest(join(path, e)));
  return max;
}

let builtAt = 0;
try {
  builtAt = statSync(built).mtimeMs;
} catch {
  // never built
}
if (builtAt === 0 || SOURCES.some((s) => newest(join(root, s)) > builtAt)) {
  process.stderr.write(builtAt === 0 ? 'toolhost: building (first start)\n' : 'toolhost: sources changed since the build; building again\n');
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
}
await import(built);
