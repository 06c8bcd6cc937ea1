/**
 * Project routes that are not tools: upload an archive, delete a project, evict its working copy. They need the
 * working copies of a process that runs jobs.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { type Request } from 'express';
import { z } from 'zod';
import { ToolhostError } from '../../lib/errors.js';
import { PROJECT_ID_PATTERN, PROJECT_ID_RULE } from '../../lib/schemas.js';
import type { ProjectCache } from '../projects.js';
import type { AppDeps } from './deps.js';
import { projectCache, projectInfoTool } from './project-tools.js';
import { validate } from './validate.js';

/** The query of PUT /projects/:id (also documented in the OpenAPI description). */
export const putProjectQuery = z.strictObject({
  replace: z.enum(['true', 'false']).default('false').describe('Replace an existing project (its working copy is discarded).'),
});

/** The query of DELETE /projects/:id (also documented in the OpenAPI description). */
export const deleteProjectQuery = z.strictObject({
  force: z
    .enum(['true', 'false'])
    .default('false')
    .describe('Delete even with jobs running (their commands are cancelled) or unsaved changes (they are lost).'),
});

/** The query of GET /projects/:id/archive (also documented in the OpenAPI description). */
export const archiveQuery = z.strictObject({
  format: z.enum(['zip', 'tar.gz']).default('tar.gz').describe('Archive format: "tar.gz" (the default) or "zip".'),
});

/**
 * PUT /projects/:id (upload), DELETE /projects/:id (the project, from the store and this cache), DELETE
 * /projects/:id/cache (evict), GET /projects/:id/archive (download). Listing, showing, creating and saving are
 * tools (project-tools.ts).
 */
export function projectRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  /** The cache the writing routes need; an api process refuses them before they get here (app.ts). */
  const cache = (): ProjectCache => projectCache(d);

  router.put('/projects/:id', async (req, res) => {
    const id = projectIdParam(req.params.id);
    const q = validate(putProjectQuery, { ...req.query }, `PUT /projects/${id} query`);
    const replace = q.replace === 'true';
    const projects = cache();
    const upload = await receiveUpload(req, d, projects.tmpDir);
    const { created, info } = await projects.put(id, upload, { replace });
    res.status(created ? 201 : 200).json(info);
  });

  router.delete('/projects/:id', async (req, res) => {
    const id = projectIdParam(req.params.id);
    const q = validate(deleteProjectQuery, { ...req.query }, `DELETE /projects/${id} query`);
    const waitMs = (d.config.commands.killGraceS + 10) * 1000;
    res.json(await cache().remove(id, { force: q.force === 'true', waitMs, stopJobs: () => stopProjectCommands(d, id) }));
  });

  router.delete('/projects/:id/cache', async (req, res) => {
    const id = projectIdParam(req.params.id);
    const evicted = await cache().evict(id);
    if (!evicted) await projectInfoTool.serve(d, { project_id: id }, {}); // 404 for a project that does not exist at all
    res.json({ project_id: id, evicted });
  });

  router.get('/projects/:id/archive', async (req, res) => {
    const id = projectIdParam(req.params.id);
    const { format } = validate(archiveQuery, { ...req.query }, `GET /projects/${id}/archive query`);
    const { file, release } = await cache().archive(id, format);
    try {
      const { size } = await stat(file);
      res.setHeader('Content-Type', format === 'zip' ? 'application/zip' : 'application/gzip');
      res.setHeader('Content-Length', size);
      res.setHeader('Content-Disposition', `attachment; filename="${id}.${format}"`);
      await pipeline(createReadStream(file), res);
    } catch (err) {
      // Once the bytes started, a failure (the client gone) can only end the response.
      if (!res.headersSent) throw err;
      res.destroy();
    } finally {
      await release();
    }
  });
  return router;
}

/** Cancels the project's queued and running commands (a forced delete), waiting up to a second for each. */
async function stopProjectCommands(d: AppDeps, id: string): Promise<void> {
  const live = (await d.jobs.list(id)).filter((j) => j.status === 'queued' || j.status === 'running');
  // A failure is not the delete's concern: it asks again while anything still runs in the copy.
  await Promise.all(live.map((j) => d.jobs.cancel(j.job_id, 1000).catch(() => undefined)));
}

/** Validates a project id from the URL. */
export function projectIdParam(id: string | undefined): string {
  if (!id || !PROJECT_ID_PATTERN.test(id)) {
    throw new ToolhostError('invalid_project_id', `project id "${id}" is invalid; it must be ${PROJECT_ID_RULE}`);
  }
  return id;
}

/** Streams an archive upload to a temp file in `tmpDir`, enforcing http.maxArchiveBytes without buffering it in memory. */
async function receiveUpload(req: Request, d: AppDeps, tmpDir: string): Promise<string> {
  const max = d.config.http.maxArchiveBytes;
  const tooLarge = (): ToolhostError =>
    new ToolhostError('payload_too_large', `the archive exceeds http.maxArchiveBytes (${max} bytes); upload a smaller project or raise the limit`);
  const declared = Number(req.get('content-length') ?? NaN);
  if (declared > max) throw tooLarge();
  const file = join(tmpDir, `upload-${randomUUID()}.part`);
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      cb(seen > max ? tooLarge() : null, chunk);
    },
  });
  try {
    await pipeline(req, limiter, createWriteStream(file, { flags: 'wx' }));
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  if (seen === 0) {
    await rm(file, { force: true });
    throw new ToolhostError('bad_request', 'the request body is empty; send the project archive (zip or tar.gz) as the body');
  }
  return file;
}
