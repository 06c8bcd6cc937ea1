/**
 * POST /tools/{name}/call?format=anthropic|openai|openai-responses|text: one tool call as a tool-calling client
 * has it (the body is the arguments exactly as the model produced them), answered with what the client appends to
 * the conversation (lib/tool-results.ts): the tool's answer as a model reads it (`modelContent`), in that
 * provider's shape. The call takes the same path as the tool's own route (callTool).
 *
 * A failed call is not an HTTP error here: the model must see what went wrong, so it answers 200 with is_error
 * true and the JSON error body as text, as MCP does. Only a request this endpoint cannot take at all (an unknown
 * tool, a bad format, auth, a body that is not JSON) is an HTTP error.
 */
import express from 'express';
import { z } from 'zod';
import { ToolhostError } from '../../lib/errors.js';
import { CALL_FORMATS, toolResult } from '../../lib/tool-results.js';
import type { AppDeps } from './deps.js';
import { callForModel, clientGone, findModelTool, MODEL_TOOLS, type ToolCall } from './tools.js';
import { jsonBody, validate } from './validate.js';

/** The query of POST /tools/{name}/call. */
export const callQuery = z.strictObject({
  format: z
    .enum(CALL_FORMATS)
    .default('openai')
    .describe(
      'Result shape: "openai" (a Chat Completions tool message content, images in user_message), "openai-responses" (a function_call_output output), "anthropic" (a tool_result content and is_error) or "text".',
    ),
});

/** POST /tools/{name}/call. */
export function callRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  router.post('/tools/:name/call', jsonBody(d.config.http.maxBodyBytes), async (req, res) => {
    if (d.config.role === 'worker') {
      throw new ToolhostError('not_on_this_role', 'this process has role "worker" and takes no tool calls; send them to a process with role "api" (or "all")');
    }
    const { format } = validate(callQuery, { ...req.query }, 'POST /tools/{name}/call query');
    const name = String(req.params.name);
    const tool = findModelTool(name);
    if (!tool) {
      throw new ToolhostError('not_found', `no tool named "${name.slice(0, 100)}"; GET /tools lists them: ${MODEL_TOOLS.map((t) => t.name).join(', ')}`);
    }
    const call: ToolCall = { signal: clientGone(res), requestId: res.locals.requestId as string | undefined };
    const { items, isError } = await callForModel(d, tool, req.body ?? {}, call, res);
    if (call.worker) res.setHeader('X-Toolhost-Worker', call.worker);
    res.json(toolResult(tool.name, items, isError, format));
  });
  return router;
}
