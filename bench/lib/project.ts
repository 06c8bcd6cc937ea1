/** Putting a project on a supervisor the way a client does: build an archive, PUT /projects/:id. */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildArchive } from './dataset.js';
import { type Endpoint, JsonClient } from './http.js';

/** Writes `files` (path -> content) under `dir`. */
export async function writeFiles(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    const abs = join(dir, rel);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content);
  }
}

/** Archives `dir` (tar.gz unless told) and uploads it as project `id`; the archive is removed afterwards. */
export async function uploadDir(
  client: JsonClient,
  id: string,
  dir: string,
  tmp: string,
  o: { format?: 'zip' | 'tar.gz'; gzipLevel?: number } = {},
): Promise<void> {
  const format = o.format ?? 'tar.gz';
  const archive = join(tmp, `upload-${id}.${format}`);
  try {
    await buildArchive(dir, archive, format, o.gzipLevel);
    await client.putFile(`/projects/${id}`, archive);
  } finally {
    await rm(archive, { force: true });
  }
}

/** Writes `files` into a fresh folder under `tmp` and uploads them as project `id`. */
export async function uploadFiles(
  client: JsonClient,
  id: string,
  files: Record<string, string | Buffer>,
  tmp: string,
  format: 'zip' | 'tar.gz' = 'tar.gz',
): Promise<void> {
  const dir = join(tmp, `project-${id}`);
  try {
    await writeFiles(dir, files);
    await uploadDir(client, id, dir, tmp, { format });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Warms a supervisor up before a project's cold start is timed, so the figure is a project's cold start on a
 * running service rather than the service's own: `threads` tiny projects are uploaded (extraction code), evicted
 * and read at once on as many connections, so each file-pool thread extracts one from the store (with the Azure
 * store, each loads the SDK and connects, which a thread of a busy service has done long before).
 */
export async function warmUp(target: Endpoint, tmp: string, format: 'zip' | 'tar.gz', threads = 2): Promise<void> {
  const client = new JsonClient(target, threads);
  try {
    const ids = Array.from({ length: threads }, (_, i) => `warm-${i}`);
    for (const id of ids) await uploadFiles(client, id, { 'README.md': `${id}\n` }, tmp, format);
    for (const id of ids) await client.send('DELETE', `/projects/${id}/cache`);
    await Promise.all(ids.map((id) => client.post('/file/read', { project_id: id, path: 'README.md' })));
  } finally {
    client.close();
  }
}
