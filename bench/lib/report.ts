/**
 * Turns scenario figures into result rows (ratio, target, pass/fail), prints the table, and writes the JSON and
 * Markdown reports with the machine they were measured on.
 */
import { execFileSync } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import type { Figure, Target } from './types.js';

/** How a row came out. */
export type Status = 'pass' | 'fail' | 'info' | 'not built' | 'error';

/** One line of the table. */
export interface Row {
  scenario: string;
  figure: string;
  unit: string;
  toolhost: number | null;
  baseline: number | null;
  ratio: number | null;
  target: string;
  status: Status;
  note?: string;
}

/** One scenario's outcome. */
export interface ScenarioResult {
  name: string;
  description: string;
  status: 'ok' | 'not built' | 'error';
  duration_s: number;
  error?: string;
  rows: Row[];
}

/** Where and when a run happened. */
export interface Machine {
  date: string;
  cpus: number;
  cpu_model: string;
  memory_gib: number;
  node: string;
  os: string;
  commit: string;
  /** 1-minute load average when the run started and when it ended: anything else busy on the machine shows here. */
  load_average: { start: number; end?: number };
}

/** The commit measured: TOOLHOST_BENCH_COMMIT when set (a run from an exported snapshot has no .git), else git's. */
function commitInfo(): string {
  if (process.env.TOOLHOST_BENCH_COMMIT) return process.env.TOOLHOST_BENCH_COMMIT;
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    // The results of an earlier run, which this run overwrites, are not a change to what is measured.
    const dirty = execFileSync('git', ['status', '--porcelain', '--', '.', ':!bench/results'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${head} + uncommitted changes` : head;
  } catch {
    return 'unknown';
  }
}

/** The machine this runs on. */
export function machineInfo(): Machine {
  const commit = commitInfo();
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpu_model: cpus()[0]?.model.trim() ?? 'unknown',
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${process.platform} ${release()}`,
    commit,
    load_average: { start: Number(loadavg()[0]!.toFixed(2)) },
  };
}

function meets(x: number, t: Target): boolean {
  if (t.op === '<=') return x <= t.limit;
  if (t.op === '<') return x < t.limit;
  return x >= t.limit;
}

/** Compares a figure with its target. */
export function toRow(scenario: string, f: Figure): Row {
  const ratio = f.baseline !== undefined && f.baseline > 0 ? f.value / f.baseline : null;
  let status: Status = 'info';
  let target = '';
  if (f.target) {
    target = f.target.of === 'ratio' ? `ratio ${f.target.op} ${f.target.limit}` : `${f.target.op} ${f.target.limit} ${f.unit}`;
    const x = f.target.of === 'ratio' ? ratio : f.value;
    status = x !== null && Number.isFinite(x) && meets(x, f.target) ? 'pass' : 'fail';
  }
  return {
    scenario,
    figure: f.figure,
    unit: f.unit,
    toolhost: f.value,
    baseline: f.baseline ?? null,
    ratio,
    target,
    status,
    ...(f.note ? { note: f.note } : {}),
  };
}

/** A number with about three significant digits. */
export function fmt(x: number | null, unit = ''): string {
  if (x === null || !Number.isFinite(x)) return '';
  const digits = Math.abs(x) >= 100 || Number.isInteger(x) ? 0 : Math.abs(x) >= 10 ? 1 : 2;
  const s = x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return unit ? `${s} ${unit}` : s;
}

const HEADER = ['scenario', 'figure', 'toolhost', 'baseline', 'ratio', 'target', 'result'];

function cells(r: Row): string[] {
  return [r.scenario, r.figure, fmt(r.toolhost, r.unit), fmt(r.baseline, r.unit), r.ratio === null ? '' : r.ratio.toFixed(2), r.target, r.status];
}

/** Every row of every scenario; a scenario without figures gets one row with its status. */
export function allRows(results: readonly ScenarioResult[]): Row[] {
  return results.flatMap((s) =>
    s.rows.length > 0
      ? s.rows
      : [
          {
            scenario: s.name,
            figure: '',
            unit: '',
            toolhost: null,
            baseline: null,
            ratio: null,
            target: '',
            status: s.status === 'ok' ? 'info' : s.status,
            ...(s.error ? { note: s.error } : {}),
          },
        ],
  );
}

/** The table as aligned plain text. */
export function textTable(rows: readonly Row[]): string {
  const body = rows.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
  const line = (c: string[]): string => c.map((x, i) => (i >= 2 && i <= 4 ? x.padStart(widths[i]!) : x.padEnd(widths[i]!))).join('  ');
  return [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The table and notes as Markdown. */
export function markdown(rows: readonly Row[], results: readonly ScenarioResult[], m: Machine, notes: readonly string[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const out = [
    '# toolhost bench: latest results',
    '',
    `Date: ${m.date}. Machine: ${m.cpus} x ${m.cpu_model}, ${m.memory_gib} GiB, Node ${m.node}, ${m.os}. Commit: ${m.commit}. Load average (1 min) at start ${m.load_average.start}, at end ${m.load_average.end ?? '?'}.`,
    '',
    `| ${HEADER.join(' | ')} |`,
    `| ${HEADER.map((_, i) => (i >= 2 && i <= 4 ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`),
    '',
    'Scenarios:',
    '',
    ...results.map((s) => `- **${s.name}** (${s.duration_s.toFixed(0)} s): ${esc(s.description)}${s.error ? ` — ${s.status}: ${esc(s.error)}` : ''}`),
  ];
  const rowNotes = rows.filter((r) => r.note && r.status !== 'not built' && r.status !== 'error');
  if (rowNotes.length > 0 || notes.length > 0) {
    out.push('', 'Notes:', '', ...notes.map((n) => `- ${n}`), ...rowNotes.map((r) => `- ${r.scenario} / ${r.figure}: ${esc(r.note!)}`));
  }
  return `${out.join('\n')}\n`;
}

/** Writes a file via a temp file and a rename, so a reader never sees half of it. */
export async function writeAtomic(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}
