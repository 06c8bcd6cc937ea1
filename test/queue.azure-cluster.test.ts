/**
 * Scale-out on Azure Queue and Blob Storage (Azurite) with real processes: one api and two workers. A project's
 * jobs all land on the one worker holding its lease, projects spread over both workers, a worker killed with
 * SIGKILL mid-job costs a retried read nothing and a command a clear `worker_lost`, its project is taken over from
 * its last saved state, and an API process killed while its requests wait leaves their results readable through
 * GET /jobs/:id on another.
 */

import { rm } from 'node:fs/promises';
import type { ContainerClient } from '@azure/storage-blob';
import { expect } from 'chai';
import { type Azurite, containerClient, startAzurite, uniqueContainerName } from './helpers/azurite.js';
import { type ChildServer, startChild } from './helpers/child-server.js';
import { authHeaders, buildArchive } from './helpers/harness.js';

interface Reply {
  status: number;
  body: any;
  worker: string | null;
}

/** The token of each server by its url, read from where it put it. */
const tokens = new Map<string, string | null>();

async function call(base: string, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(base + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...authHeaders(tokens.get(base) ?? null) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep the text for the assertion message
  }
  return { status: res.status, body: parsed, worker: res.headers.get('x-toolhost-worker') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Azure queue scale-out (Azurite, 1 api + 2 worker processes)', function () {
  this.timeout(240_000);
  let azurite: Azurite;
  let prefix: string;
  let projects: ContainerClient;
  const children: ChildServer[] = [];
  let api: ChildServer;
  const workers: Record<string, ChildServer> = {};

  function config(role: string, nodeId: string): Record<string, unknown> {
    return {
      role,
      nodeId,
      logLevel: 'info',
      store: { backend: 'azure', azure: { connectionString: azurite.connectionString, container: `${prefix}-projects` } },
      queue: { backend: 'azure', azure: { connectionString: azurite.connectionString, prefix, visibilityS: 6, leaseS: 15 } },
      pool: { maxThreads: 2 },
      commands: { threads: 1, sandbox: 'none' },
      // Saved every 1.2 s while dirty: what a dead worker can lose is bounded by it.
      cache: { janitorIntervalS: 1, autosaveMinutes: 0.02 },
      shutdown: { graceS: 1 },
    };
  }

  async function start(role: string, nodeId: string): Promise<ChildServer> {
    const child = await startChild(config(role, nodeId), { TOOLHOST_TEST_FAULTS: JSON.stringify({ slowPath: 'slow.txt', slowMs: 3_000 }) });
    children.push(child);
    tokens.set(child.url, child.token);
    return child;
  }

  async function upload(id: string, files: Record<string, string>): Promise<void> {
    const archive = await buildArchive(files);
    await projects.getBlockBlobClient(`${id}.tar.gz`).upload(archive, archive.length);
  }

  async function leaseOwner(id: string): Promise<{ state: string | undefined; owner: string | undefined }> {
    const p = await containerClient(azurite, `${prefix}-state`).getBlockBlobClient(`leases/${id}`).getProperties();
    return { state: p.leaseState, owner: p.metadata?.owner };
  }

  before(async () => {
    azurite = await startAzurite();
    prefix = uniqueContainerName('tc').slice(0, 16);
    projects = containerClient(azurite, `${prefix}-projects`);
    await projects.create();
    for (let i = 0; i < 12; i++) await upload(`p${i}`, { 'a.txt': `project ${i}\n`, 'slow.txt': 'slow\n' });
    [api, workers.w1, workers.w2] = await Promise.all([start('api', 'api1'), start('worker', 'w1'), start('worker', 'w2')]);
  });

  after(async () => {
    for (const c of children) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await Promise.all(children.map((c) => rm(c.dataDir, { recursive: true, force: true })));
    await azurite?.stop();
  });

  it('serves on each role only what that role runs, with a 409 naming where to go', async () => {
    const health = await call(workers.w1!.url, '/health');
    expect([health.body.role, health.body.node, health.body.queue.backend]).to.deep.equal(['worker', 'w1', 'azure']);
    const onWorker = await call(workers.w1!.url, '/file/read', { project_id: 'p0', path: 'a.txt' });
    expect(onWorker.status).to.equal(409);
    expect(onWorker.body.error.code).to.equal('not_on_this_role');
    expect(onWorker.body.error.message).to.contain('role "api"');
    const put = await fetch(`${api.url}/projects/new-one`, {
      method: 'PUT',
      headers: authHeaders(api.token),
      body: new Uint8Array(await buildArchive({ 'x.txt': 'x' })),
    });
    expect(put.status).to.equal(409);
    expect(((await put.json()) as { error: { code: string } }).error.code).to.equal('not_on_this_role');
    expect(await projects.getBlockBlobClient('new-one.tar.gz').exists()).to.equal(false);
  });

  it("runs a project's edits and commands on its one owner, and spreads projects over both workers", async () => {
    const seen: string[] = [];
    const steps: [string, unknown][] = [
      ['/file/write', { project_id: 'p0', path: 'b.txt', content: 'one\n' }],
      ['/file/edit', { project_id: 'p0', path: 'b.txt', old_str: 'one', new_str: 'two' }],
      ['/execute', { project_id: 'p0', command: 'cat b.txt >> c.txt && cat c.txt' }],
      ['/file/read', { project_id: 'p0', path: 'c.txt' }],
    ];
    for (const [path, body] of steps) {
      const r = await call(api.url, path, body);
      expect(r.status, `${path}: ${JSON.stringify(r.body)}`).to.equal(200);
      seen.push(r.worker!);
    }
    expect(new Set(seen).size, `workers: ${seen.join(', ')}`).to.equal(1);
    expect(['w1', 'w2']).to.include(seen[0]);
    expect(await leaseOwner('p0')).to.deep.equal({ state: 'leased', owner: seen[0] });

    // Twelve projects at once: each stays on one worker, both workers get some.
    const rounds = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const first = await call(api.url, '/file/read', { project_id: `p${i}`, path: 'a.txt' });
        const second = await call(api.url, '/file/read', { project_id: `p${i}`, path: 'a.txt' });
        expect(first.status, JSON.stringify(first.body)).to.equal(200);
        expect(first.body.content).to.equal(`project ${i}\n`);
        expect(second.worker, `p${i}`).to.equal(first.worker);
        return first.worker!;
      }),
    );
    expect(new Set(rounds), rounds.join(',')).to.have.keys('w1', 'w2');
    // Never both: exactly one worker has each project cached, and it is the lease holder.
    for (let i = 0; i < 12; i++) {
      const cached = await Promise.all(Object.entries(workers).map(async ([id, w]) => [id, (await call(w.url, `/projects/p${i}`)).body.cached] as const));
      const holders = cached.filter(([, c]) => c).map(([id]) => id);
      expect(holders, `p${i}`).to.deep.equal([rounds[i]]);
      expect((await leaseOwner(`p${i}`)).owner).to.equal(rounds[i]);
    }
  });

  it('after kill -9 of a worker mid-job: a read is retried elsewhere, a command reports worker_lost, the project is taken over', async () => {
    const victimId = (await call(api.url, '/file/read', { project_id: 'p0', path: 'c.txt' })).worker!;
    const survivorId = victimId === 'w1' ? 'w2' : 'w1';
    const victim = workers[victimId]!;
    // The last saved state: written, then autosaved (the store's archive then holds it).
    expect((await call(api.url, '/file/write', { project_id: 'p0', path: 'saved.txt', content: 'kept\n' })).status).to.equal(200);
    for (let i = 0; i < 50 && (await call(victim.url, '/projects/p0')).body.dirty; i++) await sleep(200);
    expect((await call(victim.url, '/projects/p0')).body.dirty, 'autosaved').to.equal(false);

    const read = call(api.url, '/file/read', { project_id: 'p0', path: 'slow.txt' });
    const command = call(api.url, '/execute', { project_id: 'p0', command: 'sleep 60; echo never', wait_s: 120 });
    await sleep(1_500); // both taken and running on the victim
    victim.child.kill('SIGKILL');
    await victim.exited;

    const [r, c] = await Promise.all([read, command]);
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body.content).to.equal('slow\n');
    expect(r.worker).to.equal(survivorId);
    expect(c.status, JSON.stringify(c.body)).to.equal(503);
    expect(c.body.error.code).to.equal('worker_lost');
    expect(c.body.error.job_id).to.be.a('string');

    const after = await call(api.url, '/file/read', { project_id: 'p0', path: 'saved.txt' });
    expect(after.status, JSON.stringify(after.body)).to.equal(200);
    expect(after.body.content).to.equal('kept\n');
    expect(after.worker).to.equal(survivorId);
    expect(await leaseOwner('p0')).to.deep.equal({ state: 'leased', owner: survivorId });
  });

  it('an API process killed while its requests wait: the jobs complete and another API reads their results', async () => {
    const early = await call(api.url, '/execute', { project_id: 'p1', command: 'sleep 2; echo first', wait_s: 0 });
    // An internal error's body names only its request id: show what the API logged under it.
    const logged = api.logs.filter((l) => l.msg === 'internal error').map((l) => JSON.stringify(l));
    expect(early.status, `${JSON.stringify(early.body)} ${logged.join(' ')}`).to.equal(200);
    const waiting = call(api.url, '/execute', { project_id: 'p1', command: 'sleep 2; echo second', wait_s: 60 }).catch(() => null);
    await sleep(800);
    const listed = await call(api.url, '/jobs?project_id=p1');
    const second = (listed.body.jobs as { job_id: string; command: string }[]).find((j) => j.command.includes('second'));
    expect(second, JSON.stringify(listed.body)).to.not.equal(undefined);
    api.child.kill('SIGKILL');
    await api.exited;
    expect(await waiting).to.equal(null);

    const api2 = await start('api', 'api2');
    for (const id of [early.body.job_id as string, second!.job_id]) {
      let view = (await call(api2.url, `/jobs/${id}?wait_s=20`)).body;
      for (let i = 0; i < 10 && (view.status === 'queued' || view.status === 'running'); i++) view = (await call(api2.url, `/jobs/${id}?wait_s=10`)).body;
      expect(view.status, JSON.stringify(view)).to.equal('completed');
      expect(view.stdout).to.match(/first|second/);
    }
  });
});
