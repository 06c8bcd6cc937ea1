/** read-overhead: the cost toolhost adds to reading a small file. */
import { join } from 'node:path';
import { launchBareServer } from '../lib/bare-server.js';
import { sourceFile } from '../lib/dataset.js';
import { JsonClient } from '../lib/http.js';
import { pairPercentile, timeAlternately } from '../lib/pair.js';
import { uploadFiles, writeFiles } from '../lib/project.js';
import { launchSupervisor } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

export const readOverhead: Scenario = {
  name: 'read-overhead',
  description:
    'POST /file/read of a 4 KiB text file, one request at a time on a keep-alive connection, vs a bare Node HTTP server that answers with fs.promises.readFile of the same file (raw read + keep-alive round trip).',
  async run(ctx) {
    const n = ctx.smoke ? 20 : 500;
    const warmup = ctx.smoke ? 5 : 50;
    const content = sourceFile(2, 4096);
    const local = join(ctx.tmp, 'local');
    await writeFiles(local, { 'file4k.ts': content });
    const sup = await launchSupervisor({ tmp: ctx.tmp });
    const bare = await launchBareServer();
    const th = new JsonClient(sup);
    const bc = new JsonClient(bare.url);
    try {
      await uploadFiles(th, 'read', { 'src/file4k.ts': content }, ctx.tmp);
      ctx.log(`${n} reads each side`);
      const s = await timeAlternately(
        n,
        warmup,
        async () => {
          const r = await th.post('/file/read', { project_id: 'read', path: 'src/file4k.ts' });
          if (r.body.content !== content) throw new Error('/file/read returned other content than the file');
        },
        async () => {
          const r = await bc.post('/read', { path: join(local, 'file4k.ts') });
          if (r.body.content !== content) throw new Error('bare read returned other content than the file');
        },
      );
      return [
        { figure: 'p50 latency', unit: 'ms', ...pairPercentile(s, 50), target: { of: 'ratio', op: '<=', limit: 1.5 } },
        { figure: 'p99 latency', unit: 'ms', ...pairPercentile(s, 99) },
      ];
    } finally {
      th.close();
      bc.close();
      await Promise.all([sup.stop(), bare.stop()]);
    }
  },
};
