/**
 * save: writing a changed 100 MiB / 10,000-file working copy back to the store (POST /projects/:id/save packs it
 * and uploads it) vs the system's zip and tar packing the same tree.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freshContainer, plantArchive, startAzurite } from '../lib/azurite.js';
import { benchProject, buildArchive, generateTree, sourceFile } from '../lib/dataset.js';
import { JsonClient } from '../lib/http.js';
import { warmUp } from '../lib/project.js';
import { RssSampler } from '../lib/rss.js';
import { mib, timeOnce } from '../lib/stats.js';
import { launchSupervisor, type SupervisorProcess } from '../lib/supervisor.js';
import type { Figure, Scenario, ScenarioContext } from '../lib/types.js';

const run = promisify(execFile);
type Format = 'zip' | 'tar.gz';
const FORMATS: readonly Format[] = ['zip', 'tar.gz'];
/** Project id of each format's copy; both live on one supervisor per store. */
const PROJECT: Record<Format, string> = { zip: 'save-zip', 'tar.gz': 'save-tgz' };
const TOOL: Record<Format, string> = { zip: 'zip -qr', 'tar.gz': 'tar czf' };

/** One side's samples for one format. */
interface Samples {
  /** Duration of each save (toolhost) or pack (baseline), ms. */
  ms: number[];
  /** Archive bytes of the last one. */
  bytes: number;
  /** Largest peak-RSS growth over a save (toolhost only). */
  growth: number;
}

export const save: Scenario = {
  name: 'save',
  description:
    'The project of cold-start (100 MiB / 10,000 files, same seed) is in the store and extracted into its working copy (one supervisor for both formats, on the local store, then on Azurite); each round a POST /file/write of one 2 KiB file makes it dirty, then POST /projects/:id/save (pack into the scratch folder, then a rename into <dataDir>/store/, or a block upload to Azurite) is timed, alternating with `zip -qr` / `tar czf` of the same working copy into a new file (best of 3 on the local store and of 2 on Azurite, page cache warm, `sync` before each). Peak RSS growth of the supervisor process over each save (VmHWM reset just before, minus VmRSS before).',
  async run(ctx) {
    const spec = benchProject(ctx.smoke);
    // Each round packs 100 MiB twice (a few seconds each side): best of a few, to stay within 2 minutes.
    const reps = { local: ctx.smoke ? 1 : 3, azure: ctx.smoke ? 1 : 2 };
    ctx.log(`generating ${spec.files} files, ${mib(spec.totalBytes).toFixed(0)} MiB`);
    const tree = await generateTree(join(ctx.tmp, 'src'), spec);
    const archives = {} as Record<Format, string>;
    for (const format of FORMATS) {
      archives[format] = join(ctx.tmp, `project.${format}`);
      await buildArchive(tree.root, archives[format], format);
    }
    const textFile = tree.files.find((f) => f.endsWith('.ts'))!;
    const figures: Figure[] = [];
    const local = await saveRounds(ctx, { kind: 'local', archives, reps: reps.local, textFile });
    figures.push(...toFigures(local, '', tree.files.length));
    const azurite = await startAzurite();
    try {
      const container = await freshContainer(azurite, 'bench-save');
      for (const format of FORMATS) await plantArchive(container, PROJECT[format], format, archives[format]);
      const azure = await saveRounds(ctx, { kind: 'azure', archives, reps: reps.azure, textFile, config: container.config });
      figures.push(...toFigures(azure, ' to Azurite', tree.files.length));
    } finally {
      await azurite.stop();
    }
    return figures;
  },
};

/** What one store's rounds measured, per format. */
type RoundsResult = Record<Format, { toolhost: Samples; baseline: Samples }>;

/** One store's rounds. */
interface RoundsOptions {
  kind: 'local' | 'azure';
  archives: Record<Format, string>;
  reps: number;
  /** A text file of the tree, read to extract each working copy. */
  textFile: string;
  /** The supervisor's store config when the archives are already planted elsewhere; absent: the local store. */
  config?: Record<string, unknown>;
}

/**
 * Starts a supervisor whose store holds both archives (copied into its store folder unless `o.config` points it
 * at a container that has them), extracts both working copies, then times `o.reps` rounds of save vs system pack
 * per format.
 */
async function saveRounds(ctx: ScenarioContext, o: RoundsOptions): Promise<RoundsResult> {
  const { kind, reps } = o;
  const dataDir = join(ctx.tmp, `save-${kind}-data`);
  await mkdir(join(dataDir, 'store'), { recursive: true });
  if (!o.config) for (const format of FORMATS) await copyFile(o.archives[format], join(dataDir, 'store', `${PROJECT[format]}.${format}`));
  const sup = await launchSupervisor({ tmp: ctx.tmp, dataDir, name: `save-${kind}`, ...(o.config ? { config: o.config } : {}) });
  const th = new JsonClient(sup);
  try {
    // Warm the save path on a tiny project, so the first timed save does not pay for its first use.
    await warmUp(sup, ctx.tmp, 'tar.gz');
    await th.post('/file/write', { project_id: 'warm-0', path: 'dirty.txt', content: 'dirty\n' });
    await th.post('/projects/warm-0/save', {});
    const out = {} as RoundsResult;
    for (const format of FORMATS) {
      const id = PROJECT[format];
      await th.post('/file/read', { project_id: id, path: o.textFile }); // extracts the working copy
      const copy = join(sup.dataDir, 'projects', id);
      await stat(copy).catch(() => {
        throw new Error(`the working copy of ${id} is not at ${copy}; the bench needs it there to pack the same tree with ${TOOL[format]}`);
      });
      const toolhost: Samples = { ms: [], bytes: 0, growth: 0 };
      const baseline: Samples = { ms: [], bytes: 0, growth: 0 };
      for (let i = 0; i < reps; i++) {
        ctx.log(`${kind} ${format} round ${i + 1}/${reps}`);
        // Alternate which side goes first, so neither always packs right after the other.
        const sides = [() => timedSave(sup, th, id, i, toolhost), () => systemPack(ctx, copy, format, `${kind}-${i}`, baseline)];
        if (i % 2 === 1) sides.reverse();
        for (const side of sides) await side();
      }
      out[format] = { toolhost, baseline };
    }
    return out;
  } finally {
    th.close();
    await sup.stop();
  }
}

/** Makes the project dirty with one small file, then times POST /projects/:id/save and the RSS it takes. */
async function timedSave(sup: SupervisorProcess, th: JsonClient, id: string, round: number, s: Samples): Promise<void> {
  await th.post('/file/write', { project_id: id, path: `bench-dirty/round-${round}.ts`, content: sourceFile(round, 2048) });
  await run('sync');
  const before = sup.memory().rss;
  sup.resetPeak();
  const sampler = new RssSampler(sup.pid).start();
  let answer: { saved?: unknown; archive_bytes?: unknown } = {};
  const ms = await timeOnce(async () => {
    answer = (await th.post(`/projects/${id}/save`, {})).body;
  });
  const peak = Math.max(sup.memory().peak, sampler.stop().maxRss);
  if (answer.saved !== true || typeof answer.archive_bytes !== 'number')
    throw new Error(`the save of a dirty ${id} uploaded nothing: ${JSON.stringify(answer)}`);
  s.ms.push(ms);
  s.bytes = answer.archive_bytes;
  s.growth = Math.max(s.growth, peak - before);
}

/**
 * The system tool packing the working copy into a new archive in ctx.tmp; the archive is deleted after it is
 * timed (one file: unlike deleting a tree, that does not slow the next files' creation; see cold-start.ts).
 */
async function systemPack(ctx: ScenarioContext, dir: string, format: Format, tag: string, s: Samples): Promise<void> {
  const out = join(ctx.tmp, `system-pack-${tag}.${format}`);
  await run('sync');
  s.ms.push(await timeOnce(() => (format === 'zip' ? run('zip', ['-qr', out, '.'], { cwd: dir }) : run('tar', ['czf', out, '-C', dir, '.']))));
  s.bytes = (await stat(out)).size;
  await rm(out);
}

/** The figures of one store's rounds; `suffix` names the store in the figure ('' for the local one). */
function toFigures(r: RoundsResult, suffix: string, files: number): Figure[] {
  return FORMATS.flatMap((format): Figure[] => {
    const { toolhost, baseline } = r[format];
    return [
      {
        figure: `${format}: save${suffix} vs ${TOOL[format]}`,
        unit: 'ms',
        value: Math.min(...toolhost.ms),
        baseline: Math.min(...baseline.ms),
        target: { of: 'ratio', op: '<=', limit: 1.5 },
        note:
          `${files} files and one more per round; toolhost's archive ${mib(toolhost.bytes).toFixed(1)} MiB, ${TOOL[format]}'s ${mib(baseline.bytes).toFixed(1)} MiB; all samples ms: toolhost ${toolhost.ms.map((x) => x.toFixed(0)).join(', ')}, ${TOOL[format]} ${baseline.ms.map((x) => x.toFixed(0)).join(', ')}` +
          (suffix ? `; includes the block upload to Azurite over loopback (Azurite shares the machine's cores); the baseline writes to local disk` : ''),
      },
      {
        figure: `${format}: peak RSS growth in save${suffix}`,
        unit: 'MiB',
        value: mib(toolhost.growth),
        note: `compare 2 x archive = ${mib(2 * toolhost.bytes).toFixed(0)} MiB (cold-start's limit; save has no target)`,
      },
    ];
  });
}
