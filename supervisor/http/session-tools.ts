/**
 * The `shell` tool: a model's persistent shell. Sessions are found by name in the project (`session`, default
 * "default"; MCP makes it the client's own MCP session), made on first use, and each call runs one command on
 * one (or restarts it), through the session tools' jobs (handlers/session-tools.ts). `shellCall` is the same for
 * the provider routes (Anthropic's bash, OpenAI's shell_call).
 */
import { z } from 'zod';
import { commandLimit, commandText, MAX_OUTPUT_CHARS_DOC } from '../../handlers/command-text.js';
import { type CommandView, commandView } from '../../handlers/command-view.js';
import { type SessionInfo, sessionCreateTool, sessionExecTool, sessionRestartTool } from '../../handlers/session-tools.js';
import { ToolhostError, toToolhostError } from '../../lib/errors.js';
import { projectId, sessionName, shellCommand } from '../../lib/schemas.js';
import type { ModelContent } from '../../lib/tool.js';
import { callTool } from './call-tool.js';
import type { AppDeps, ToolCall } from './deps.js';
import { supervisorTool } from './job-tools.js';
import { toolInput } from './validate.js';

/** What a shell call asks for. */
export interface ShellCallInput {
  project_id: string;
  /** The session's name in the project (default "default"). */
  session?: string | undefined;
  command?: string | undefined;
  /** Restart the shell first (alone, without a command: only that). */
  restart?: boolean | undefined;
  timeout_s?: number | undefined;
  wait_s?: number | undefined;
  max_output_chars?: number | undefined;
}

/**
 * `view` is the command's answer (its `session` field says on which session), null for a restart alone;
 * `restarted` is true when the shell was restarted (asked for, or the command's timeout or an `exit` ended it).
 */
export interface ShellAnswer {
  session_id: string;
  restarted: boolean;
  view: CommandView | null;
}

/** The session of this name, made if there is none. */
async function namedSession(d: AppDeps, projectId: string, name: string, call: ToolCall): Promise<string> {
  const info = (await callTool(d, sessionCreateTool, { project_id: projectId, name }, call)) as SessionInfo;
  return info.session_id;
}

/** Runs a shell call: the named session (made on first use), restarted if asked, then the command on it. */
export async function shellCall(d: AppDeps, input: ShellCallInput, call: ToolCall = {}): Promise<ShellAnswer> {
  // Checked first, and here too: the provider routes hand over commands as the model wrote them (a NUL, a huge
  // timeout), and a refused command must not have restarted the shell.
  const exec =
    input.command === undefined
      ? undefined
      : toolInput(
          sessionExecTool.input.omit({ session_id: true }),
          { command: input.command, timeout_s: input.timeout_s, wait_s: input.wait_s, max_output_chars: input.max_output_chars },
          'shell command',
        );
  const over = exec && sessionExecTool.limits?.({ session_id: '', ...exec }, d.config);
  if (over) throw new ToolhostError('bad_request', over);
  const name = input.session ?? DEFAULT_SESSION;
  let id = await namedSession(d, input.project_id, name, call);
  if (input.restart) await callTool(d, sessionRestartTool, { session_id: id }, call);
  if (exec === undefined) return { session_id: id, restarted: input.restart === true, view: null };
  let view: CommandView;
  try {
    view = (await callTool(d, sessionExecTool, { session_id: id, ...exec }, call)) as CommandView;
  } catch (err) {
    // It ended between the lookup and the exec (idle, its project evicted): a fresh one of the name runs it.
    if (toToolhostError(err).code !== 'session_not_found') throw err;
    id = await namedSession(d, input.project_id, name, call);
    view = (await callTool(d, sessionExecTool, { session_id: id, ...exec }, call)) as CommandView;
  }
  return { session_id: id, restarted: input.restart === true || view.session?.restarted === true, view };
}

/** The session a shell call without `session` runs on. */
export const DEFAULT_SESSION = 'default';

const shellAnswer = z.strictObject({
  session_id: z.string(),
  restarted: z.boolean().describe('True when the shell was restarted (asked for, or it did not survive the command).'),
  result: commandView.nullable().describe("The command's answer, as /execute's; null for a restart alone."),
});

/** The text a model reads of a shell answer. */
export function shellText(a: { restarted: boolean; result: CommandView | null }): ModelContent[] {
  if (a.result) return commandText(a.result);
  return [{ type: 'text', text: a.restarted ? RESTARTED_TEXT : '(nothing to run: pass a command)' }];
}

const RESTARTED_TEXT = "The shell was restarted: a fresh bash in the session's starting directory, with its starting variables.";

export const shellTool = supervisorTool({
  name: 'shell',
  title: 'Run a command in a persistent shell',
  route: { method: 'POST', path: '/shell' },
  input: z.strictObject({
    project_id: projectId,
    command: shellCommand.optional().describe('Shell command, run as if typed at the prompt of a bash that stays open.'),
    restart: z.boolean().default(false).describe('Start a fresh shell first (alone: only that).'),
    session: sessionName
      .optional()
      .describe('Which shell of the project (default "default"; over MCP, one per MCP session): calls with the same name share one.'),
    timeout_s: z.number().positive().optional().describe("Kill the command's processes after this many seconds."),
    wait_s: z
      .number()
      .min(0)
      .max(190)
      .optional()
      .describe('How long this call waits; a command still running then is answered with its job_id and keeps running.'),
    max_output_chars: z.number().int().min(1000).optional().describe(MAX_OUTPUT_CHARS_DOC),
  }),
  output: shellAnswer,
  readOnly: false,
  errors: ['project_not_found', 'session_busy', 'session_limit'],
  describe: ({ commands: c, sessions: s }) =>
    'Run a command in a persistent bash shell of the project: the working directory, exported variables, functions, aliases and an ' +
    'activated virtualenv carry over from one call to the next (cd once, `source .venv/bin/activate` once). The first call starts the ' +
    'shell in the project root. Answers exit_code, stdout and stderr as execute does, within the same output budget. stdin is closed ' +
    '(pass -y flags instead of answering prompts). One command runs at a time per shell; processes a command leaves running are killed ' +
    `when it ends (use execute with background: true for servers). After timeout_s (default ${c.defaultTimeoutS} s) the command and its shell are ` +
    'killed; then, or when a command ends the shell (exit, set -e), a fresh shell replaces it and the answer says so. ' +
    `restart: true starts a fresh shell. A shell unused for ${s.idleMinutes} minutes ends.`,
  limits: (q, config) => {
    if (q.command === undefined && !q.restart) return 'pass a command to run, or restart: true to restart the shell';
    return commandLimit(q, config);
  },
  toModel: (a) => shellText(a),
  examples: [
    { project_id: 'demo', command: 'cd src && export MODE=test' },
    { project_id: 'demo', command: 'pwd && echo $MODE' },
  ],
  serve: async (d, q, call) => {
    const a = await shellCall(d, q, call);
    return { session_id: a.session_id, restarted: a.restarted, result: a.view };
  },
});

/** The tools of the sessions that models are offered. */
export const SHELL_TOOLS = [shellTool] as const;

/** `text` of a restart alone, for the provider routes that word it their own way. */
export { RESTARTED_TEXT };
