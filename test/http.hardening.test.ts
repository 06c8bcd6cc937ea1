/**
 * The HTTP front against a hostile client or web page: the token required by default (generated into the data
 * dir, reused, overridable), the Authorization header parsed strictly but with a case-insensitive scheme, Host
 * checked against DNS rebinding, browser origins refused, non-JSON POSTs refused before anything runs, broken
 * compressed bodies answered with 4xx, a bare /health that says only its status, and 500s that name no path.
 */

import { access, chmod, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../config/load.js';
import { ToolhostError } from '../lib/errors.js';
import { TOOLS } from '../supervisor/http/tools.js';
import { startSupervisor } from '../supervisor/supervisor.js';
import { resolveToken } from '../supervisor/token.js';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';
import { captureLog } from './helpers/log-capture.js';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/**
 * One request with exactly the headers given (node:http: fetch will not send an arbitrary Host). `host` replaces
 * the Host header; null sends none at all.
 */
function raw(
  base: string,
  o: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer; host?: string | null },
): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.host) headers.host = o.host;
    if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
    const req = request(
      { hostname: url.hostname, port: url.port, method: o.method ?? 'GET', path: o.path, headers, setHost: o.host === undefined, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // keep the text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const bearer = (token: string | null): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

/** Proves a refused /execute ran nothing: no job knows the marker, and the file it would have made is absent. */
async function ranNothing(s: TestServer, project: string, marker: string): Promise<void> {
  const jobs = (await s.api(`/jobs?project_id=${project}`)).body.jobs as { command: string }[];
  expect(
    jobs.filter((j) => j.command.includes(marker)),
    'a job with the marker',
  ).to.deep.equal([]);
  const read = await s.api('/file/read', { project_id: project, path: marker });
  expect(read.status, 'the file the command would have made').to.equal(404);
  expect(
    await access(join(s.dataDir, 'projects', project, marker)).then(
      () => true,
      () => false,
    ),
  ).to.equal(false);
}

describe('HTTP hardening', () => {
  describe('the token, required by default', () => {
    let s: TestServer;
    before(async () => {
      s = await startServer({ http: { maxBodyBytes: 65_536 } });
      expect((await s.putProject('p', { 'a.txt': 'a\n' })).status).to.equal(201);
    });
    after(async () => s?.close());

    it('is generated into <dataDir>/token, mode 0600, and is what the server requires', async () => {
      const file = join(s.dataDir, 'token');
      expect((await stat(file)).mode & 0o777).to.equal(0o600);
      const token = (await readFile(file, 'utf8')).trim();
      expect(token).to.match(/^[A-Za-z0-9_-]{43}$/);
      expect(s.token).to.equal(token);
      expect((await s.api('/projects')).status).to.equal(200);
    });

    it('refuses every route but /health without it, and with every malformed or wrong Authorization', async () => {
      const routes: [string, string, unknown][] = [
        ...TOOLS.filter((t) => 'job' in t).map((t): [string, string, unknown] => [
          'POST',
          t.route.path,
          { project_id: 'p', path: 'a.txt', command: 'true', pattern: 'a' },
        ]),
        ['POST', '/mcp', { jsonrpc: '2.0', id: 1, method: 'tools/list' }],
        ['GET', '/projects', undefined],
        ['GET', '/projects/p', undefined],
        ['POST', '/projects/p/save', {}],
        ['DELETE', '/projects/p/cache', undefined],
        ['GET', '/jobs', undefined],
        ['GET', '/jobs/00000000-0000-4000-8000-000000000000', undefined],
        ['POST', '/jobs/00000000-0000-4000-8000-000000000000/input', { data: 'x' }],
        ['DELETE', '/jobs/00000000-0000-4000-8000-000000000000', undefined],
        ['GET', '/tools', undefined],
        ['GET', '/openapi.json', undefined],
        ['GET', '/metrics', undefined],
        ['POST', '/admin/reload', {}],
        ['GET', '/no-such-route', undefined],
      ];
      const token = s.token!;
      const bad: Record<string, string>[] = [
        {},
        { authorization: '' },
        { authorization: 'Bearer' },
        { authorization: 'Bearer ' },
        { authorization: token },
        { authorization: `Basic ${Buffer.from(`user:${token}`).toString('base64')}` },
        { authorization: `Token ${token}` },
        { authorization: `Bearer ${token}x` },
        { authorization: `Bearer ${token.slice(0, -1)}` },
        { authorization: `Bearer ${token.toUpperCase()}` },
        { authorization: `Bearer ${token} ${token}` },
        { authorization: `Bearer "${token}"` },
        { authorization: `Bearer wrong-token-of-the-same-length-as-the-real-one`.slice(0, token.length) },
        { 'x-api-key': token },
      ];
      for (const [method, path, body] of routes) {
        for (const headers of bad) {
          const r = await raw(s.url, {
            method,
            path: path + (method === 'GET' ? `?access_token=${token}` : ''),
            headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }) },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          expect(r.status, `${method} ${path} with ${JSON.stringify(headers)}`).to.equal(401);
          expect(r.body.error.code).to.equal('unauthorized');
          expect(r.body.error.message).to.include('Authorization: Bearer <token>');
          expect(r.headers['www-authenticate']).to.match(/^Bearer /);
          expect(JSON.stringify(r.body)).not.to.include(token);
        }
      }
      // The PUT of an archive without the token stored nothing.
      const put = await raw(s.url, {
        method: 'PUT',
        path: '/projects/sneaky',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from('x'),
      });
      expect(put.status).to.equal(401);
      expect((await s.api('/projects/sneaky')).status).to.equal(404);
    });

    it('accepts the scheme in any case and extra spaces, as RFC 7235 allows', async () => {
      for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
        for (const gap of [' ', '   ']) {
          const r = await raw(s.url, { path: '/projects', headers: { authorization: `${scheme}${gap}${s.token}` } });
          expect(r.status, JSON.stringify(`${scheme}${gap}`)).to.equal(200);
        }
      }
    });

    it('/health without a valid token says only its status; with it, the full report and the containment', async () => {
      for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: 'Basic Zm9vOmJhcg==' }] as Record<string, string>[]) {
        const r = await raw(s.url, { path: '/health', headers });
        expect(r.status).to.equal(200);
        expect(r.body).to.deep.equal({ status: 'ok' });
      }
      const full = await raw(s.url, { path: '/health', headers: { authorization: `bearer ${s.token}` } });
      expect(full.body.status).to.equal('ok');
      expect(full.body).to.include.keys('uptime_s', 'node', 'queue', 'pool', 'jobs', 'cache', 'containment');
      expect(full.body).not.to.have.property('sandbox');
      expect(full.body.containment).to.have.keys('sandbox', 'user', 'capabilities', 'network', 'process_limit', 'read_only', 'warnings');
      expect(full.body.containment.network).to.equal('off');
    });
  });

  describe('where the token comes from', () => {
    const dirs: string[] = [];
    const scratch = async (): Promise<string> => {
      const d = await tempDir('toolhost-token-');
      dirs.push(d);
      return d;
    };
    after(async () => {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    });

    it('a restart on the same data dir reuses the token; the start log names the file, never the token', async () => {
      const dataDir = await scratch();
      const captured = captureLog();
      const first = await startServer({ dataDir, logLevel: 'info' }, { log: captured.log });
      const token = first.token!;
      await first.sup.close();
      const listening = captured.lines.find((l) => l.msg === 'toolhost listening')!;
      expect(listening).to.include({ auth: 'token', token_file: join(dataDir, 'token') });
      expect(captured.text()).not.to.include(token);

      const second = await startServer({ dataDir });
      try {
        expect(second.token).to.equal(token);
        expect((await raw(second.url, { path: '/projects', headers: bearer(token) })).status).to.equal(200);
      } finally {
        await second.sup.close();
      }
    });

    it('starts racing on one empty data dir agree on one token, generated once', async () => {
      const dataDir = join(await scratch(), 'not', 'yet');
      const results = await Promise.all(Array.from({ length: 8 }, () => resolveToken({ auth: 'token', token: null, dataDir })));
      expect(new Set(results.map((r) => r.token)).size).to.equal(1);
      expect(results.filter((r) => r.source === 'generated')).to.have.length(1);
      expect((await readFile(join(dataDir, 'token'), 'utf8')).trim()).to.equal(results[0]!.token);
    });

    it('the token setting and TOOLHOST_TOKEN override the file, and no file is written', async () => {
      const byConfig = await startServer({ dataDir: await scratch(), token: 'configured-token-0123456789' });
      try {
        expect(byConfig.token).to.equal('configured-token-0123456789');
        expect((await raw(byConfig.url, { path: '/projects', headers: bearer('configured-token-0123456789') })).status).to.equal(200);
        expect(
          await access(join(byConfig.dataDir, 'token')).then(
            () => true,
            () => false,
          ),
        ).to.equal(false);
      } finally {
        await byConfig.sup.close();
      }

      const dataDir = await scratch();
      const sup = await startSupervisor(
        loadConfig({ overrides: { port: 0, dataDir, logLevel: 'silent' }, env: { TOOLHOST_TOKEN: 'env-token-0123456789abcdef' } }),
      );
      try {
        expect((await raw(sup.url, { path: '/projects', headers: bearer('env-token-0123456789abcdef') })).status).to.equal(200);
        expect((await raw(sup.url, { path: '/projects' })).status).to.equal(401);
        expect(
          await access(join(dataDir, 'token')).then(
            () => true,
            () => false,
          ),
        ).to.equal(false);
      } finally {
        await sup.close();
      }
    });

    it('refuses a token file that is a symlink, too short or not a file, and tightens one others could read', async () => {
      const outside = await scratch();
      await writeFile(join(outside, 'planted'), 'planted-token-0123456789abcdef\n');
      const cases: [string, (dataDir: string) => Promise<void>][] = [
        ['symlink', (d) => symlink(join(outside, 'planted'), join(d, 'token'))],
        ['short', (d) => writeFile(join(d, 'token'), 'short\n', { mode: 0o600 })],
        ['spaces', (d) => writeFile(join(d, 'token'), 'has spaces in it 0123456789\n', { mode: 0o600 })],
        ['folder', (d) => mkdir(join(d, 'token'))],
      ];
      for (const [what, plant] of cases) {
        const dataDir = await scratch();
        await plant(dataDir);
        const err = await startServer({ dataDir }).then(
          async (s) => {
            await s.sup.close();
            return undefined;
          },
          (e: unknown) => e,
        );
        expect(err, what).to.be.instanceOf(ToolhostError);
        expect((err as ToolhostError).code, what).to.equal('invalid_config');
        expect((err as Error).message, what).to.include(join(dataDir, 'token'));
      }

      const dataDir = await scratch();
      await writeFile(join(dataDir, 'token'), 'loose-token-0123456789abcdef\n');
      await chmod(join(dataDir, 'token'), 0o644);
      const captured = captureLog();
      const s = await startServer({ dataDir, logLevel: 'info' }, { log: captured.log });
      try {
        expect(s.token).to.equal('loose-token-0123456789abcdef');
        expect((await stat(join(dataDir, 'token'))).mode & 0o777).to.equal(0o600);
        expect(captured.lines.some((l) => l.level === 40 && String(l.msg).includes('readable by other users'))).to.equal(true);
      } finally {
        await s.sup.close();
      }
    });

    it('a reload keeps the resolved token, and does not report it as changed', async () => {
      const dir = await scratch();
      const file = join(dir, 'config.json');
      await writeFile(file, JSON.stringify({ commands: { maxConcurrent: 3 } }));
      const s = await startServer({ dataDir: join(dir, 'data') }, { configFile: file });
      try {
        await writeFile(file, JSON.stringify({ commands: { maxConcurrent: 5 } }));
        const r = await s.api('/admin/reload', undefined, { method: 'POST' });
        expect(r.status).to.equal(200);
        expect(r.body.applied).to.deep.equal(['commands.maxConcurrent']);
        expect(r.body.restart_required).to.deep.equal([]);
        expect((await raw(s.url, { path: '/projects', headers: bearer(s.token) })).status).to.equal(200);
        expect((await raw(s.url, { path: '/projects' })).status).to.equal(401);
        expect((await raw(s.url, { path: '/health' })).body).to.deep.equal({ status: 'ok' });
      } finally {
        await s.sup.close();
      }
    });

    it('auth "none" is refused beyond loopback, and on loopback needs no token (Host and Origin still checked)', async () => {
      const err = await startServer({ host: '0.0.0.0', auth: 'none' }).then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.include('auth: "none" is allowed only on a loopback host');

      const s = await startServer({ dataDir: await scratch(), auth: 'none' });
      try {
        expect(s.token).to.equal(null);
        expect(
          await access(join(s.dataDir, 'token')).then(
            () => true,
            () => false,
          ),
        ).to.equal(false);
        expect((await raw(s.url, { path: '/projects' })).status).to.equal(200);
        expect((await raw(s.url, { path: '/health' })).body).to.include.keys('containment', 'pool');
        expect((await raw(s.url, { path: '/projects', host: 'evil.example' })).status).to.equal(403);
        expect((await raw(s.url, { path: '/projects', headers: { origin: 'http://evil.example' } })).status).to.equal(403);
        const form = await raw(s.url, {
          method: 'POST',
          path: '/execute',
          headers: { 'content-type': 'text/plain' },
          body: '{"project_id":"p","command":"true"}',
        });
        expect(form.status).to.equal(415);
      } finally {
        await s.sup.close();
      }
    });
  });

  describe('requests a browser page or a rebinding name could make', () => {
    let s: TestServer;
    const allowedOrigin = 'https://console.example.com';
    before(async () => {
      s = await startServer({ http: { maxBodyBytes: 65_536, allowedHosts: ['Toolhost.Example'], allowedOrigins: [allowedOrigin] } });
      expect((await s.putProject('p', { 'a.txt': 'a\n' })).status).to.equal(201);
    });
    after(async () => s?.close());

    const exec = (marker: string) => JSON.stringify({ project_id: 'p', command: `touch ${marker}` });

    it('refuses POST bodies that are not JSON with 415, before anything runs', async () => {
      const port = new URL(s.url).port;
      const boundary = 'XyZ';
      const multipart = `--${boundary}\r\nContent-Disposition: form-data; name="project_id"\r\n\r\np\r\n--${boundary}--\r\n`;
      const cases: [string, Record<string, string>, (marker: string) => string][] = [
        ['text/plain', { 'content-type': 'text/plain' }, exec],
        ['text/plain;charset=UTF-8', { 'content-type': 'text/plain;charset=UTF-8' }, exec],
        ['form-urlencoded', { 'content-type': 'application/x-www-form-urlencoded' }, (m) => `${exec(m)}=`],
        ['multipart', { 'content-type': `multipart/form-data; boundary=${boundary}` }, () => multipart],
        ['no content-type', {}, exec],
        ['text/json', { 'content-type': 'text/json' }, exec],
        ['application/jsonx', { 'content-type': 'application/jsonx' }, exec],
        ['two types', { 'content-type': 'text/plain, application/json' }, exec],
      ];
      for (const [what, headers, body] of cases) {
        const marker = `pwned-${what.replace(/\W+/g, '-')}`;
        for (const path of ['/execute', '/mcp']) {
          const r = await raw(s.url, { method: 'POST', path, headers: { ...headers, ...bearer(s.token), host: `127.0.0.1:${port}` }, body: body(marker) });
          expect(r.status, `${what} ${path}`).to.equal(415);
          expect(r.body.error.code).to.equal('unsupported_media_type');
          expect(r.body.error.message).to.include('Content-Type: application/json');
        }
        await ranNothing(s, 'p', marker);
      }
      // Routes that take no body refuse a form post too.
      for (const path of ['/projects/p/save', '/admin/reload', '/jobs/00000000-0000-4000-8000-000000000000/input', '/file/write']) {
        const r = await raw(s.url, { method: 'POST', path, headers: { 'content-type': 'application/x-www-form-urlencoded', ...bearer(s.token) }, body: 'a=b' });
        expect(r.status, path).to.equal(415);
      }
    });

    it('accepts JSON with parameters and application/*+json', async () => {
      for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"', 'application/vnd.toolhost+json']) {
        const r = await raw(s.url, {
          method: 'POST',
          path: '/file/read',
          headers: { 'content-type': type, ...bearer(s.token) },
          body: JSON.stringify({ project_id: 'p', path: 'a.txt' }),
        });
        expect(r.status, type).to.equal(200);
        expect(r.body.content).to.equal('a\n');
      }
      const latin = await raw(s.url, {
        method: 'POST',
        path: '/file/read',
        headers: { 'content-type': 'application/json; charset=latin1', ...bearer(s.token) },
        body: '{}',
      });
      expect(latin.status).to.equal(415);
    });

    it('refuses a Host that is not loopback or allowed, before auth and on /health too', async () => {
      const port = new URL(s.url).port;
      const refused = [
        'evil.example',
        `evil.example:${port}`,
        '127.0.0.1.evil.example',
        'localhost.evil.example',
        `evil@127.0.0.1:${port}`,
        '128.0.0.1',
        '127.0.0.256',
        'toolhost.example.evil',
        '0.0.0.0',
        '[::2]',
      ];
      for (const host of refused) {
        for (const path of ['/health', '/projects']) {
          const r = await raw(s.url, { path, host, headers: bearer(s.token) });
          expect(r.status, `${host} ${path}`).to.equal(403);
          expect(r.body.error.code).to.equal('permission_denied');
          expect(r.body.error.reason).to.equal('host_not_allowed');
          expect(r.body.error.message).to.include('http.allowedHosts');
        }
        const unauth = await raw(s.url, { path: '/projects', host });
        expect(unauth.status, 'Host is checked before the token').to.equal(403);
        const marker = `pwned-host-${host.replace(/\W+/g, '-')}`;
        const r = await raw(s.url, {
          method: 'POST',
          path: '/execute',
          host,
          headers: { 'content-type': 'application/json', ...bearer(s.token) },
          body: exec(marker),
        });
        expect(r.status).to.equal(403);
        await ranNothing(s, 'p', marker);
      }
      const none = await raw(s.url, { path: '/health', host: null });
      expect(none.status, 'no Host header').to.be.within(400, 499);

      for (const host of [
        `127.0.0.1:${port}`,
        '127.0.0.1',
        '127.1.2.3:9',
        `localhost:${port}`,
        'LOCALHOST',
        `[::1]:${port}`,
        'toolhost.example',
        `TOOLHOST.EXAMPLE:${port}`,
      ]) {
        const r = await raw(s.url, { path: '/projects', host, headers: bearer(s.token) });
        expect(r.status, host).to.equal(200);
      }
    });

    it('refuses requests from a browser origin not in http.allowedOrigins, null included, and runs nothing', async () => {
      for (const origin of [
        'http://evil.example',
        'null',
        'https://console.example.com.evil.example',
        'http://console.example.com',
        // The server's own origin is allowed (the console); another port or name of the same machine is not.
        `http://127.0.0.1:${Number(new URL(s.url).port) + 1}`,
        `http://localhost:${new URL(s.url).port}`,
        'https://console.example.com:8443',
      ]) {
        const marker = `pwned-origin-${origin.replace(/\W+/g, '-')}`;
        const r = await raw(s.url, {
          method: 'POST',
          path: '/execute',
          headers: { origin, 'content-type': 'application/json', ...bearer(s.token) },
          body: exec(marker),
        });
        expect(r.status, origin).to.equal(403);
        expect(r.body.error.reason).to.equal('origin_not_allowed');
        expect(r.body.error.message).to.include('http.allowedOrigins');
        expect(r.headers['access-control-allow-origin']).to.equal(undefined);
        await ranNothing(s, 'p', marker);
        const preflight = await raw(s.url, {
          method: 'OPTIONS',
          path: '/execute',
          headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
        });
        expect(preflight.status, `preflight from ${origin}`).to.equal(403);
        expect(preflight.headers['access-control-allow-origin']).to.equal(undefined);
      }
    });

    it('serves an allowed origin, with a minimal CORS preflight', async () => {
      const preflight = await raw(s.url, {
        method: 'OPTIONS',
        path: '/execute',
        headers: { origin: allowedOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
      expect(preflight.status).to.equal(204);
      expect(preflight.headers['access-control-allow-origin']).to.equal(allowedOrigin);
      expect(String(preflight.headers['access-control-allow-headers'])).to.include('authorization').and.include('content-type');
      expect(String(preflight.headers['access-control-allow-methods'])).to.include('POST');
      const r = await raw(s.url, {
        method: 'POST',
        path: '/execute',
        headers: { origin: allowedOrigin, 'content-type': 'application/json', ...bearer(s.token) },
        body: JSON.stringify({ project_id: 'p', command: 'echo hi' }),
      });
      expect(r.status).to.equal(200);
      expect(r.body.stdout).to.equal('hi\n');
      expect(r.headers['access-control-allow-origin']).to.equal(allowedOrigin);
      // An allowed origin still needs the token.
      expect((await raw(s.url, { path: '/projects', headers: { origin: allowedOrigin } })).status).to.equal(401);
    });
  });

  describe('compressed bodies and unexpected errors', () => {
    let s: TestServer;
    const captured = captureLog();
    before(async () => {
      s = await startServer({ http: { maxBodyBytes: 65_536 }, logLevel: 'info' }, { log: captured.log });
      expect((await s.putProject('p', { 'a.txt': 'a\n' })).status).to.equal(201);
    });
    after(async () => s?.close());

    const post = (encoding: string, body: Buffer) =>
      raw(s.url, {
        method: 'POST',
        path: '/file/read',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding, ...bearer(s.token) },
        body,
      });

    it('reads a valid gzip body, answers 400 to one that is not what it claims, 415 to an unknown encoding, 413 to a bomb', async () => {
      const good = await post('gzip', gzipSync(JSON.stringify({ project_id: 'p', path: 'a.txt' })));
      expect(good.status).to.equal(200);
      expect(good.body.content).to.equal('a\n');
      const whole = gzipSync(JSON.stringify({ project_id: 'p', path: 'a.txt' }));
      for (const [encoding, body] of [
        ['gzip', Buffer.from('{"project_id":"p","path":"a.txt"}')],
        ['gzip', whole.subarray(0, whole.length - 12)],
        ['deflate', Buffer.from('definitely not deflate')],
        ['br', Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x12])],
      ] as const) {
        const r = await post(encoding, body);
        expect(r.status, `${encoding} ${body.length}`).to.equal(400);
        expect(r.body.error.code).to.equal('bad_request');
        expect(r.body.error.message).to.include('Content-Encoding');
      }
      for (const encoding of ['compress', 'x-evil', 'gzip, gzip']) {
        const r = await post(encoding, whole);
        expect(r.status, encoding).to.equal(415);
        expect(r.body.error.code).to.equal('unsupported_media_type');
      }
      const bomb = gzipSync(`{"project_id":"p","path":"a.txt","x":"${'a'.repeat(5_000_000)}"}`);
      expect(bomb.length).to.be.below(65_536);
      const r = await post('gzip', bomb);
      expect(r.status).to.equal(413);
      expect(r.body.error.code).to.equal('payload_too_large');
    });

    it('answers an unexpected failure with a generic 500 naming the request id, never a server path, and logs the cause', async () => {
      // The upload folder vanished under the server: writing the upload fails with an errno naming its path.
      await rm(join(s.dataDir, 'tmp'), { recursive: true, force: true });
      const r = await raw(s.url, {
        method: 'PUT',
        path: '/projects/q',
        headers: { 'content-type': 'application/octet-stream', 'x-request-id': 'boom-1', ...bearer(s.token) },
        body: Buffer.from('x'),
      });
      await mkdir(join(s.dataDir, 'tmp'), { recursive: true });
      expect(r.status).to.equal(500);
      expect(r.body.error.code).to.equal('internal');
      expect(r.body.error.message).to.include('boom-1');
      expect(JSON.stringify(r.body)).not.to.include(s.dataDir);
      expect(JSON.stringify(r.body)).not.to.match(/\/(tmp|var|home|root|data)\//);
      const logged = captured.lines.find((l) => l.msg === 'internal error' && l.request_id === 'boom-1');
      expect(logged, 'the cause is in the log').to.not.equal(undefined);
      expect(String(logged!.err)).to.include(join(s.dataDir, 'tmp'));
    });
  });
});
