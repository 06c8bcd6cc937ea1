import { execFileSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { localStore, startServer, storedPaths, type TestServer } from './helpers/harness.js';

describe('project tools: create, save, delete', () => {
  let s: TestServer;
  const stored = async (): Promise<string[]> => (await readdir(join(s.dataDir, 'store'))).filter((n) => !n.startsWith('.')).sort();
  /** What names projects in the store: manifests and archives (layer data in layers/ stays until collection). */
  const projectsStored = async (): Promise<string[]> => (await stored()).filter((n) => n !== 'layers');
  const post = (path: string, body: unknown = {}) => s.api(path, body);
  const del = (path: string) => s.api(path, undefined, { method: 'DELETE' });

  beforeEach(async () => {
    s = await startServer();
  });
  afterEach(async () => s?.close());

  it('creates an empty project, stored and cached, and refuses to create it twice', async () => {
    const r = await post('/projects/fresh');
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    expect(r.body).to.include({ project_id: 'fresh', format: 'layers', cached: true, dirty: false });
    expect(await readdir(join(s.dataDir, 'projects', 'fresh'))).to.deep.equal([]);
    expect(await projectsStored()).to.deep.equal(['fresh.layers.json']);
    expect(await storedPaths(await localStore(join(s.dataDir, 'store')), 'fresh')).to.deep.equal([]);
    const w = await s.api('/file/write', { project_id: 'fresh', path: 'a.txt', content: 'A\n' });
    expect(w.status).to.equal(200);
    const again = await post('/projects/fresh', { git_init: true });
    expect(again.status).to.equal(409);
    expect(again.body.error.code).to.equal('project_exists');
    expect(again.body.error.message).to.include('pick another project_id');
    expect((await s.api('/file/read', { project_id: 'fresh', path: 'a.txt' })).body.content).to.equal('A\n');
  });

  it('with git_init makes a repository git itself accepts, on branch main', async () => {
    const r = await post('/projects/repo', { git_init: true });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    const root = join(s.dataDir, 'projects', 'repo');
    expect(await readdir(root)).to.deep.equal(['.git']);
    const git = (...args: string[]) => execFileSync('git', ['-c', `safe.directory=${root}`, '-C', root, ...args], { encoding: 'utf8' }).trim();
    expect(git('rev-parse', '--git-dir')).to.equal('.git');
    expect(git('symbolic-ref', 'HEAD')).to.equal('refs/heads/main');
    expect(git('status', '--porcelain')).to.equal('');
    // It travels with the project: evicted and brought back from the store, it is still a repository.
    expect((await del('/projects/repo/cache')).body.evicted).to.equal(true);
    const ls = await s.api('/file/list', { project_id: 'repo', path: '.git' });
    expect(ls.status).to.equal(200);
    expect(git('rev-parse', '--git-dir')).to.equal('.git');
  });

  it('saves through the tool route, as the former route did', async () => {
    await post('/projects/sv');
    await s.api('/file/write', { project_id: 'sv', path: 'x.txt', content: 'x' });
    expect((await s.api('/projects/sv')).body.dirty).to.equal(true);
    const r = await post('/projects/sv/save');
    expect(r.status).to.equal(200);
    expect(r.body).to.include({ project_id: 'sv', saved: true, dirty: false });
    const list = await s.api('/projects');
    expect(list.body.projects.map((p: { project_id: string }) => p.project_id)).to.deep.equal(['sv']);
  });

  it('refuses to delete a project with unsaved changes unless forced, then deletes store archive and copy', async () => {
    await s.putProject('u', { 'keep.txt': 'v1\n' });
    await s.api('/file/write', { project_id: 'u', path: 'keep.txt', content: 'v2\n' });
    const refused = await del('/projects/u');
    expect(refused.status).to.equal(409);
    expect(refused.body.error.code).to.equal('project_busy');
    expect(refused.body.error.message).to.include('unsaved changes').and.include('/projects/u/save').and.include('force=true');
    // Nothing was lost: the copy still serves, dirty.
    expect((await s.api('/file/read', { project_id: 'u', path: 'keep.txt' })).body.content).to.equal('v2\n');
    expect((await s.api('/projects/u')).body.dirty).to.equal(true);
    const bad = await del('/projects/u?force=yes');
    expect(bad.status).to.equal(400);
    const forced = await del('/projects/u?force=true');
    expect(forced.status, JSON.stringify(forced.body)).to.equal(200);
    expect(forced.body).to.deep.equal({ project_id: 'u', archive_deleted: true, copy_discarded: true, unsaved_discarded: true });
    expect(await projectsStored()).to.deep.equal([]);
    expect(await readdir(join(s.dataDir, 'projects'))).to.deep.equal([]);
    expect((await s.api('/projects/u')).status).to.equal(404);
    expect((await s.api('/file/read', { project_id: 'u', path: 'keep.txt' })).status).to.equal(404);
  });

  it('deletes a clean project without force', async () => {
    await s.putProject('c', { 'a.txt': 'a' });
    const r = await del('/projects/c');
    expect(r.status).to.equal(200);
    expect(r.body).to.include({ archive_deleted: true, copy_discarded: true, unsaved_discarded: false });
    expect(await projectsStored()).to.deep.equal([]);
  });

  it('refuses to delete a project with a running command unless forced, which cancels it', async () => {
    await s.putProject('busy', { 'a.txt': 'a' });
    const started = await s.api('/execute', { project_id: 'busy', command: 'sleep 60', background: true });
    expect(started.status).to.equal(200);
    const jobId = started.body.job_id as string;
    const refused = await del('/projects/busy');
    expect(refused.status).to.equal(409);
    expect(refused.body.error.code).to.equal('project_busy');
    expect(refused.body.error.message).to.include('job_cancel').and.include('force=true');
    expect((await s.api(`/jobs/${jobId}?wait_s=0`, undefined, { method: 'GET' })).body.status).to.be.oneOf(['queued', 'running']);
    const forced = await del('/projects/busy?force=true');
    expect(forced.status, JSON.stringify(forced.body)).to.equal(200);
    expect(forced.body.archive_deleted).to.equal(true);
    expect((await s.api(`/jobs/${jobId}?wait_s=0`, undefined, { method: 'GET' })).body.status).to.equal('cancelled');
    expect((await s.api('/projects/busy')).status).to.equal(404);
  });

  it('answers 404 for deleting a project that does not exist', async () => {
    const r = await del('/projects/nobody');
    expect(r.status).to.equal(404);
    expect(r.body.error.code).to.equal('project_not_found');
  });

  const hostile = ['..', '.hidden', '-bad', 'a'.repeat(200), 'проект', 'a b', 'x.conflict-2026', encodeURIComponent('../etc')];
  for (const id of hostile) {
    it(`refuses the project id ${JSON.stringify(id.length > 20 ? `${id.slice(0, 20)}…` : id)} with 400 on create, show, save and delete`, async () => {
      const path = `/projects/${encodeURIComponent(id)}`;
      for (const r of [await post(path), await s.api(path, undefined, { method: 'GET' }), await post(`${path}/save`), await del(path)]) {
        expect(r.status, JSON.stringify(r.body)).to.be.oneOf([400, 404]);
        if (r.status === 404)
          expect(r.body.error.code).to.equal('not_found'); // ".." collapses to another path, which no route serves
        else expect(r.body.error.code).to.equal('invalid_project_id');
      }
      expect(await stored()).to.deep.equal([]);
    });
  }
});
