/**
 * Project routes: upload an archive, list projects, show one, save its working copy, evict it. Listing and showing
 * work on every role (from the store where there is no cache); the others need the working copies of a worker.
 */
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
import { notFound, type StoredProject } from '../../lib/store/project-store.js';
import type { ProjectCache } from '../projects.js';
import type { AppDeps } from './deps.js';
import { validate } from './validate.js';

/** The query of PUT /projects/:id (also documented in the OpenAPI description). */
export const putProjectQuery = z.strictObject({
  replace: z.enum(['true', 'false']).default('false').describe('Replace an existing project (its working copy is discarded).'),
});

/** PUT /projects/:id, GET /projects, GET /projects/:id, POST /projects/:id/save, DELETE /projects/:id/cache. */
export function projectRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  // Where the working copies are, they answer (the store's view plus theirs); elsewhere the store alone does.
  const listing: ProjectListing = d.worker?.projects ?? storeListing(d);
  /** The cache the writing routes need; an api process refuses them before they get here (app.ts). */
  const cache = (): ProjectCache => {
    if (!d.worker)
      throw new ToolhostError('not_on_this_role', 'this process runs no jobs and holds no working copies; send this to a process with role "all" or "worker"');
    return d.worker.projects;
  };

  router.put('/projects/:id', async (req, res) => {
    const id = projectIdParam(req.params.id);
    const q = validate(putProjectQuery, { ...req.query }, `PUT /projects/${id} query`);
    const replace = q.replace === 'true';
    const projects = cache();
    const upload = await receiveUpload(req, d, projects.tmpDir);
    const { created, info } = await projects.put(id, upload, { replace });
    res.status(created ? 201 : 200).json(info);
  });

  router.get('/projects', async (_req, res) => {
    res.json({ projects: await listing.list() });
  });

  router.get('/projects/:id', async (req, res) => {
    res.json(await listing.info(projectIdParam(req.params.id)));
  });

  router.post('/projects/:id/save', async (req, res) => {
    res.json(await cache().save(projectIdParam(req.params.id)));
  });

  router.delete('/projects/:id/cache', async (req, res) => {
    const id = projectIdParam(req.params.id);
    const evicted = await cache().evict(id);
    if (!evicted) await listing.info(id); // 404 for a project that does not exist at all
    res.json({ project_id: id, evicted });
  });
  return router;
}

/** What GET /projects and GET /projects/:id answer from. */
type ProjectListing = Pick<ProjectCache, 'list' | 'info'>;

/**
 * The project listing of a process without working copies: the store's view, in the shape the cache gives
 * (ProjectCache.list and info) with nothing cached.
 */
function storeListing(d: AppDeps): ProjectListing {
  const view = (p: StoredProject) => ({
    project_id: p.id,
    format: p.format,
    archive_bytes: p.size,
    modified_at: p.modifiedAt,
    etag: p.etag,
    cached: false,
    dirty: false,
  });
  return {
    list: async () => (await d.store.list()).map(view),
    info: async (id) => {
      const stored = await d.store.stat(id);
      if (!stored) throw notFound(id);
      return { ...view(stored), cache: null };
    },
  };
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
