/** Operator routes: Prometheus metrics and live configuration reload. Both sit behind the bearer token. */
import express from 'express';
import type { AppDeps } from './app.js';
import { sendError } from './errors.js';

/** GET /metrics, POST /admin/reload. */
export function adminRoutes(d: AppDeps): express.Router {
  const router = express.Router();

  router.get('/metrics', async (_req, res) => {
    try {
      const { contentType, text } = await d.metrics.render();
      res.type(contentType).send(text);
    } catch (err) {
      sendError(res, err);
    }
  });

  router.post('/admin/reload', async (_req, res) => {
    try {
      res.json(await d.reload());
    } catch (err) {
      sendError(res, err);
    }
  });
  return router;
}
