/**
 * start: how long `npm start`'s entry (scripts/start.mjs, serving the build `npm ci` made) takes to answer
 * /health, against a bare node:http server started the same way; and how long a graceful stop takes with a
 * background command running (a dev server), against the same stop with nothing running (issue #17).
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stopChild, track } from '../lib/children.js';
import { median } from '../lib/stats.js';
import { REPO_ROOT } from '../lib/supervisor.js';
import type { Scenario } from '../lib/types.js';

const BARE =
  "require('http').createServer((q, s) => s.end('{}')).listen(0, '127.0.0.1', function () { console.log(JSON.stringify({ url: 'http://127.0.0.1:' + this.address().port })) })";

/** Spawns `args`, waits for its URL (a log line with "url") and for GET /health to answer 200; ms from spawn. */
async function timeToHealth(args: string[], env: NodeJS.ProcessEnv, health: string): Promise<{ ms: number; stop(): Promise<number | null>; url: string }> {
  const started = performance.now();
  const child = track(spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'ignore'] }));
  let text = '';
  child.stdout!.on('data', (b: Buffer) => (text += b.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(text);
    if (m) {
      const r = await fetch(`${m[1]}${health}`).catch(() => null);
      if (r?.status === 200) {
        await r.arrayBuffer();
        return { ms: performance.now() - started, stop: () => stopChild(child, 60_000), url: m[1]! };
      }
    }
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no /health answer within 60 s; output: ${text.slice(-1500)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const start: Scenario = {
  name: 'start',
  description:
    'Spawn of `node scripts/start.mjs` (what `npm start` runs on an installed clone) until GET /health answers 200, against a bare node:http server spawned the same way; then SIGTERM to exit with one background command running (`sleep 600`) against with nothing running, shutdown.graceS 30.',
  async run(ctx) {
    const n = ctx.smoke ? 1 : 5;
    const times: number[] = [];
    const bare: number[] = [];
    const stops: { idle: number[]; busy: number[] } = { idle: [], busy: [] };
    for (let i = 0; i < n; i++) {
      const dataDir = join(ctx.tmp, `data-${i}`);
      await mkdir(dataDir, { recursive: true });
      const configFile = join(ctx.tmp, `config-${i}.json`);
      await writeFile(configFile, JSON.stringify({ shutdown: { graceS: 30 }, commands: { killGraceS: 1 } }));
      const env = { ...process.env, PORT: '0', TOOLHOST_DATA_DIR: dataDir, TOOLHOST_CONFIG: configFile, TOOLHOST_TOKEN: 'bench-token-of-sixteen-chars' };
      const th = await timeToHealth(['scripts/start.mjs'], env, '/health');
      times.push(th.ms);
      const b = await timeToHealth(['-e', BARE], process.env, '/');
      bare.push(b.ms);
      await b.stop();
      // A dev server in the background, then a graceful stop: it must not wait out shutdown.graceS.
      const headers = { authorization: 'Bearer bench-token-of-sixteen-chars', 'content-type': 'application/json' };
      const busy = i % 2 === 0;
      if (busy) {
        await fetch(`${th.url}/projects/p`, { method: 'POST', headers, body: '{}' }).then((r) => r.arrayBuffer());
        await fetch(`${th.url}/execute`, { method: 'POST', headers, body: JSON.stringify({ project_id: 'p', command: 'sleep 600', background: true }) }).then(
          (r) => r.arrayBuffer(),
        );
      }
      const t0 = performance.now();
      await th.stop();
      (busy ? stops.busy : stops.idle).push(performance.now() - t0);
      ctx.log(`start ${th.ms.toFixed(0)} ms (bare ${b.ms.toFixed(0)} ms), stop ${busy ? 'with' : 'without'} a background command`);
    }
    const figures = [
      {
        figure: '`npm start` entry to /health 200 (vs a bare node:http server)',
        unit: 'ms',
        value: median(times),
        baseline: median(bare),
        note: `median of ${n}; the build is the one npm ci made (no compile at start)`,
      },
    ];
    if (stops.busy.length > 0 && stops.idle.length > 0) {
      figures.push({
        figure: 'graceful stop with a background command running (vs nothing running)',
        unit: 'ms',
        value: median(stops.busy),
        baseline: median(stops.idle),
        note: 'shutdown.graceS 30, commands.killGraceS 1: the background command is ended at once, not waited for',
      });
    }
    return figures;
  },
};
