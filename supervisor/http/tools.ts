/**
 * Every tool an agent can call and its HTTP route; the one way to call a tool is call-tool.ts's.
 *
 * A tool's route comes from its definition: a `{field}` of the path takes that input field, the other fields come
 * from the JSON body (POST) or the query string (GET, DELETE). Errors reach the app's error handler (Express 5
 * forwards a rejected handler).
 */
import express, { type Request, type Response } from 'express';
import type { z } from 'zod';
import { JOB_TOOLS } from '../../handlers/index.js';
import { ToolhostError } from '../../lib/errors.js';
import { callTool, type Tool } from './call-tool.js';
import type { AppDeps } from './deps.js';
import { JOB_API_TOOLS } from './job-tools.js';
import { PROJECT_TOOLS } from './project-tools.js';
import { SHELL_TOOLS } from './session-tools.js';
import { jsonBody, toolInput } from './validate.js';

export { callForModel, callTool, newJob, type Tool } from './call-tool.js';
export type { ToolCall } from './deps.js';

/** Every tool, in the order models see them. */
export const TOOLS: readonly Tool[] = [...JOB_TOOLS, ...SHELL_TOOLS, ...JOB_API_TOOLS, ...PROJECT_TOOLS];

/** The tools models are offered (GET /tools, MCP, POST /tools/{name}/call): all but the HTTP API's own. */
export const MODEL_TOOLS: readonly Tool[] = TOOLS.filter((t) => t.models !== false);

/** The tool of that name, if any. */
export function findTool(name: string): Tool | undefined {
  return TOOLS.find((t) => t.name === name);
}

/** The tool of that name that models are offered, if any. */
export function findModelTool(name: string): Tool | undefined {
  return MODEL_TOOLS.find((t) => t.name === name);
}

/** Routes for every tool. */
export function toolRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  const json = jsonBody(d.config.http.maxBodyBytes);
  for (const tool of TOOLS) {
    const { method, path } = tool.route;
    const expressPath = path.replace(/\{(\w+)\}/g, ':$1');
    const serve = async (req: Request, res: Response): Promise<void> => {
      const ids = pathFields(tool, req);
      const fields: unknown = method === 'POST' ? req.body : { ...req.query };
      const input = toolInput(tool.input, isObject(fields) ? { ...fields, ...ids } : fields, `${method} ${path}`);
      const call = { signal: clientGone(res), requestId: res.locals.requestId as string | undefined, worker: undefined as string | undefined };
      const result = await callTool(d, tool, input, call);
      if (call.worker) res.setHeader('X-Toolhost-Worker', call.worker);
      res.json(result);
    };
    if (method === 'POST') router.post(expressPath, json, serve);
    else if (method === 'GET') router.get(expressPath, serve);
    else router.delete(expressPath, serve);
  }
  return router;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The route's path fields. A malformed one names nothing that exists: it is answered with the route's
 * `notFound` code (a job id that cannot be one is job_not_found).
 */
function pathFields(tool: Tool, req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, value] of Object.entries(req.params as Record<string, string>)) {
    const schema = (tool.input.shape as Record<string, z.ZodType>)[field];
    if (schema && !schema.safeParse(value).success) {
      const { notFound } = tool.route;
      const code = (typeof notFound === 'string' ? notFound : notFound?.[field]) ?? 'bad_request';
      throw new ToolhostError(code, `"${value}" is not a ${field}; use a ${field} the API returned`);
    }
    out[field] = value;
  }
  return out;
}

/** A signal that fires when the client closes the connection before the answer was sent. */
export function clientGone(res: Response): AbortSignal {
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort(new ToolhostError('bad_request', 'client closed the connection'));
  });
  return gone.signal;
}
