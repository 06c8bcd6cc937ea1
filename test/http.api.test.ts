import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';

describe('HTTP front', () => {
  describe('without a token', () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ http: { maxBodyBytes: 4096 } });
      await s.putProject('h', { 'a.txt': 'a\n' });
    });
    after(async () => s?.close());

    it('GET /health reports status, uptime, queue, pool and jobs', async () => {
      const r = await s.api('/health');
      expect(r.status).to.equal(200);
      expect(r.body.status).to.equal('ok');
      expect(r.body.uptime_s).to.be.a('number');
      expect(r.body.queue).to.deep.equal({ backend: 'memory', depth: 0 });
      expect(r.body.role).to.equal('all');
      expect(r.body.node).to.match(/-\d+$/);
      expect(r.body.pool.threads).to.be.a('number').greaterThan(0);
      expect(r.body.pool.busy).to.equal(0);
      expect(r.body.jobs).to.deep.equal({ running: 0, by_type: {} });
    });

    it('returns and honours X-Request-Id', async () => {
      const r = await s.api('/health', undefined, { headers: { 'x-request-id': 'trace-123' } });
      expect(r.headers.get('x-request-id')).to.equal('trace-123');
      const gen = await s.api('/health');
      expect(gen.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
    });

    it('answers malformed JSON with 400 invalid_json', async () => {
      const r = await s.api('/file/read', '{"project_id": "h", ', {});
      expect(r.status).to.equal(400);
      expect(r.body.error.code).to.equal('invalid_json');
    });

    it('answers a body over http.maxBodyBytes with 413', async () => {
      const r = await s.api('/file/write', { project_id: 'h', path: 'big.txt', content: 'x'.repeat(10_000) });
      expect(r.status).to.equal(413);
      expect(r.body.error.code).to.equal('payload_too_large');
      expect((await s.api('/file/read', { project_id: 'h', path: 'big.txt' })).status).to.equal(404);
    });

    it('answers a missing body, an array body and wrong types with 400 naming the field', async () => {
      const none = await s.api('/file/read', undefined, { method: 'POST' });
      expect(none.status).to.equal(400);
      expect(none.body.error.message).to.include('project_id');
      const arr = await s.api('/file/read', [1, 2]);
      expect(arr.status).to.equal(400);
      const wrong = await s.api('/file/read', { project_id: 'h', path: 7 });
      expect(wrong.status).to.equal(400);
      expect(wrong.body.error.message).to.include('path');
      const missing = await s.api('/search', { project_id: 'h' });
      expect(missing.body.error.message).to.include('pattern');
    });

    it('rejects unknown fields with 400, listing the allowed ones', async () => {
      const r = await s.api('/file/read', { project_id: 'h', path: 'a.txt', encoding: 'latin1' });
      expect(r.status).to.equal(400);
      expect(r.body.error.code).to.equal('unknown_field');
      expect(r.body.error.fields).to.deep.equal(['encoding']);
      expect(r.body.error.message).to.include('allowed fields: project_id, path, start_line, end_line');
    });

    it('answers unknown routes with a JSON 404', async () => {
      const r = await s.api('/nope');
      expect(r.status).to.equal(404);
      expect(r.body.error.code).to.equal('not_found');
    });
  });

  describe('with a token', () => {
    let s: TestServer;
    const token = 'test-token-0123456789abcdef';
    before(async () => {
      s = await startServer({ token });
    });
    after(async () => s?.close());

    it('requires the bearer token on every route but /health', async () => {
      expect((await s.api('/health', undefined, { token: 'wrong' })).status).to.equal(200);
      for (const [path, body] of [
        ['/projects', undefined],
        ['/file/read', { project_id: 'x', path: 'a' }],
        ['/execute', { project_id: 'x', command: 'true' }],
      ] as const) {
        const r = await s.api(path, body, { token: 'wrong-token-wrong-token' });
        expect(r.status, path).to.equal(401);
        expect(r.body.error.code).to.equal('unauthorized');
      }
      expect((await s.api('/projects')).status).to.equal(200);
    });
  });

  describe('queue limit', () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ queue: { maxDepth: 2 }, commands: { maxConcurrent: 1 } });
      await s.putProject('q', { 'a.txt': 'a\n' });
    });
    after(async () => s?.close({ force: true }));

    it('answers 503 queue_full with Retry-After once queue.maxDepth jobs are outstanding', async () => {
      const slow = [1, 2].map(() => s.api('/execute', { project_id: 'q', command: 'sleep 1' }));
      await new Promise((r) => setTimeout(r, 200));
      const r = await s.api('/file/read', { project_id: 'q', path: 'a.txt' });
      expect(r.status).to.equal(503);
      expect(r.body.error.code).to.equal('queue_full');
      expect(r.headers.get('retry-after')).to.equal('1');
      const done = await Promise.all(slow);
      expect(done.map((d) => d.body.exit_code)).to.deep.equal([0, 0]);
      expect((await s.api('/file/read', { project_id: 'q', path: 'a.txt' })).status).to.equal(200);
    });
  });
});
