/**
 * `npm run bench [-- [--smoke] [scenario ...]]`: runs the scenarios against real supervisors (child processes on
 * 127.0.0.1 port 0), prints the table and writes it to bench/results/:
 *   all scenarios, full sizes   latest.json + latest.md (what the README shows)
 *   some scenarios, full sizes  partial.json (git-ignored, as is smoke.json)
 *   --smoke                     smoke.json (tiny sizes, targets shown but not enforced)
 * Exits 1 when a scenario errored (a missed target is a "fail" row, not an error), 2 on bad arguments.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stopAll } from './lib/children.js';
import { allRows, machineInfo, markdown, type ScenarioResult, textTable, toRow, writeAtomic } from './lib/report.js';
import { NotBuilt, type Scenario } from './lib/types.js';
import { SCENARIOS } from './scenarios/index.js';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
/** The issue's budget per scenario; a longer one is flagged in the notes. */
const BUDGET_S = 120;
/** A scenario still running after this is abandoned as an error, so a hang cannot stall CI. */
const HARD_LIMIT_S = { full: 300, smoke: 90 };

const NOTES = [
  "Every supervisor runs as a child process from the compiled build (`node dist/supervisor/main.js`, what `npm start` runs; logLevel info to a file) on 127.0.0.1 port 0 with config/default.json except shutdown.graceS = 2 and what a scenario states; RSS figures are that process's VmRSS/VmHWM from /proc.",
  "Baselines run in their own processes too (a bare node:http server, or the system tools); the bench client and the servers share the machine's cores.",
];

async function runScenario(s: Scenario, smoke: boolean): Promise<ScenarioResult> {
  const tmp = await mkdtemp(join(tmpdir(), `toolhost-bench-${s.name}-`));
  // mkdtemp makes it 0700; a data dir is normally below folders others may pass (/var/lib, a checkout), which is
  // what lets commands reach their projects without staging them (exec-overhead measures staging on its own).
  await chmod(tmp, 0o711);
  const started = performance.now();
  const log = (m: string): void => void process.stderr.write(`  [${s.name}] ${m}\n`);
  const limitS = smoke ? HARD_LIMIT_S.smoke : HARD_LIMIT_S.full;
  let timer: NodeJS.Timeout | undefined;
  const hardLimit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${limitS} s`)), limitS * 1000);
  });
  const base = { name: s.name, description: s.description };
  try {
    const figures = await Promise.race([s.run({ smoke, tmp, log }), hardLimit]);
    return { ...base, status: 'ok', duration_s: (performance.now() - started) / 1000, rows: figures.map((f) => toRow(s.name, f)) };
  } catch (err) {
    const duration_s = (performance.now() - started) / 1000;
    if (err instanceof NotBuilt) {
      return {
        ...base,
        status: 'not built',
        duration_s,
        rows: [{ scenario: s.name, figure: '', unit: '', toolhost: null, baseline: null, ratio: null, target: '', status: 'not built', note: err.message }],
      };
    }
    const message = err instanceof Error ? err.message : String(err);
    log(`error: ${err instanceof Error ? err.stack : message}`);
    return { ...base, status: 'error', duration_s, error: message, rows: [] };
  } finally {
    clearTimeout(timer);
    await stopAll();
    await rm(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { smoke: { type: 'boolean', default: false }, list: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  if (values.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(16)} ${s.description}\n`);
    return 0;
  }
  const unknown = positionals.filter((p) => !SCENARIOS.some((s) => s.name === p));
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario ${unknown.join(', ')}; one of: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
    return 2;
  }
  const selected = positionals.length > 0 ? SCENARIOS.filter((s) => positionals.includes(s.name)) : SCENARIOS;
  const smoke = values.smoke ?? false;
  const machine = machineInfo();
  process.stderr.write(`toolhost bench (${smoke ? 'smoke' : 'full'}): ${selected.map((s) => s.name).join(', ')}\n`);

  const results: ScenarioResult[] = [];
  for (const s of selected) {
    process.stderr.write(`${s.name}...\n`);
    const r = await runScenario(s, smoke);
    process.stderr.write(`${s.name}: ${r.status} in ${r.duration_s.toFixed(1)} s\n`);
    results.push(r);
  }

  machine.load_average.end = Number(loadavg()[0]!.toFixed(2));
  const notes = [...NOTES];
  if (smoke) notes.unshift('Smoke run: tiny sizes and few iterations; the pass/fail column is not meaningful and not enforced.');
  for (const r of results) if (!smoke && r.duration_s > BUDGET_S) notes.push(`${r.name} took ${r.duration_s.toFixed(0)} s, over the ${BUDGET_S} s budget.`);
  const rows = allRows(results);
  process.stdout.write(`\n${textTable(rows)}\n\n`);
  for (const r of rows) if (r.note) process.stdout.write(`${r.scenario}${r.figure ? ` / ${r.figure}` : ''}: ${r.note}\n`);
  for (const n of notes) process.stdout.write(`note: ${n}\n`);

  const report = { mode: smoke ? 'smoke' : 'full', machine, notes, scenarios: results, table: rows };
  const json = `${JSON.stringify(report, null, 2)}\n`;
  if (smoke) await writeAtomic(join(RESULTS_DIR, 'smoke.json'), json);
  else if (selected.length === SCENARIOS.length) {
    await writeAtomic(join(RESULTS_DIR, 'latest.json'), json);
    await writeAtomic(join(RESULTS_DIR, 'latest.md'), markdown(rows, results, machine, notes));
  } else await writeAtomic(join(RESULTS_DIR, 'partial.json'), json);

  const errored = results.filter((r) => r.status === 'error');
  if (errored.length > 0) process.stderr.write(`errored: ${errored.map((r) => r.name).join(', ')}\n`);
  return errored.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    void stopAll().finally(() => process.exit(1));
  },
);
