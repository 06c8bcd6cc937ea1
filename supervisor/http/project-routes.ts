/** Project routes: upload an archive, list projects, show one, save its working copy, evict it. */
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import express, { type Request } from 'express';
import { z } from 'zod';
import { ToolhostError } from '../../lib/errors.js';
import { PROJECT_ID_PATTERN, PROJECT_ID_RULE } from '../../lib/schemas.js';
import type { AppDeps } from './deps.js';
import { validate } from './validate.js';

/** The query of PUT /projects/:id (also documented in the OpenAPI description). */
export const putProjectQuery = z.strictObject({
  replace: z.enum(['true', 'false']).default('false').describe('Replace an existing project (its working copy is discarded).'),
});

/** PUT /projects/:id, GET /projects, GET /projects/:id, POST /projects/:id/save, DELETE /projects/:id/cache. */
export function projectRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  router.put('/projects/:id', async (req, res) => {
    const id = projectIdParam(req.params.id);
    const q = validate(putProjectQuery, { ...req.query }, `PUT /projects/${id} query`);
    const replace = q.replace === 'true';
    const upload = await receiveUpload(req, d);
    const { created, info } = await d.projects.put(id, upload, { replace });
    res.status(created ? 201 : 200).json(info);
  });

  router.get('/projects', async (_req, res) => {
    res.json({ projects: await d.projects.list() });
  });

  router.get('/projects/:id', async (req, res) => {
    res.json(await d.projects.info(projectIdParam(req.params.id)));
  });

  router.post('/projects/:id/save', async (req, res) => {
    res.json(await d.projects.save(projectIdParam(req.params.id)));
  });

  router.delete('/projects/:id/cache', async (req, res) => {
    const id = projectIdParam(req.params.id);
    const evicted = await d.projects.evict(id);
    if (!evicted) await d.projects.info(id); // 404 for a project that does not exist at all
    res.json({ project_id: id, evicted });
  });
  return router;
}

/** Validates a project id from the URL. */
export function projectIdParam(id: string | undefined): string {
  if (!id || !PROJECT_ID_PATTERN.test(id)) {
    throw new ToolhostError('invalid_project_id', `project id "${id}" is invalid; it must be ${PROJECT_ID_RULE}`);
  }
  return id;
}

/** Streams an archive upload to a temp file, enforcing http.maxArchiveBytes without buffering it in memory. */
async function receiveUpload(req: Request, d: AppDeps): Promise<string> {
  const max = d.config.http.maxArchiveBytes;
  const tooLarge = (): ToolhostError =>
    new ToolhostError('payload_too_large', `the archive exceeds http.maxArchiveBytes (${max} bytes); upload a smaller project or raise the limit`);
  const declared = Number(req.get('content-length') ?? NaN);
  if (declared > max) throw tooLarge();
  const file = join(d.projects.tmpDir, `upload-${randomUUID()}.part`);
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
