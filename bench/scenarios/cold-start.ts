/**
 * cold-start: the first request on a project that is in the store but not extracted yet, vs the system's unzip
 * and tar extracting the same archive.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildArchive, generateTree } from '../lib/dataset.js';
import { JsonClient } from '../lib/http.js';
import { uploadFiles } from '../lib/project.js';
import { RssSampler } from '../lib/rss.js';
import { mib, timeOnce } from '../lib/stats.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Figure, Scenario, ScenarioContext } from '../lib/types.js';

const run = promisify(execFile);
type Format = 'zip' | 'tar.gz';

export const coldStart: Scenario = {
  name: 'cold-start',
  description:
    'A 100 MiB / 10,000-file project (80% source-like text, 20% random bytes) is copied into <dataDir>/store/ before the supervisor starts; once it is warm (a tiny other project uploaded and read), the time of the first POST /file/read (which extracts it) vs `unzip -q` / `tar xzf` of the same archive (best of 2 for each side, page cache warm, `sync` before each; every extracted tree is kept until the timings are done, so no timed extraction follows the deletion of another). Peak RSS of the supervisor process during that first request (VmHWM reset just before).',
  async run(ctx) {
    const spec = ctx.smoke ? { files: 200, totalBytes: 2 * 2 ** 20 } : { files: 10_000, totalBytes: 100 * 2 ** 20 };
    // Best of 2 rather than a median of more: each round writes 100 MiB twice, and the scenario must fit in 2 minutes.
    const reps = ctx.smoke ? 1 : 2;
    ctx.log(`generating ${spec.files} files, ${mib(spec.totalBytes).toFixed(0)} MiB`);
    const tree = await generateTree(join(ctx.tmp, 'src'), { ...spec, seed: 6, binaryShare: 0.2 });
    const firstText = tree.files.find((f) => f.endsWith('.ts'))!;
    const figures: Figure[] = [];
    for (const format of ['zip', 'tar.gz'] as const) {
      const archive = join(ctx.tmp, `project.${format}`);
      const size = await buildArchive(tree.root, archive, format);
      const base: number[] = [];
      const th: number[] = [];
      let growth = 0;
      let peakAbs = 0;
      let idle = 0;
      for (let i = 0; i < reps; i++) {
        ctx.log(`${format} rep ${i + 1}/${reps}`);
        base.push(await systemExtract(ctx, archive, format, i));
        const r = await firstRequest(ctx, archive, format, firstText, i);
        th.push(r.ms);
        growth = Math.max(growth, r.peak - r.before);
        peakAbs = Math.max(peakAbs, r.peak);
        idle = r.before;
      }
      const tool = format === 'zip' ? 'unzip -q' : 'tar xzf';
      figures.push(
        {
          figure: `${format}: first request vs ${tool}`,
          unit: 'ms',
          value: Math.min(...th),
          baseline: Math.min(...base),
          target: { of: 'ratio', op: '<=', limit: 1.3 },
          note: `archive ${mib(size).toFixed(1)} MiB, ${tree.files.length} files, ${mib(tree.bytes).toFixed(0)} MiB expanded`,
        },
        {
          figure: `${format}: peak RSS growth in first request (limit 2 x archive)`,
          unit: 'MiB',
          value: mib(growth),
          target: { of: 'value', op: '<', limit: Number(mib(2 * size).toFixed(1)) },
        },
        {
          figure: `${format}: peak RSS of the supervisor`,
          unit: 'MiB',
          value: mib(peakAbs),
          note: `idle RSS before the request ${mib(idle).toFixed(0)} MiB (supervisor from the build, pool threads started)`,
        },
      );
      await rm(archive);
    }
    return figures;
  },
};

/**
 * The system tool's time to extract `archive` into a folder of its own. Neither side's tree is deleted before the
 * scenario ends (the runner removes ctx.tmp): on ext4 without a journal, as on the bench VM, creating files right
 * after 10,000 were deleted costs 2-3x more (the inode allocator skips inodes freed in the last minute,
 * recently_deleted() in fs/ext4/ialloc.c), so deleting between runs made each side's time depend on what the
 * other had just deleted, and spared only the first baseline.
 */
async function systemExtract(ctx: ScenarioContext, archive: string, format: Format, rep: number): Promise<number> {
  const dest = join(ctx.tmp, `system-extract-${format}-${rep}`);
  await mkdir(dest);
  await run('sync');
  return timeOnce(() => (format === 'zip' ? run('unzip', ['-q', archive, '-d', dest]) : run('tar', ['xzf', archive, '-C', dest])));
}

async function firstRequest(ctx: ScenarioContext, archive: string, format: Format, path: string, rep: number): Promise<{ ms: number; before: number; peak: number }> {
  const dataDir = join(ctx.tmp, `cold-data-${format}-${rep}`);
  await mkdir(join(dataDir, 'store'), { recursive: true });
  await copyFile(archive, join(dataDir, 'store', `cold.${format}`));
  const sup = await launchSupervisor({ tmp: ctx.tmp, dataDir, name: `cold-${format}` });
  const th = new JsonClient(sup.url);
  try {
    // Warm the supervisor (pool threads, archive code) on another project: this measures a project's cold
    // start on a running service, not the service's own start.
    await uploadFiles(th, 'warm', { 'README.md': 'warm\n' }, ctx.tmp, format);
    await th.post('/file/read', { project_id: 'warm', path: 'README.md' });
    await run('sync');
    const before = sup.memory().rss;
    sup.resetPeak();
    const sampler = new RssSampler(sup.pid).start();
    const ms = await timeOnce(async () => {
      const r = await th.post('/file/read', { project_id: 'cold', path });
      if (typeof r.body.content !== 'string' || r.body.content.length === 0) throw new Error('first read returned no content');
    });
    const peak = Math.max(sup.memory().peak, sampler.stop().maxRss);
    return { ms, before, peak };
  } finally {
    th.close();
    await sup.stop();
  }
}
