/**
 * /search over a hostile project: the project's files are written by commands that run at the same time as the
 * searches (a folder swapped for a symlink out of the project, FIFOs, a 20 MB line), and the search runs as root.
 * Real server, real rg, real bubblewrap when installed; files are made with /execute as an agent would.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'chai';
import { resolveSandbox } from '../lib/process/sandbox.js';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';
import { skipBecause } from './helpers/jobs.js';

/** Runs `command` in project `id` and fails the test unless it exits 0. */
async function sh(s: TestServer, id: string, command: string): Promise<void> {
  const r = await s.api('/execute', { project_id: id, command, wait_s: 60 });
  expect(r.status, JSON.stringify(r.body)).to.equal(200);
  expect(r.body.exit_code, `${command}: ${r.body.stderr}`).to.equal(0);
}

/** A command writing a file of one 20 MB line with "needle" in its middle. */
const HUGE_LINE = (name: string): string =>
  `{ head -c 10000000 /dev/zero | tr '\\0' x; printf needle; head -c 10000000 /dev/zero | tr '\\0' y; echo; } > ${name}`;

const settingOf = (sandbox: 'bwrap' | 'none'): 'auto' | 'none' => (sandbox === 'bwrap' ? 'auto' : 'none');

for (const sandbox of ['bwrap', 'none'] as const) {
  describe(`search: hostile project (sandbox ${sandbox})`, function () {
    this.timeout(120_000);
    let s: TestServer;

    before(async function () {
      if (sandbox === 'bwrap' && resolveSandbox('auto').mode !== 'bwrap') skipBecause(this, 'bubblewrap is not installed');
      s = await startServer({ commands: { sandbox: settingOf(sandbox) } });
    });
    after(async () => {
      await s?.close();
    });

    it('counts a 20 MB line instead of returning it, returns the ordinary match, and says it is incomplete', async () => {
      expect((await s.putProject('long', { 'ok.txt': 'an ordinary needle\n' })).status).to.equal(201);
      await sh(s, 'long', HUGE_LINE('big.txt'));
      const r = await s.api('/search', { project_id: 'long', pattern: 'needle' });
      expect(r.status, JSON.stringify(r.body).slice(0, 500)).to.equal(200);
      expect(r.body.matches.map((m: { path: string; text: string }) => `${m.path}:${m.text}`)).to.deep.equal(['ok.txt:an ordinary needle']);
      expect(r.body).to.deep.include({
        truncated: false,
        complete: false,
        incomplete_reasons: ['long_lines'],
        skipped_long_lines: 1,
        long_lines: [{ path: 'big.txt', line: 1 }],
      });
      expect(r.body.note).to.include('search.maxLineBytes');
    });

    it('passes over FIFOs in the tree, and refuses a FIFO named as path, without blocking', async () => {
      expect((await s.putProject('fifo', { 'a.txt': 'needle\n', 'sub/b.txt': 'needle\n' })).status).to.equal(201);
      await sh(s, 'fifo', 'mkfifo pipe sub/pipe && ln -s pipe link-to-pipe');
      const all = await s.api('/search', { project_id: 'fifo', pattern: 'needle' });
      expect(all.status).to.equal(200);
      expect(all.body).to.deep.include({ complete: true, truncated: false });
      expect(all.body.matches.map((m: { path: string }) => m.path)).to.deep.equal(['a.txt', 'sub/b.txt']);
      for (const path of ['pipe', 'sub/pipe', 'link-to-pipe']) {
        const r = await s.api('/search', { project_id: 'fifo', pattern: 'needle', path });
        expect(r.status, path).to.equal(400);
        expect(r.body.error.code).to.equal('not_a_regular_file');
      }
    });

    it('never returns content from outside the project while a command swaps a folder for a symlink out of it', async function () {
      const outside = await tempDir('toolhost-outside-');
      const hex = randomBytes(16).toString('hex');
      const marker = `OUTSIDE-${hex}`;
      // Same name inside and out: rg lists d/m.txt while d is the folder and may open it after the swap.
      await writeFile(join(outside, 'm.txt'), `${marker}\n`);
      const id = 'race';
      expect((await s.putProject(id, { 'd/m.txt': 'inside\n', 'd/n.txt': 'inside\n', 'keep.txt': 'x\n' })).status).to.equal(201);
      await sh(s, id, `ln -s '${outside}' L`);
      // rename(2) in a tight loop, no fork per step: d is the folder, then missing, then the link, then missing...
      const swap = await s.api('/execute', {
        project_id: id,
        command: `exec perl -e 'while (1) { rename "d", "R"; rename "L", "d"; rename "d", "L"; rename "R", "d"; }'`,
        background: true,
        timeout_s: 300,
      });
      expect(swap.status, JSON.stringify(swap.body)).to.be.oneOf([200, 202]);
      const root = join(s.dataDir, 'projects', id);
      try {
        // The race is live: d is seen as a folder and as a symlink.
        const kinds = new Set<string>();
        for (let i = 0; i < 100_000 && kinds.size < 2; i++) {
          try {
            kinds.add(lstatSync(join(root, 'd')).isSymbolicLink() ? 'link' : 'dir');
          } catch {
            // between two renames
          }
        }
        expect([...kinds].sort()).to.deep.equal(['dir', 'link']);

        // The pattern matches the marker without containing it, so an error that quotes the request cannot
        // contain the marker either.
        const pattern = 'OUTSIDE-[0-9a-f]{32}';
        const outcomes = new Map<string, number>();
        await Promise.all(
          ['d', '.'].map(async (path) => {
            for (let i = 0; i < 150; i++) {
              const r = await s.api('/search', { project_id: id, pattern, regex: true, path });
              const text = JSON.stringify(r.body);
              expect(text, `search ${i} of "${path}" answered with content from outside the project`).not.to.include(hex);
              const what = r.status === 200 ? `200 complete:${r.body.complete}` : `${r.status} ${r.body.error?.code}`;
              // rg itself may die under the swap (exit 101, its panic, when a file it listed is gone): the answer then
              // says the search failed, which is honest; what matters is that nothing from outside comes back.
              expect(what, text).to.be.oneOf([
                '200 complete:true',
                '200 complete:false',
                '400 path_outside_project',
                '404 file_not_found',
                '422 search_failed',
              ]);
              const key = `${path} -> ${what}`;
              outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
            }
          }),
        );
        // Some searches of d must have got past the check, or the race was never run.
        expect(
          [...outcomes.keys()].some((k) => k.startsWith('d -> 200')),
          JSON.stringify([...outcomes]),
        ).to.equal(true);
        this.test!.title += ` (${[...outcomes].map(([k, n]) => `${k}: ${n}`).join(', ')})`;
      } finally {
        await s.api(`/jobs/${swap.body.job_id}`, undefined, { method: 'DELETE' });
        await rm(outside, { recursive: true, force: true });
      }
    });
  });

  describe(`search: rg out of memory (sandbox ${sandbox})`, function () {
    this.timeout(120_000);
    let s: TestServer;

    before(async function () {
      if (sandbox === 'bwrap' && resolveSandbox('auto').mode !== 'bwrap') skipBecause(this, 'bubblewrap is not installed');
      // Enough for rg on ordinary files, not for one 20 MB line (rg holds a whole line to search it).
      s = await startServer({ commands: { sandbox: settingOf(sandbox) }, search: { maxMemoryBytes: 64 * 2 ** 20 } });
      expect((await s.putProject('mem', { 'a.txt': 'needle\n' })).status).to.equal(201);
      // In a folder: rg maps a file named as path instead of reading it, which needs no heap for the line.
      await sh(s, 'mem', `mkdir huge && ${HUGE_LINE('huge/b.txt')}`);
    });
    after(async () => {
      await s?.close();
    });

    it('answers with what it found and complete: false when rg dies partway', async () => {
      const r = await s.api('/search', { project_id: 'mem', pattern: 'needle' });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      expect(r.body.matches.map((m: { path: string }) => m.path)).to.deep.equal(['a.txt']);
      expect(r.body).to.deep.include({ complete: false, incomplete_reasons: ['search_aborted'] });
      expect(r.body.note).to.match(/ran out of memory \(search\.maxMemoryBytes is 67108864 bytes\)/);
    });

    it('fails with search_failed and advice when rg dies before finding anything', async () => {
      const r = await s.api('/search', { project_id: 'mem', pattern: 'needle', path: 'huge' });
      expect(r.status, JSON.stringify(r.body)).to.equal(422);
      expect(r.body.error.code).to.equal('search_failed');
      expect(r.body.error.message).to.match(/search\.maxMemoryBytes/);
      expect(r.body.error.message).to.match(/glob/);
    });
  });
}
