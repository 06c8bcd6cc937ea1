/**
 * The operator console: polls the API with the bearer token and shows jobs, one job's output, projects, the cache,
 * the containment and latency by tool. Everything shown comes from the server and may have been written by an
 * attacker (command lines, output, file names): it is only ever set as text (textContent, text nodes), never as HTML.
 */

const TOKEN_KEY = 'toolhost.token';
/** Seconds between polls: jobs and health every second, projects (one call per cached project) every two. */
const JOBS_EVERY_MS = 1000;
const PROJECTS_EVERY_MS = 2000;
/** Characters of output kept on the page: older ones are dropped as new ones arrive. */
const OUTPUT_KEEP = 400_000;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY);
/** The job whose output is shown, and the stream that follows it. */
let selected = null;
let stream = null;
/** Bumped at sign-in and sign-out, so the loops of an earlier sign-in stop. */
let generation = 0;

/** An element with properties (text goes in as textContent) and children (strings become text nodes). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else node[k] = v;
  }
  node.append(...children);
  return node;
}

/** A call to the API with the token; a refused token signs out. */
async function api(path, init = {}) {
  const res = await fetch(path, { ...init, cache: 'no-store', headers: { ...init.headers, authorization: `Bearer ${token}` } });
  const body = await res.json().catch(() => null);
  if (res.status === 401) {
    signOut(body?.error?.message ?? 'the token was refused');
    throw new Error('signed out');
  }
  if (!res.ok) throw new Error(body?.error?.message ?? `${init.method ?? 'GET'} ${path} answered ${res.status}`);
  return body;
}

function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  return s < 3600 ? `${Math.floor(s / 60)} m ${s % 60} s` : `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
}

function seconds(s) {
  return s === null ? '—' : duration(Math.round(s * 1000));
}

function ago(iso) {
  if (!iso) return '—';
  return `${duration(Math.max(0, Date.now() - Date.parse(iso)))} ago`;
}

/** A value of /health as one line: lists joined, objects as JSON. */
function text(v) {
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.map(text).join(', ');
  return v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** Fills a <dl> with the pairs of `obj`. */
function fillList(dl, obj) {
  dl.replaceChildren(...Object.entries(obj).flatMap(([k, v]) => [el('dt', { textContent: k }), el('dd', { textContent: text(v) })]));
}

/**
 * Shows `items` as the rows of `tbody`, one row per key kept across updates (so a click is never lost to a
 * redraw): `build` makes a row's cells, `update` writes its values.
 */
function syncRows(tbody, items, key, build, update) {
  const old = new Map([...tbody.rows].map((r) => [r.dataset.key, r]));
  const rows = items.map((item) => {
    let row = old.get(key(item));
    if (!row) {
      row = build(item);
      row.dataset.key = key(item);
    }
    update(row, item);
    return row;
  });
  if (rows.length !== tbody.rows.length || rows.some((r, i) => tbody.rows[i] !== r)) tbody.replaceChildren(...rows);
}

/** Writes texts into a row's cells, in order (a null leaves the cell as it is). */
function setCells(row, texts) {
  texts.forEach((t, i) => {
    if (t !== null && row.cells[i].textContent !== t) row.cells[i].textContent = t;
  });
}

// --- jobs, cache, pool, containment, latency -------------------------------------------------------------------

async function refreshOverview() {
  const [health, overview] = await Promise.all([api('/health'), api('/admin/overview')]);
  const status = $('status');
  status.textContent = health.status;
  status.dataset.status = health.status;
  $('node').textContent = `${health.role} ${health.node} · up ${duration(health.uptime_s * 1000)}`;
  // Why the server says "degraded" (the store unreachable, write-backs failing), one line per cause.
  $('reasons').replaceChildren(...(health.reasons ?? []).map((r) => el('li', { textContent: r })));
  fillList($('containment'), health.containment ?? {});
  const pool = { 'queue depth': health.queue?.depth ?? 0 };
  for (const [lane, l] of Object.entries(health.pool?.lanes ?? {})) pool[lane] = `${l.busy} busy of ${l.threads} threads`;
  pool['write-backs failing'] = health.writeback?.failing?.length ?? 0;
  if (health.store) pool.store = `${health.store.backend}, ${health.store.status}`;
  fillList($('pool'), pool);
  showCache(overview.cache);
  showJobs(overview.jobs);
  syncRows(
    $('latency').tBodies[0],
    overview.latency,
    (t) => t.tool,
    () => el('tr', {}, el('td'), el('td'), el('td'), el('td')),
    (row, t) => setCells(row, [t.tool, String(t.count), seconds(t.p50_s), seconds(t.p95_s)]),
  );
}

function showCache(cache) {
  const meter = $('cache-meter');
  if (!cache) {
    $('cache-text').textContent = 'this process holds no working copies (role "api")';
    return;
  }
  const budget = cache.max_bytes;
  meter.hidden = budget === 0;
  meter.max = Math.max(budget, 1);
  meter.value = cache.bytes;
  $('cache-text').textContent =
    `${bytes(cache.bytes)} of ${budget > 0 ? bytes(budget) : 'no budget'}${budget > 0 ? ` (${Math.round((100 * cache.bytes) / budget)}%)` : ''}` +
    ` · ${cache.projects} working copies, ${cache.dirty} dirty`;
}

function showJobs(jobs) {
  const live = jobs.filter((j) => j.status === 'queued' || j.status === 'running').length;
  $('jobs-count').textContent = `${live} running or queued, ${jobs.length - live} recent`;
  syncRows(
    $('jobs').tBodies[0],
    jobs,
    (j) => j.job_id,
    (j) => {
      const cancel = el('button', { type: 'button', className: 'cancel', textContent: 'Cancel' });
      cancel.addEventListener('click', (e) => {
        e.stopPropagation();
        void cancelJob(j.job_id, cancel);
      });
      const row = el('tr', { dataset: { jobId: j.job_id } }, ...Array.from({ length: 7 }, () => el('td')), el('td', {}, cancel));
      if (j.command !== null) row.addEventListener('click', () => select(j.job_id));
      return row;
    },
    (row, j) => {
      row.dataset.status = j.status;
      row.classList.toggle('selected', j.job_id === selected);
      row.classList.toggle('selectable', j.command !== null);
      setCells(row, [j.job_id.slice(0, 8), j.tool, j.lane, j.project_id, j.status, duration(j.duration_ms), j.command ?? '']);
      row.cells[0].title = j.job_id;
      row.cells[6].title = j.command ?? '';
      row.querySelector('button.cancel').hidden = !j.cancellable;
    },
  );
}

async function cancelJob(id, button) {
  button.disabled = true;
  try {
    await api(`/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  } catch (err) {
    showError(err);
  } finally {
    button.disabled = false;
  }
}

// --- one job's output, as Server-Sent Events read through fetch (EventSource cannot send the token) --------------

function select(id) {
  if (selected === id) return;
  selected = id;
  stream?.abort();
  stream = new AbortController();
  for (const row of $('jobs').tBodies[0].rows) row.classList.toggle('selected', row.dataset.key === id);
  $('output-panel').hidden = false;
  $('output-job').textContent = id;
  $('output').replaceChildren();
  setOutputStatus('following');
  follow(id, stream.signal).catch((err) => {
    if (!stream.signal.aborted) setOutputStatus(`stream ended: ${err.message}`);
  });
}

function setOutputStatus(text) {
  $('output-status').textContent = text;
}

async function follow(id, signal) {
  const res = await fetch(`/jobs/${encodeURIComponent(id)}/stream`, { headers: { authorization: `Bearer ${token}` }, signal });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw new Error(body?.error?.message ?? `the stream answered ${res.status}`);
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      onEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

/** One event of the stream: `event: stdout|stderr|end` and a JSON `data:` line; comment lines keep it alive. */
function onEvent(block) {
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (!data) return;
  const payload = JSON.parse(data);
  if (event === 'stdout' || event === 'stderr') appendOutput(payload.text, event);
  if (event === 'end') {
    const code = payload.exit_code === null ? '' : `, exit ${payload.exit_code}`;
    setOutputStatus(`${payload.status}${code}`);
    appendOutput(`\n[${payload.status}${code}${payload.signal ? `, ${payload.signal}` : ''} after ${duration(payload.duration_ms)}]\n`, 'end');
  }
}

function appendOutput(text, kind) {
  const out = $('output');
  const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
  out.append(el('span', { className: kind, textContent: text }));
  let kept = out.textContent.length;
  while (kept > OUTPUT_KEEP && out.firstChild) {
    kept -= out.firstChild.textContent.length;
    out.firstChild.remove();
  }
  if (atBottom) out.scrollTop = out.scrollHeight;
}

// --- projects --------------------------------------------------------------------------------------------------

/** Checkpoint counts by project, with the etag they were counted at: counted again only after a save. */
const checkpoints = new Map();

async function refreshProjects() {
  const { projects } = await api('/projects');
  const infos = await Promise.all(projects.map((p) => (p.cached ? api(`/projects/${encodeURIComponent(p.project_id)}`).catch(() => p) : p)));
  // A count that cannot be had now (the project went away meanwhile) stays as it was; the next round tries again.
  await Promise.all(infos.map((p) => countCheckpoints(p).catch(() => {})));
  $('projects-count').textContent = `${projects.length}`;
  syncRows(
    $('projects').tBodies[0],
    infos,
    (p) => p.project_id,
    (p) => el('tr', { dataset: { projectId: p.project_id } }, ...Array.from({ length: 7 }, () => el('td'))),
    (row, p) => {
      const c = p.cache ?? null;
      const failure = c?.writeback_error ? `${c.writeback_error.code} (${c.writeback_error.attempts} tries since ${ago(c.writeback_error.since)})` : '—';
      const counted = checkpoints.get(p.project_id);
      row.dataset.dirty = String(p.dirty);
      row.classList.toggle('failing', Boolean(c?.writeback_error));
      setCells(row, [
        p.project_id,
        p.cached ? 'yes' : 'no',
        p.dirty ? 'dirty' : p.cached ? 'clean' : '—',
        c ? bytes(c.size_bytes) : bytes(p.archive_bytes),
        c ? ago(c.last_access) : '—',
        failure,
        counted ? String(counted.count) : '—',
      ]);
      row.cells[5].title = c?.writeback_error?.message ?? '';
    },
  );
}

async function countCheckpoints(p) {
  if (p.format !== 'layers') return;
  if (checkpoints.get(p.project_id)?.etag === p.etag) return;
  const { checkpoints: list } = await api(`/projects/${encodeURIComponent(p.project_id)}/checkpoints`);
  checkpoints.set(p.project_id, { etag: p.etag, count: list.length });
}

// --- sign-in, loops, errors ------------------------------------------------------------------------------------

function showError(err) {
  if (err.message !== 'signed out') $('error').textContent = err.message;
}

/** Runs `fn` now and again `ms` after each run ends (never overlapping), until the sign-in it belongs to ends. */
function every(ms, fn) {
  const mine = generation;
  const tick = async () => {
    if (mine !== generation) return;
    try {
      await fn();
      if (mine === generation) $('error').textContent = '';
    } catch (err) {
      if (mine === generation) showError(err);
    }
    if (mine === generation) setTimeout(tick, ms);
  };
  void tick();
}

function signIn() {
  generation++;
  $('login').hidden = true;
  $('main').hidden = false;
  $('logout').hidden = false;
  every(JOBS_EVERY_MS, refreshOverview);
  every(PROJECTS_EVERY_MS, refreshProjects);
}

function signOut(why) {
  generation++;
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stream?.abort();
  selected = null;
  $('output-panel').hidden = true;
  $('main').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('status').textContent = 'not signed in';
  delete $('status').dataset.status;
  $('login-error').textContent = why ?? '';
}

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  $('token').value = '';
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('login-error').textContent = '';
  signIn();
});
$('logout').addEventListener('click', () => signOut());
if (token) signIn();
