/**
 * The operator console end to end: a real supervisor on 127.0.0.1 port 0 and Debian's Chromium, headless, driven by
 * playwright-core. An operator signs in with the token, watches a command appear, follow its output, cancels it
 * with the page's button, and sees a project's row change as it is written and saved. Skipped only where
 * /usr/bin/chromium is not installed (.ci/run installs it).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { type Browser, chromium, type Page } from 'playwright-core';
import { quantile } from '../supervisor/http/console-routes.js';
import { startServer, type TestServer } from './helpers/harness.js';

const CHROMIUM = '/usr/bin/chromium';
/** Where the screenshot goes (ignored by git). */
const OUTPUT_DIR = fileURLToPath(new URL('./output/', import.meta.url));
/** Markup a command writes: the page must show it as these characters, never as an element. */
const HOSTILE = '<img src=x onerror=document.body.dataset.pwned=1>';
const LOOP = 'for i in $(seq 1 100); do echo line $i; sleep 0.2; done';

describe('console: the operator page in headless Chromium', () => {
  let s: TestServer;
  let browser: Browser | undefined;
  let page: Page;
  /** Script errors and policy refusals the page met: the page must run under its own CSP without any. */
  const problems: string[] = [];
  let jobId = '';

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      skipped: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run does)`);
      this.skip();
    }
    s = await startServer({ commands: { killGraceS: 1 }, cache: { maxBytes: 100 * 1024 * 1024 } });
    expect((await s.putProject('demo', { 'a.txt': 'a\n' })).status).to.equal(201);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
    });
  });
  after(async () => {
    await browser?.close();
    await s?.close({ force: true });
  });

  it('serves the page without the token, under a policy that allows only its own script and style', async () => {
    const html = await fetch(`${s.url}/console`);
    expect(html.status).to.equal(200);
    expect(html.headers.get('content-type')).to.match(/^text\/html/);
    const csp = html.headers.get('content-security-policy') ?? '';
    expect(csp).to.include("script-src 'self'").and.include("style-src 'self'").and.include("frame-ancestors 'none'");
    expect(csp).not.to.include('unsafe');
    expect(html.headers.get('x-content-type-options')).to.equal('nosniff');
    const text = await html.text();
    expect(text)
      .to.include('src="/console/console.js"')
      .and.not.match(/<script>|\son\w+=/);
    expect((await fetch(`${s.url}/console/console.js`)).headers.get('content-type')).to.match(/^text\/javascript/);
    expect((await fetch(`${s.url}/console/console.css`)).headers.get('content-type')).to.match(/^text\/css/);
    // Only those three files: nothing else under console/ or beside it, by any spelling.
    for (const path of ['/console/index.html', '/console/%2e%2e/package.json', '/console/..%2fpackage.json', '/console/console.js.map']) {
      const r = await fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${s.token}` } });
      expect(r.status, path).to.equal(404);
    }
    // The data it shows needs the token.
    expect((await s.api('/admin/overview', undefined, { token: null })).status).to.equal(401);
    expect((await s.api('/admin/overview', undefined, { token: 'wrong' })).status).to.equal(401);
  });

  it('refuses a wrong token, then signs in with the right one and shows the containment and the cache budget', async () => {
    await page.goto(`${s.url}/console`);
    await page.fill('#token', 'not-the-token');
    await page.click('#login button[type=submit]');
    await page.locator('#login-error', { hasText: 'token' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('toolhost.token'))).to.equal(null);

    await page.fill('#token', s.token!);
    await page.click('#login button[type=submit]');
    await page.locator('#main').waitFor();
    await page.locator('#status', { hasText: 'ok' }).waitFor();
    await page.locator('#containment dt', { hasText: 'sandbox' }).waitFor();
    await page.locator('#cache-text', { hasText: 'of 100.0 MB' }).waitFor();
    // The style sheet applied (the policy let it load): the header is a flex row.
    expect(await page.evaluate(() => getComputedStyle(document.querySelector('header')!).display)).to.equal('flex');
    // A reload keeps the session: the token is in this tab's sessionStorage.
    await page.reload();
    await page.locator('#status', { hasText: 'ok' }).waitFor();
  });

  it('shows a running command, streams its output when selected, and cancels it with the button', async () => {
    const r = await s.api('/execute', { project_id: 'demo', command: `echo '${HOSTILE}'; ${LOOP}`, background: true });
    expect(r.status).to.equal(200);
    jobId = r.body.job_id;
    const row = page.locator(`#jobs tr[data-job-id="${jobId}"]`);
    await page.locator(`#jobs tr[data-job-id="${jobId}"][data-status="running"]`).waitFor();
    expect(await row.locator('td').allTextContents()).to.include.members(['execute', 'commands', 'demo', 'running']);

    await row.click();
    await page.locator('#output', { hasText: 'line 1' }).waitFor();
    // A line that did not exist when the stream started arrives without a reload.
    const seen = Math.max(...[...((await page.locator('#output').textContent()) ?? '').matchAll(/line (\d+)/g)].map((m) => Number(m[1])));
    await page.locator('#output', { hasText: `line ${seen + 2}\n` }).waitFor();
    await mkdir(OUTPUT_DIR, { recursive: true });
    await page.screenshot({ path: `${OUTPUT_DIR}console.png`, fullPage: true });

    await row.locator('button.cancel').click();
    await page.locator(`#jobs tr[data-job-id="${jobId}"][data-status="cancelled"]`).waitFor();
    await page.locator('#output-status', { hasText: 'cancelled' }).waitFor();
    expect(await row.locator('button.cancel').isHidden()).to.equal(true);
    expect((await s.api(`/jobs/${jobId}?wait_s=0`)).body.status).to.equal('cancelled');
  });

  it('shows what a command wrote, and its command line, as text', async () => {
    expect(await page.locator('#output').textContent()).to.include(HOSTILE);
    expect(await page.locator(`#jobs tr[data-job-id="${jobId}"] td`).nth(6).textContent()).to.include(HOSTILE);
    expect(await page.locator('img').count()).to.equal(0);
    expect(await page.evaluate(() => document.body.dataset.pwned)).to.equal(undefined);
    // A project id cannot carry markup at all: the API refuses it before any page could show it.
    const bad = await s.api(`/projects/${encodeURIComponent('<img src=x onerror=alert(1)>')}`);
    expect(bad.status).to.equal(400);
    expect(bad.body.error.code).to.equal('invalid_project_id');
  });

  it("shows a project's row dirty after a write, then clean with its checkpoint after a save", async () => {
    const row = page.locator('#projects tr[data-project-id="demo"]');
    expect((await s.api('/file/write', { project_id: 'demo', path: 'b.txt', content: 'b\n' })).status).to.equal(200);
    await page.locator('#projects tr[data-project-id="demo"][data-dirty="true"]').waitFor();
    expect(await row.locator('td').nth(2).textContent()).to.equal('dirty');

    const saved = await s.api('/projects/demo/save', {});
    expect(saved.status).to.equal(200);
    expect(saved.body.checkpoint_id).to.be.a('string');
    await page.locator('#projects tr[data-project-id="demo"][data-dirty="false"]').waitFor();
    expect(await row.locator('td').nth(2).textContent()).to.equal('clean');
    const count = await s.api('/projects/demo/checkpoints');
    await page.locator('#projects tr[data-project-id="demo"] td:nth-child(7)', { hasText: String(count.body.checkpoints.length) }).waitFor();
    expect(count.body.checkpoints.length).to.be.at.least(1);

    // The latency table has the tools that ran, with percentiles from the histogram.
    await page.locator('#latency tr[data-key="file_write"]').waitFor();
    expect((await page.locator('#latency tr[data-key="file_write"] td').nth(2).textContent())?.trim()).to.match(/^\d+(\.\d+)? (ms|s)$/);
    expect(problems).to.deep.equal([]);
  });
});

describe('console: latency percentiles from the histogram buckets', () => {
  const b = (pairs: [number, number][]) => pairs.map(([le, count]) => ({ le, count }));

  it('interpolates within the bucket the rank falls in, as histogram_quantile does', () => {
    // 10 jobs: 4 under 0.1 s, 4 more under 0.5 s, 2 more under 1 s.
    const buckets = b([
      [0.1, 4],
      [0.5, 8],
      [1, 10],
      [Number.POSITIVE_INFINITY, 10],
    ]);
    expect(quantile(buckets, 0.5)).to.be.closeTo(0.1 + 0.4 * (1 / 4), 1e-9);
    expect(quantile(buckets, 0.95)).to.be.closeTo(0.5 + 0.5 * (1.5 / 2), 1e-9);
  });

  it('answers null before any job and the largest finite bound for ranks in +Inf', () => {
    expect(
      quantile(
        b([
          [0.1, 0],
          [Number.POSITIVE_INFINITY, 0],
        ]),
        0.5,
      ),
    ).to.equal(null);
    expect(
      quantile(
        b([
          [0.1, 1],
          [Number.POSITIVE_INFINITY, 10],
        ]),
        0.95,
      ),
    ).to.equal(0.1);
  });
});
