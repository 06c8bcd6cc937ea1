/**
 * The recorded agent session of the `agents` scenario: the project an agent works on (a generated 200-file
 * TypeScript tree with a few planted symbols, a package.json, a README and a test script) and the fixed sequence
 * of tool calls one round of its session makes. A round leaves the project as it found it (every edit is undone
 * later in the round), so an agent can replay rounds for as long as a step lasts, and stop between any two calls.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateTree } from './dataset.js';
import { writeFiles } from './project.js';

/** One call of the session; `test` is the test run, every other kind is a short call. */
export type MixStep =
  | { kind: 'list'; path: string; depth: number }
  | { kind: 'glob'; pattern: string }
  | { kind: 'search'; pattern: string; regex: boolean }
  | { kind: 'read'; path: string; start_line?: number; end_line?: number }
  | { kind: 'edit'; path: string; old_str: string; new_str: string }
  | { kind: 'exec'; command: string }
  | { kind: 'test'; command: string };

/** Source files of the generated project, and the one the session edits most. */
const FILES = 200;
const CONFIG_FILE = 5;
const CALLER_FILE = 30;

/**
 * The test run: about 1 s of CPU (a busy loop bounded by the clock, so it lasts 1 s of wall time whatever the
 * machine and whatever else runs; under contention it gets less CPU, never more time), 40 lines of TAP output,
 * then 1.5 s of waiting, as a suite waits on timers and I/O: 2.5 s in all. bash's EPOCHREALTIME needs bash 5.
 */
const TEST_SCRIPT = `#!/bin/bash
now() { local t=\${EPOCHREALTIME/[.,]/}; echo \${t}; }
end=$(( $(now) + 1000000 ))
n=0
while (( $(now) < end )); do n=$((n + 1)); done
for i in $(seq 1 40); do echo "ok $i - case $i"; done
sleep 1.5
echo "# tests 40, pass 40 (spins $n)"
`;

/** Project-relative paths of the generated source files, in creation order. */
export interface AgentProject {
  root: string;
  files: string[];
}

/** Writes the agent's project under `root`: always the same bytes (seed 18), about 600 KiB. */
export async function writeAgentProject(root: string): Promise<AgentProject> {
  const tree = await generateTree(root, { files: FILES, totalBytes: FILES * 3000, seed: 18 });
  const append = async (i: number, text: string): Promise<void> => {
    const abs = join(root, tree.files[i]!);
    await writeFile(abs, (await readFile(abs, 'utf8')) + text);
  };
  await append(CONFIG_FILE, 'export function resolveConfig(options) {\n  const retries = 3;\n  return { ...options, retries };\n}\n');
  for (let i = 10; i <= 120; i += 10) await append(i, 'const cfg = resolveConfig({ verbose: false });\n');
  for (const i of [3, 47, 88, 131, 175, 199]) await append(i, `// TODO(ana): split this module (${i})\n`);
  await writeFiles(root, {
    'package.json': `${JSON.stringify({ name: 'agent-project', version: '1.0.0', type: 'module', scripts: { test: 'bash scripts/test.sh' } }, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify({ compilerOptions: { strict: true, target: 'es2022', module: 'nodenext' } }, null, 2)}\n`,
    'README.md': '# agent-project\n\nA generated project the agents bench scenario works on.\n\nRun the tests with `npm test`.\n',
    '.gitignore': 'node_modules/\ndist/\n',
    'scripts/test.sh': TEST_SCRIPT,
  });
  await chmod(join(root, 'scripts/test.sh'), 0o755);
  return { root, files: tree.files };
}

/**
 * One round of the session: 22 short calls and one test run (a coding agent's usual rhythm: look around, search,
 * read, edit, check with a quick command, run the tests, then undo and look again).
 */
export function agentMix(p: AgentProject): MixStep[] {
  const f = (i: number): string => p.files[i]!;
  const config = f(CONFIG_FILE);
  const caller = f(CALLER_FILE);
  const retries = (from: number, to: number): MixStep => ({
    kind: 'edit',
    path: config,
    old_str: `  const retries = ${from};`,
    new_str: `  const retries = ${to};`,
  });
  const verbose = (from: boolean, to: boolean): MixStep => ({
    kind: 'edit',
    path: caller,
    old_str: `resolveConfig({ verbose: ${from} })`,
    new_str: `resolveConfig({ verbose: ${to} })`,
  });
  return [
    { kind: 'list', path: '.', depth: 2 },
    { kind: 'read', path: 'package.json' },
    { kind: 'glob', pattern: '**/*.ts' },
    { kind: 'search', pattern: 'resolveConfig', regex: false },
    { kind: 'read', path: config },
    { kind: 'read', path: caller, start_line: 1, end_line: 60 },
    { kind: 'read', path: f(10) },
    retries(3, 5),
    { kind: 'read', path: config, start_line: 1, end_line: 40 },
    { kind: 'exec', command: 'grep -rn "resolveConfig" src | head -20' },
    { kind: 'search', pattern: String.raw`TODO\(\w+\)`, regex: true },
    { kind: 'list', path: 'src', depth: 1 },
    verbose(false, true),
    { kind: 'exec', command: 'wc -l src/*/*/*.ts | tail -1' },
    { kind: 'test', command: 'bash scripts/test.sh' },
    { kind: 'read', path: caller },
    { kind: 'search', pattern: 'retries', regex: false },
    retries(5, 3),
    verbose(true, false),
    { kind: 'exec', command: 'ls src' },
    { kind: 'read', path: f(42) },
    { kind: 'glob', pattern: 'src/**/f1*.ts' },
    { kind: 'read', path: 'README.md' },
  ];
}

/** True for the calls whose latency the scenario measures (all but the test run). */
export const isShort = (s: MixStep): boolean => s.kind !== 'test';

/**
 * The short calls of `mix` grouped by kind, each group in session order: replaying a group round after round
 * still leaves the project as it found it, as the edits of a round undo one another.
 */
export function shortByKind(mix: readonly MixStep[]): Map<MixStep['kind'], MixStep[]> {
  const groups = new Map<MixStep['kind'], MixStep[]>();
  for (const s of mix.filter(isShort)) groups.set(s.kind, [...(groups.get(s.kind) ?? []), s]);
  return groups;
}
