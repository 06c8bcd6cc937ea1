/** Machine-readable descriptions of the API: LLM tool definitions (GET /tools) and OpenAPI (GET /openapi.json). */
import express from 'express';
import { anthropicBuiltinTools } from '../../lib/providers/anthropic-types.js';
import * as schemas from '../../lib/schemas.js';
import { toolDefinition } from '../../lib/tool-formats.js';
import type { AppDeps } from './deps.js';
import { openApiDocument } from './openapi.js';
import { MODEL_TOOLS } from './tools.js';
import { validate } from './validate.js';

const ANTHROPIC_TOOL_USE = { method: 'POST', path: '/anthropic/tool_use' } as const;

/** GET /tools?format=openai|openai-responses|anthropic|anthropic-builtin, GET /openapi.json. Both read the configuration in effect. */
export function docsRoutes(d: AppDeps): express.Router {
  const router = express.Router();

  router.get('/tools', (req, res) => {
    const { format } = validate(schemas.toolsQuery, { ...req.query }, 'GET /tools query');
    if (format === 'anthropic-builtin') {
      // Anthropic's own tool types: the model knows their schemas; POST /anthropic/tool_use runs their calls.
      const tools = anthropicBuiltinTools(d.config);
      res.json({ format, tools, routes: Object.fromEntries(tools.map((t) => [t.name, ANTHROPIC_TOOL_USE])), call: 'POST /anthropic/tool_use' });
      return;
    }
    res.json({
      format,
      tools: MODEL_TOOLS.map((t) => toolDefinition(t, d.config, format)),
      // How to run a call over HTTP: `{field}` in a path takes that argument; the other arguments are the JSON
      // body (POST) or the query string (GET, DELETE).
      routes: Object.fromEntries(MODEL_TOOLS.map((t) => [t.name, { method: t.route.method, path: t.route.path }])),
      // Or run a model's tool call as it is, answered in this provider's tool-result shape (call-routes.ts).
      call: `POST /tools/{name}/call?format=${format}`,
    });
  });

  router.get('/openapi.json', (req, res) => {
    res.json(openApiDocument(d.config, `${req.protocol}://${req.get('host') ?? `${d.config.host}:${d.config.port}`}`));
  });
  return router;
}
