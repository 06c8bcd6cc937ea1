/**
 * checkpoints: what saves, forks, checkpoints and restores cost now that a project is stored as layers (issue
 * #16), each against the full-size operation it replaces, measured in one run: an incremental save against a full
 * save (local store and Azurite), a fork against a fork of a small project and a cold start, checkpoint + restore
 * against a cold start, a cold start after many saves (compacted at eviction) against one of the same tree freshly
 * uploaded, and the supervisor's CPU time over an autosave-like round against a full re-pack round.
 */
import { execFile } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freshContainer, startAzurite } from '../lib/azurite.js';
import { benchProject, buildArchive, type GeneratedTree, generateTree, sourceFile, type TreeSpec } from '../lib/dataset.js';
import { JsonClient } from '../lib/http.js';
import { azureManifests, cpuSeconds, headBytes, localManifests, type ManifestReader } from '../lib/layers.js';
import { warmUp } from '../lib/project.js';
import { median, mib, timeOnce } from '../lib/stats.js';
import { launchSupervisor, type SupervisorProcess } from '../lib/supervisor.js';
import type { Figure, Scenario, ScenarioContext } from '../lib/types.js';

const run = promisify(execFile);

/** The janitor's autosave is off, so no save but the bench's own runs while a figure is measured. */
const CONFIG = { cache: { autosaveMinutes: 0 } };
const BIG = 'ck-big';
const SMALL = 'ck-small';
const FRESH = 'ck-fresh';
/** The one 2 KiB file each save round changes. */
const CHANGED = 'bench/changed.ts';
const KIB = 1024;

/** How big and how many, full size or smoke. */
interface Sizes {
  big: TreeSpec;
  small: TreeSpec;
  /** Each project of the autosave round. */
  auto: TreeSpec;
  autoProjects: number;
  /** One-file saves before the compacted cold start. */
  chainSaves: number;
  saveReps: number;
  coldReps: number;
  forks: number;
  restoreReps: number;
}

function sizesFor(smoke: boolean): Sizes {
  const small: TreeSpec = { files: 100, totalBytes: 2 ** 20, seed: 7, binaryShare: 0.2 };
  if (smoke) {
    return {
      big: { files: 500, totalBytes: 5 * 2 ** 20, seed: 6, binaryShare: 0.2 },
      small,
      auto: { files: 100, totalBytes: 2 ** 20, seed: 8, binaryShare: 0.2 },
      autoProjects: 10,
      // More than checkpoints.maxLayers (16), so the eviction compacts even in smoke mode.
      chainSaves: 20,
      saveReps: 1,
      coldReps: 1,
      forks: 3,
      restoreReps: 1,
    };
  }
  return {
    big: benchProject(false),
    small,
    auto: { files: 1000, totalBytes: 10 * 2 ** 20, seed: 8, binaryShare: 0.2 },
    autoProjects: 100,
    chainSaves: 50,
    saveReps: 2,
    coldReps: 2,
    forks: 10,
    restoreReps: 2,
  };
}

/** A generated tree, its tar.gz, and a text file to read. */
interface Project {
  tree: GeneratedTree;
  archive: string;
  textFile: string;
  /** Text files to change, away from `textFile`. */
  others: string[];
}

async function makeProject(ctx: ScenarioContext, name: string, spec: TreeSpec): Promise<Project> {
  ctx.log(`generating ${name}: ${spec.files} files, ${mib(spec.totalBytes).toFixed(0)} MiB`);
  const tree = await generateTree(join(ctx.tmp, name), spec);
  const archive = join(ctx.tmp, `${name}.tar.gz`);
  await buildArchive(tree.root, archive, 'tar.gz');
  const texts = tree.files.filter((f) => f.endsWith('.ts'));
  return { tree, archive, textFile: texts[0]!, others: texts.slice(1) };
}

export const checkpoints: Scenario = {
  name: 'checkpoints',
  description:
    'Layered projects (issue #16), one supervisor on the local store (janitor autosave off) and one on Azurite for the save rows. The cold-start project (100 MiB / 10,000 files, same seed) is uploaded with PUT /projects/:id. ' +
    'Save: one 2 KiB file rewritten, then POST /projects/:id/save, vs a full save of the same change (the copy-state file <dataDir>/copy-states/<id>.json.gz deleted first, so every file is read and packed into a new base layer); bytes_uploaded vs that base layer as the stored manifest lists it (best of 2, alternating, `sync` before each). ' +
    'Fork: POST /projects/:id/fork of it vs of a 1 MiB / 100-file project (medians of 10, alternating), and vs its cold start (DELETE /projects/:id/cache, then a timed POST /file/read; best of 2). ' +
    'Checkpoint + restore: after a checkpoint, 2 files changed and 1 added, then POST /projects/:id/checkpoints and POST .../checkpoints/<first>/restore, timed together (best of 2). ' +
    'Cold start after 50 one-file saves (the eviction compacts the chain past checkpoints.maxLayers = 16) vs a cold start of the same tree packed with tar czf and PUT under another id (best of 2 each, alternating). ' +
    'Autosave: 100 projects of 10 MiB / 1,000 files (one upload and 99 forks, each extracted), each with one 2 KiB change, saved one after another; CPU time (utime + stime of the supervisor process, all threads, /proc) vs the same round with every copy-state file deleted (full re-pack).',
  async run(outer) {
    // Each progress line says when it came, so a slow phase shows in the log even if the run is cut short.
    const t0 = performance.now();
    const ctx = { ...outer, log: (m: string) => outer.log(`${((performance.now() - t0) / 1000).toFixed(0)} s: ${m}`) };
    const sizes = sizesFor(ctx.smoke);
    const big = await makeProject(ctx, 'big', sizes.big);
    const small = await makeProject(ctx, 'small', sizes.small);
    const auto = await makeProject(ctx, 'auto', sizes.auto);
    const figures = await localFigures(ctx, sizes, { big, small, auto });
    figures.push(...(await azureFigures(ctx, sizes, big)));
    return figures;
  },
};

/** The local store's figures: saves, fork, checkpoint + restore, the compacted cold start, the autosave round. */
async function localFigures(ctx: ScenarioContext, sizes: Sizes, p: { big: Project; small: Project; auto: Project }): Promise<Figure[]> {
  const sup = await launchSupervisor({ tmp: ctx.tmp, name: 'ckpt-local', config: CONFIG });
  const th = new JsonClient(sup);
  const manifests = localManifests(sup.dataDir);
  try {
    await warm(sup, th, ctx.tmp);
    ctx.log('uploading');
    await th.putFile(`/projects/${BIG}`, p.big.archive);
    await th.putFile(`/projects/${SMALL}`, p.small.archive);
    await read(th, BIG, p.big.textFile);
    await read(th, SMALL, p.small.textFile);

    ctx.log('cold starts');
    const cold: number[] = [];
    for (let i = 0; i < sizes.coldReps; i++) cold.push(await coldStart(th, BIG, p.big.textFile));
    const coldMs = Math.min(...cold);
    const coldNote = `cold start of the ${mib(p.big.tree.bytes).toFixed(0)} MiB project just uploaded (one base layer): ${cold.map((x) => x.toFixed(0)).join(', ')} ms`;

    ctx.log('saves');
    const saves = await saveRounds(sup, th, manifests, sizes.saveReps);
    ctx.log(`save ms: incremental ${fmtList(saves.incremental.ms)}, full ${fmtList(saves.full.ms)}; cold start ms ${fmtList(cold)}`);
    ctx.log('forks');
    const forks = await forkRounds(th, sizes.forks);
    ctx.log('checkpoint + restore');
    const restores = await restoreRounds(th, p.big, sizes.restoreReps);
    ctx.log(`fork ms: big ${fmtList(forks.big)}, small ${fmtList(forks.small)}; checkpoint + restore ms ${fmtList(restores.ms)}`);
    ctx.log(`${sizes.chainSaves} one-file saves, then cold starts`);
    const chain = await chainRounds(ctx, sup, th, manifests, p.big, sizes);
    ctx.log(`cold start ms: after saves ${fmtList(chain.layered)}, fresh ${fmtList(chain.fresh)}`);
    ctx.log(`autosave round over ${sizes.autoProjects} projects`);
    const autosave = await autosaveRounds(ctx, sup, th, p.auto, sizes.autoProjects);

    const size = `${mib(p.big.tree.bytes).toFixed(0)} MiB`;
    return [
      ...saveFigures(saves, ''),
      {
        figure: `fork of the ${size} project vs of a ${mib(p.small.tree.bytes).toFixed(0)} MiB one`,
        unit: 'ms',
        value: median(forks.big),
        baseline: median(forks.small),
        target: { of: 'ratio', op: '<=', limit: 1.5 },
        note: `medians of ${forks.big.length}; all samples ms: ${p.big.tree.files.length} files ${fmtList(forks.big)}; ${p.small.tree.files.length} files ${fmtList(forks.small)}`,
      },
      {
        figure: `fork of the ${size} project vs its cold start`,
        unit: 'ms',
        value: median(forks.big),
        baseline: coldMs,
        target: { of: 'ratio', op: '<=', limit: 0.1 },
        note: coldNote,
      },
      {
        figure: 'checkpoint + restore vs cold start',
        unit: 'ms',
        value: Math.min(...restores.ms),
        baseline: coldMs,
        target: { of: 'ratio', op: '<=', limit: 1 },
        note: `all samples ms ${fmtList(restores.ms)}; the restore wrote ${restores.written} files and deleted ${restores.deleted} (a restore checkpoints the state first, so it saves too)`,
      },
      {
        figure: `cold start after ${sizes.chainSaves} one-file saves vs the same tree freshly uploaded`,
        unit: 'ms',
        value: Math.min(...chain.layered),
        baseline: Math.min(...chain.fresh),
        target: { of: 'ratio', op: '<=', limit: 1.2 },
        note: `head chain ${chain.layersBefore} layers before the eviction, ${chain.layersAfter} after (the eviction, compaction included, took ${chain.evictMs.toFixed(0)} ms); head ${mib(chain.layeredBytes).toFixed(1)} MiB vs ${mib(chain.freshBytes).toFixed(1)} MiB fresh; all samples ms: after saves ${fmtList(chain.layered)}, fresh ${fmtList(chain.fresh)}`,
      },
      {
        figure: `autosave round over ${sizes.autoProjects} dirty projects: supervisor CPU vs a full re-pack round`,
        unit: 's',
        value: autosave.incremental.cpu,
        baseline: autosave.full.cpu,
        target: { of: 'ratio', op: '<=', limit: 0.1 },
        note: `each project ${p.auto.tree.files.length} files, ${mib(p.auto.tree.bytes).toFixed(0)} MiB, one 2 KiB file changed; wall time ${(autosave.incremental.ms / 1000).toFixed(1)} s vs ${(autosave.full.ms / 1000).toFixed(1)} s; uploaded ${mib(autosave.incremental.bytes).toFixed(2)} MiB vs ${mib(autosave.full.bytes).toFixed(0)} MiB in all`,
      },
    ];
  } finally {
    th.close();
    await sup.stop();
  }
}

/** The save figures on Azurite: a supervisor whose store is a fresh container, the big project uploaded to it. */
async function azureFigures(ctx: ScenarioContext, sizes: Sizes, big: Project): Promise<Figure[]> {
  const azurite = await startAzurite();
  try {
    const container = await freshContainer(azurite, 'bench-ckpt');
    const sup = await launchSupervisor({ tmp: ctx.tmp, name: 'ckpt-azure', config: { ...CONFIG, ...container.config } });
    const th = new JsonClient(sup);
    try {
      await warm(sup, th, ctx.tmp);
      ctx.log('uploading to Azurite');
      await th.putFile(`/projects/${BIG}`, big.archive);
      await read(th, BIG, big.textFile);
      ctx.log('saves to Azurite');
      return saveFigures(await saveRounds(sup, th, azureManifests(container), sizes.saveReps), ' to Azurite');
    } finally {
      th.close();
      await sup.stop();
    }
  } finally {
    await azurite.stop();
  }
}

/** Warms the paths the figures take (extraction, save, checkpoint, restore, fork) on a tiny project. */
async function warm(sup: SupervisorProcess, th: JsonClient, tmp: string): Promise<void> {
  await warmUp(sup, tmp, 'tar.gz');
  await write(th, 'warm-0', 'dirty.txt', 'dirty\n');
  await save(th, 'warm-0');
  const cp = (await th.post('/projects/warm-0/checkpoints', {})).body as { checkpoint_id: string };
  await write(th, 'warm-0', 'dirty.txt', 'dirtier\n');
  await th.post(`/projects/warm-0/checkpoints/${cp.checkpoint_id}/restore`, {});
  await th.post('/projects/warm-0/fork', { new_project_id: 'warm-fork' });
}

async function read(th: JsonClient, id: string, path: string): Promise<void> {
  const r = await th.post('/file/read', { project_id: id, path });
  if (typeof r.body.content !== 'string' || r.body.content.length === 0) throw new Error(`reading ${path} of ${id} returned no content`);
}

async function write(th: JsonClient, id: string, path: string, content: string): Promise<void> {
  await th.post('/file/write', { project_id: id, path, content });
}

/** What a save answered. */
interface Saved {
  saved: boolean;
  bytes_uploaded: number;
}

async function save(th: JsonClient, id: string): Promise<Saved> {
  const body = (await th.post(`/projects/${id}/save`, {})).body as Saved;
  if (body.saved !== true || typeof body.bytes_uploaded !== 'number') throw new Error(`the save of a dirty ${id} stored nothing: ${JSON.stringify(body)}`);
  return body;
}

/** Evicts the project's working copy, then times the first read (which loads it from the store). */
async function coldStart(th: JsonClient, id: string, path: string): Promise<number> {
  const r = await th.send('DELETE', `/projects/${id}/cache`);
  if (r.body.evicted !== true) throw new Error(`${id} was not evicted: ${JSON.stringify(r.body)}`);
  await run('sync');
  return timeOnce(() => read(th, id, path));
}

/** Forces the next save of `id` to be a full one: without its copy state, every file is read and packed. */
async function forgetState(sup: SupervisorProcess, id: string): Promise<void> {
  const file = join(sup.dataDir, 'copy-states', `${id}.json.gz`);
  await stat(file).catch(() => {
    throw new Error(`${id} has no copy state at ${file}; the bench deletes it to force a full save`);
  });
  await rm(file);
}

/** Incremental and full saves of the big project, alternating. */
interface SaveSamples {
  incremental: { ms: number[]; bytes: number[] };
  full: { ms: number[]; bytes: number[] };
  /** The base layer a full save made, as the stored manifest lists it. */
  baseBytes: number;
}

async function saveRounds(sup: SupervisorProcess, th: JsonClient, manifests: ManifestReader, reps: number): Promise<SaveSamples> {
  let round = 0;
  const change = (): Promise<void> => write(th, BIG, CHANGED, sourceFile(1000 + round++, 2 * KIB));
  await change(); // the file exists in the stored tree before any timed save
  await save(th, BIG);
  const out: SaveSamples = { incremental: { ms: [], bytes: [] }, full: { ms: [], bytes: [] }, baseBytes: 0 };
  const timed = async (side: 'incremental' | 'full'): Promise<void> => {
    await change();
    if (side === 'full') await forgetState(sup, BIG);
    await run('sync');
    let answer: Saved | undefined;
    out[side].ms.push(await timeOnce(async () => (answer = await save(th, BIG))));
    out[side].bytes.push(answer!.bytes_uploaded);
    if (side === 'full') {
      const m = await manifests(BIG);
      if (m.head.length !== 1) throw new Error(`a save without copy state left a head of ${m.head.length} layers, not one base layer`);
      out.baseBytes = headBytes(m);
    }
  };
  for (let i = 0; i < reps; i++) {
    const sides = ['full', 'incremental'] as const;
    for (const side of i % 2 === 0 ? sides : [...sides].reverse()) await timed(side);
  }
  return out;
}

function saveFigures(s: SaveSamples, where: string): Figure[] {
  return [
    {
      figure: `save${where} after one 2 KiB change vs a full save`,
      unit: 'ms',
      value: Math.min(...s.incremental.ms),
      baseline: Math.min(...s.full.ms),
      target: { of: 'ratio', op: '<=', limit: 0.05 },
      note: `all samples ms: incremental ${fmtList(s.incremental.ms)}, full ${fmtList(s.full.ms)}`,
    },
    {
      figure: `bytes uploaded by that save${where} vs the base layer`,
      unit: 'KiB',
      value: Math.max(...s.incremental.bytes) / KIB,
      baseline: s.baseBytes / KIB,
      target: { of: 'ratio', op: '<=', limit: 0.01 },
      note: `bytes_uploaded (layer + its index); the base layer ${mib(s.baseBytes).toFixed(1)} MiB in the stored manifest, a full save's bytes_uploaded ${mib(Math.max(...s.full.bytes)).toFixed(1)} MiB`,
    },
  ];
}

/** Forks of the big and the small project, alternating. */
async function forkRounds(th: JsonClient, n: number): Promise<{ big: number[]; small: number[] }> {
  const out = { big: [] as number[], small: [] as number[] };
  const fork = async (side: 'big' | 'small', i: number): Promise<void> => {
    const source = side === 'big' ? BIG : SMALL;
    const newId = `ck-fork-${side}-${i}`;
    let made: unknown;
    out[side].push(await timeOnce(async () => (made = (await th.post(`/projects/${source}/fork`, { new_project_id: newId })).body.project_id)));
    if (made !== newId) throw new Error(`fork of ${source} answered project_id ${String(made)}, not ${newId}`);
  };
  for (let i = 0; i < n; i++) {
    const sides = ['big', 'small'] as const;
    for (const side of i % 2 === 0 ? sides : [...sides].reverse()) await fork(side, i);
  }
  return out;
}

/** Checkpoint, a few changes, then checkpoint + restore of the first checkpoint, timed together. */
async function restoreRounds(th: JsonClient, big: Project, reps: number): Promise<{ ms: number[]; written: number; deleted: number }> {
  const first = (await th.post(`/projects/${BIG}/checkpoints`, { label: 'bench: before the changes' })).body as { checkpoint_id: string };
  const out = { ms: [] as number[], written: 0, deleted: 0 };
  for (let i = 0; i < reps; i++) {
    await write(th, BIG, big.others[10 + i]!, sourceFile(2000 + i, 2 * KIB));
    await write(th, BIG, big.others[20 + i]!, sourceFile(3000 + i, 2 * KIB));
    await write(th, BIG, `bench/added-${i}.ts`, sourceFile(4000 + i, 2 * KIB));
    await run('sync');
    let answer: { files_written?: number; files_deleted?: number } = {};
    out.ms.push(
      await timeOnce(async () => {
        await th.post(`/projects/${BIG}/checkpoints`, { label: `bench: changes ${i}` });
        answer = (await th.post(`/projects/${BIG}/checkpoints/${first.checkpoint_id}/restore`, {})).body;
      }),
    );
    if (!answer.files_written || !answer.files_deleted) throw new Error(`the restore undid no change: ${JSON.stringify(answer)}`);
    out.written = answer.files_written;
    out.deleted = answer.files_deleted;
  }
  return out;
}

/** Cold starts of the big project after a chain of one-file saves, and of the same tree freshly uploaded. */
interface ChainSamples {
  layered: number[];
  fresh: number[];
  layersBefore: number;
  layersAfter: number;
  evictMs: number;
  layeredBytes: number;
  freshBytes: number;
}

async function chainRounds(
  ctx: ScenarioContext,
  sup: SupervisorProcess,
  th: JsonClient,
  manifests: ManifestReader,
  big: Project,
  sizes: Sizes,
): Promise<ChainSamples> {
  const step = Math.floor(big.others.length / sizes.chainSaves);
  const saveMs: number[] = [];
  for (let i = 0; i < sizes.chainSaves; i++) {
    await write(th, BIG, big.others[i * step]!, sourceFile(5000 + i, 2 * KIB));
    saveMs.push(await timeOnce(() => save(th, BIG)));
  }
  ctx.log(`${sizes.chainSaves} saves, median ${median(saveMs).toFixed(0)} ms`);
  // The same tree, packed by the system's tar from the clean working copy (it equals the head), uploaded anew.
  const archive = join(ctx.tmp, 'fresh.tar.gz');
  await buildArchive(join(sup.dataDir, 'projects', BIG), archive, 'tar.gz');
  await th.putFile(`/projects/${FRESH}`, archive);
  await rm(archive);
  const layersBefore = (await manifests(BIG)).head.length;
  const evictMs = await timeOnce(() => th.send('DELETE', `/projects/${BIG}/cache`));
  const after = await manifests(BIG);
  await read(th, BIG, big.textFile); // the first cold start after the compaction, untimed: the loop evicts first
  const out: ChainSamples = {
    layered: [],
    fresh: [],
    layersBefore,
    layersAfter: after.head.length,
    evictMs,
    layeredBytes: headBytes(after),
    freshBytes: headBytes(await manifests(FRESH)),
  };
  await read(th, FRESH, big.textFile);
  for (let i = 0; i < sizes.coldReps; i++) {
    const sides = ['layered', 'fresh'] as const;
    for (const side of i % 2 === 0 ? sides : [...sides].reverse()) out[side].push(await coldStart(th, side === 'layered' ? BIG : FRESH, big.textFile));
  }
  return out;
}

/** One round's totals. */
interface Round {
  cpu: number;
  ms: number;
  bytes: number;
}

/** The autosave-like rounds: every project changed, then all saved one after another, incremental then full. */
async function autosaveRounds(
  ctx: ScenarioContext,
  sup: SupervisorProcess,
  th: JsonClient,
  auto: Project,
  count: number,
): Promise<{ incremental: Round; full: Round }> {
  const ids = Array.from({ length: count }, (_, i) => `ck-auto-${i}`);
  await th.putFile(`/projects/${ids[0]}`, auto.archive);
  await read(th, ids[0]!, auto.textFile);
  for (const id of ids.slice(1)) await th.post(`/projects/${ids[0]}/fork`, { new_project_id: id });
  let change = 0;
  const dirtyAll = async (): Promise<void> => {
    for (const id of ids) await write(th, id, CHANGED, sourceFile(6000 + change++, 2 * KIB));
  };
  for (const id of ids) await read(th, id, auto.textFile); // extracts each fork's working copy
  ctx.log('projects ready');
  const round = async (full: boolean): Promise<Round> => {
    await dirtyAll();
    if (full) for (const id of ids) await forgetState(sup, id);
    await run('sync');
    const cpu0 = cpuSeconds(sup.pid);
    const t0 = performance.now();
    let bytes = 0;
    for (const id of ids) bytes += (await save(th, id)).bytes_uploaded;
    return { ms: performance.now() - t0, cpu: cpuSeconds(sup.pid) - cpu0, bytes };
  };
  const incremental = await round(false);
  ctx.log(`incremental round: ${incremental.cpu.toFixed(2)} s CPU, ${(incremental.ms / 1000).toFixed(1)} s`);
  const full = await round(true);
  ctx.log(`full round: ${full.cpu.toFixed(2)} s CPU, ${(full.ms / 1000).toFixed(1)} s`);
  return { incremental, full };
}

function fmtList(xs: readonly number[]): string {
  return xs.map((x) => x.toFixed(x < 10 ? 1 : 0)).join(', ');
}
