/**
 * POST /anthropic/tool_use: a `tool_use` block of Anthropic's built-in tools, as the model produced it, run on a
 * project; the answer is the `tool_result` block to append to the conversation. `str_replace_based_edit_tool`
 * (text_editor_20250728) runs on the file tools (lib/providers/text-editor.ts); `bash` (bash_20250124) runs on the
 * project's persistent shell session keyed by `session`. What the model must act on (a path that does not exist,
 * old_str not found, a timeout) is a tool_result with is_error true; only a request the route cannot take (no such
 * project, not a tool_use block, a tool it does not run) is an HTTP error.
 */
import express from 'express';
import { ToolhostError } from '../../lib/errors.js';
import { anthropicToolResultBlock, anthropicToolUseRequest, BASH_NAME, EDITOR_NAME, toolResultBlock } from '../../lib/providers/anthropic-types.js';
import { bashText } from '../../lib/providers/shell-answers.js';
import { type EditorToolName, type ProviderResult, passesThrough, runTextEditor } from '../../lib/providers/text-editor.js';
import type { AppDeps } from './deps.js';
import { clientError, jsonSchemaOf, PROVIDER_ROUTE_ERRORS, type ProviderRouteDoc, projectRoots, refuseOnWorker, toolRunner } from './provider-calls.js';
import { shellCall } from './session-tools.js';
import { clientGone, type ToolCall } from './tools.js';
import { jsonBody, validate } from './validate.js';

const ROUTE = 'POST /anthropic/tool_use';

/** POST /anthropic/tool_use. */
export function anthropicRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  router.post('/anthropic/tool_use', jsonBody(d.config.http.maxBodyBytes), async (req, res) => {
    refuseOnWorker(d);
    const body = validate(anthropicToolUseRequest, req.body, ROUTE);
    const { block } = body;
    const call: ToolCall = { signal: clientGone(res), requestId: res.locals.requestId as string | undefined };
    let result: ProviderResult;
    if (block.name === EDITOR_NAME) {
      const run = toolRunner(d, body.project_id, call, res);
      result = await runTextEditor(block.input, {
        run: (tool: EditorToolName, args) => run(tool, args),
        roots: projectRoots(d, body.project_id),
        config: d.config,
      });
    } else if (block.name === BASH_NAME) {
      result = await bash(d, body.project_id, body.session, block.input, call, res);
    } else {
      throw new ToolhostError(
        'bad_request',
        `${ROUTE} runs Anthropic's built-in tools "${EDITOR_NAME}" and "${BASH_NAME}" (GET /tools?format=anthropic-builtin), not "${block.name.slice(0, 100)}"; run toolhost's own tools with POST /tools/{name}/call?format=anthropic`,
      );
    }
    if (call.worker) res.setHeader('X-Toolhost-Worker', call.worker);
    res.json(toolResultBlock(block.id, result.content, result.isError));
  });
  return router;
}

/**
 * The bash tool on the project's session keyed by `session`: `restart` restarts its shell (then runs `command`,
 * if one came too), `command` runs on it. Errors of the run (a session limit, a command that cannot start) are
 * the model's to read; those of the request are thrown.
 */
async function bash(
  d: AppDeps,
  projectId: string,
  session: string | undefined,
  input: unknown,
  call: ToolCall,
  res: express.Response,
): Promise<ProviderResult> {
  const args = typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : {};
  const restart = args.restart === true;
  const command = typeof args.command === 'string' && args.command.trim() !== '' ? args.command : undefined;
  if (!restart && command === undefined) return { content: [{ type: 'text', text: 'no command provided.' }], isError: true };
  try {
    const answer = await shellCall(d, { project_id: projectId, session, command, restart }, call);
    const { text, isError } = bashText(answer, restart);
    return { content: [{ type: 'text', text }], isError };
  } catch (err) {
    const e = clientError(res, err);
    if (passesThrough(e.code)) throw e;
    return { content: [{ type: 'text', text: e.message }], isError: true };
  }
}

/** How OpenAPI documents the route. */
export const ANTHROPIC_ROUTE_DOC: ProviderRouteDoc = {
  method: 'post',
  path: '/anthropic/tool_use',
  operationId: 'anthropic_tool_use',
  summary: 'Run an Anthropic built-in tool call (text editor, bash); answers the tool_result block to append',
  description:
    'The block is a tool_use content block of str_replace_based_edit_tool (text_editor_20250728: view, create, str_replace, insert) or bash (bash_20250124: command, restart), as the model produced it. Paths starting with "/" (or with the project root as commands see it) are taken relative to the project root. bash runs on the persistent shell session keyed by `session`. What the model must act on comes back as is_error true; only a request the route cannot take is an HTTP error.',
  body: {
    contentType: 'application/json',
    schema: jsonSchemaOf(anthropicToolUseRequest, 'input'),
    description: 'The project, the session key, and the tool_use block.',
  },
  ok: { '200': { description: 'The tool_result block.', schema: jsonSchemaOf(anthropicToolResultBlock, 'output') } },
  errors: [...PROVIDER_ROUTE_ERRORS],
};
