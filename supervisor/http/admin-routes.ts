/** Operator routes: Prometheus metrics and live configuration reload. Both sit behind the bearer token. */
import express from 'express';
import type { AppDeps } from './deps.js';

/** GET /metrics, POST /admin/reload. */
export function adminRoutes(d: AppDeps): express.Router {
  const router = express.Router();

  router.get('/metrics', async (_req, res) => {
    const { contentType, text } = await d.metrics.render();
    res.type(contentType).send(text);
  });

  router.post('/admin/reload', async (_req, res) => {
    res.json(await d.reload());
  });
  return router;
}
