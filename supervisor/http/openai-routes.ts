/**
 * POST /openai/tool_call: an output item of OpenAI's built-in tools in the Responses API, as the model produced it,
 * run on a project; the answer is the output item to append to the next request's input. An `apply_patch_call`
 * runs on the apply_patch tool (all or nothing) and gets an `apply_patch_call_output` ("failed" with the reason
 * when the patch did not apply); a `shell_call` runs its commands in order on the project's persistent shell
 * session keyed by `session` and gets a `shell_call_output` with `{stdout, stderr, outcome}` per command. Only a
 * request the route cannot take (no such project, an item type it does not run, a malformed item) is an HTTP error.
 */
import express from 'express';
import { MAX_BUDGET_FACTOR } from '../../handlers/command-text.js';
import { ToolhostError } from '../../lib/errors.js';
import {
  type ApplyPatchCallItem,
  type ApplyPatchCallOutput,
  applyPatchCallItem,
  applyPatchCallOutput,
  OPENAI_ITEM_TYPES,
  openAIToolCallRequest,
  type ShellCallItem,
  type ShellCallOutput,
  shellCallItem,
  shellCallOutput,
} from '../../lib/providers/openai-types.js';
import { projectRelative } from '../../lib/providers/project-paths.js';
import { type ShellCallOutputContent, type ShellRun, shellOutputContent } from '../../lib/providers/shell-answers.js';
import { passesThrough } from '../../lib/providers/text-editor.js';
import { modelContent } from '../../lib/tool.js';
import type { AppDeps } from './deps.js';
import { clientError, jsonSchemaOf, PROVIDER_ROUTE_ERRORS, type ProviderRouteDoc, projectRoots, refuseOnWorker, toolRunner } from './provider-calls.js';
import { shellCall } from './session-tools.js';
import { clientGone, findTool, type ToolCall } from './tools.js';
import { jsonBody, validate } from './validate.js';

const ROUTE = 'POST /openai/tool_call';

/** Most a shell_call's command waits before its answer says it still runs (the execute tool's own bound on wait_s). */
const MAX_WAIT_S = 190;

/** POST /openai/tool_call. */
export function openAIRoutes(d: AppDeps): express.Router {
  const router = express.Router();
  router.post('/openai/tool_call', jsonBody(d.config.http.maxBodyBytes), async (req, res) => {
    refuseOnWorker(d);
    const body = validate(openAIToolCallRequest, req.body, ROUTE);
    const call: ToolCall = { signal: clientGone(res), requestId: res.locals.requestId as string | undefined };
    let answer: ApplyPatchCallOutput | ShellCallOutput;
    if (body.item.type === 'apply_patch_call') {
      answer = await applyPatch(d, body.project_id, validate(applyPatchCallItem, body.item, `${ROUTE} item`), call, res);
    } else if (body.item.type === 'shell_call') {
      answer = await shell(d, body.project_id, body.session, validate(shellCallItem, body.item, `${ROUTE} item`), call, res);
    } else {
      throw new ToolhostError(
        'bad_request',
        `${ROUTE} runs the Responses API items ${OPENAI_ITEM_TYPES.join(' and ')}, not "${body.item.type.slice(0, 100)}"; run toolhost's function tools with POST /tools/{name}/call?format=openai-responses`,
      );
    }
    if (call.worker) res.setHeader('X-Toolhost-Worker', call.worker);
    res.json(answer);
  });
  return router;
}

/** An apply_patch_call on the apply_patch tool: "completed" with what it did, or "failed" with why (nothing changed). */
async function applyPatch(d: AppDeps, projectId: string, item: ApplyPatchCallItem, call: ToolCall, res: express.Response): Promise<ApplyPatchCallOutput> {
  const tool = findTool('apply_patch');
  if (!tool) throw new ToolhostError('internal', 'the apply_patch tool is missing from this build');
  // The API names paths relative to the workspace root; an absolute one (or one under the root as commands see it)
  // is taken relative to the project root, as the text editor's are.
  const op = item.operation;
  const path = projectRelative(op.path, projectRoots(d, projectId));
  const operation = op.type === 'delete_file' ? { type: op.type, path } : { type: op.type, path, diff: op.diff };
  const input = { operations: [operation] };
  try {
    const value = await toolRunner(d, projectId, call, res)('apply_patch', input);
    const parsed = tool.input.safeParse({ ...input, project_id: projectId });
    const text = modelContent(tool, value, parsed.success ? parsed.data : input, d.config)
      .flatMap((c) => (c.type === 'text' ? [c.text] : []))
      .join('\n');
    return { type: 'apply_patch_call_output', call_id: item.call_id, status: 'completed', output: text };
  } catch (err) {
    const e = err instanceof ToolhostError ? err : clientError(res, err);
    if (passesThrough(e.code)) throw e;
    return { type: 'apply_patch_call_output', call_id: item.call_id, status: 'failed', output: e.message };
  }
}

/**
 * A shell_call's commands, in order, on the session keyed by `session`: each with the call's timeout and output
 * bound. A non-zero exit does not stop the rest; a timeout, a command still running when the wait ended, or one
 * toolhost could not run does, since the commands after it may rely on it.
 */
async function shell(
  d: AppDeps,
  projectId: string,
  session: string | undefined,
  item: ShellCallItem,
  call: ToolCall,
  res: express.Response,
): Promise<ShellCallOutput> {
  const { commands, timeout_ms: timeoutMs, max_output_length: maxLength } = item.action;
  const timeoutS = timeoutMs ? Math.min(timeoutMs / 1000, d.config.commands.maxTimeoutS) : undefined;
  const waitS = Math.min(MAX_WAIT_S, (timeoutS ?? d.config.commands.defaultTimeoutS) + d.config.commands.killGraceS + 2);
  // toolhost cuts output head and tail to a budget of at least 1000 characters; a smaller max_output_length is
  // applied to what that leaves.
  const budget = maxLength ? Math.min(Math.max(maxLength, 1000), MAX_BUDGET_FACTOR * d.config.budgets.outputChars) : undefined;
  const output: ShellCallOutputContent[] = [];
  for (const command of commands) {
    let run: ShellRun;
    try {
      run = await shellCall(d, { project_id: projectId, session, command, timeout_s: timeoutS, wait_s: waitS, max_output_chars: budget }, call);
    } catch (err) {
      const e = clientError(res, err);
      if (passesThrough(e.code)) throw e;
      output.push({ stdout: '', stderr: `[toolhost: the command did not run: ${e.code}: ${e.message}]\n`, outcome: { type: 'exit', exit_code: 126 } });
      break;
    }
    const { content, goOn } = shellOutputContent(run, maxLength ?? undefined);
    output.push(content);
    if (!goOn) break;
  }
  return { type: 'shell_call_output', call_id: item.call_id, max_output_length: maxLength ?? null, output };
}

/** How OpenAPI documents the route. */
export const OPENAI_ROUTE_DOC: ProviderRouteDoc = {
  method: 'post',
  path: '/openai/tool_call',
  operationId: 'openai_tool_call',
  summary: 'Run an OpenAI built-in tool call (apply_patch, shell) of the Responses API; answers the output item to append',
  description:
    'The item is an apply_patch_call (operation create_file, update_file with a V4A diff, or delete_file) or a shell_call (action: commands, timeout_ms, max_output_length), as the model produced it. An apply_patch_call is answered with an apply_patch_call_output (status "failed" and the reason when the patch did not apply: nothing changed); a shell_call with a shell_call_output, its commands run in order on the persistent shell session keyed by `session`. Any other item type is a 400 naming the supported ones.',
  body: {
    contentType: 'application/json',
    schema: jsonSchemaOf(openAIToolCallRequest, 'input'),
    description: 'The project, the session key, and the output item.',
  },
  ok: {
    '200': {
      description: 'The output item: apply_patch_call_output or shell_call_output.',
      schema: { oneOf: [jsonSchemaOf(applyPatchCallOutput, 'output'), jsonSchemaOf(shellCallOutput, 'output')] },
    },
  },
  errors: [...PROVIDER_ROUTE_ERRORS],
};
