/**
 * Persistent shell sessions, over HTTP: create one in a project, run commands on it one at a time (the working
 * directory, exported variables, functions, aliases and an activated virtualenv carry over), restart it, end it,
 * list a project's. They are session tools (lib/tool.ts): queued like any job, so they reach the worker that
 * holds the project, and done there by its session registry (supervisor/sessions.ts); an exec is a command job
 * (job_status follows it) whose shell lives in a pool thread (session-host.ts). Models get them as the `shell`
 * tool (supervisor/http/session-tools.ts), which keys sessions by name.
 */
import { z } from 'zod';
import { commandWait, PROJECT_ID_PATTERN, projectId, relPath, sessionName, shellCommand } from '../lib/schemas.js';
import { PROJECT_ERRORS, sessionTool } from '../lib/tool.js';
import { commandLimit, commandText, MAX_OUTPUT_CHARS_DOC } from './command-text.js';
import { commandView } from './command-view.js';
import { envField } from './execute.js';

/** `s_`, 24 hex digits, `_`, then the project id: any process can tell a session's project from its id. */
const SESSION_ID_PATTERN = new RegExp(`^s_[0-9a-f]{24}_${PROJECT_ID_PATTERN.source.slice(1)}`);
const PREFIX_LENGTH = 's_'.length + 24 + '_'.length;

export const sessionId = z
  .string()
  .max(200)
  .regex(SESSION_ID_PATTERN, 'must be a session_id that POST /sessions returned')
  .describe('The session, as POST /sessions returned it.');

/** The project of a well-formed session id. */
export function sessionProject(id: string): string {
  return id.slice(PREFIX_LENGTH);
}

/** What a session is, as the session routes show it. */
export const sessionInfo = z.strictObject({
  session_id: z.string(),
  project_id: z.string(),
  name: z.string().nullable(),
  cwd: z.string().describe('Where the shell started, relative to the project root (a restart goes back there).'),
  created_at: z.string(),
  last_used_at: z.string(),
  running_job_id: z.string().nullable().describe('The exec running now, if any (follow it with job_status).'),
  execs: z.number().int(),
  restarts: z.number().int().describe('Times the shell was started again (asked for, or after a command it did not survive).'),
});
export type SessionInfo = z.infer<typeof sessionInfo>;

const sessionErrors = ['session_not_found'] as const;

export const sessionCreateTool = sessionTool({
  name: 'session_create',
  title: 'Start a persistent shell session',
  route: { method: 'POST', path: '/sessions' },
  input: z.strictObject({
    project_id: projectId,
    cwd: relPath.optional().describe('Where the shell starts, relative to the project root (default: the root).'),
    env: envField.optional().describe('Variables the shell starts with.'),
    name: sessionName.describe('A name for the session, unique in the project: creating a session of a name that exists returns that one.').optional(),
  }),
  output: sessionInfo.extend({ created: z.boolean().describe('False when a session of this name existed and is returned instead.') }),
  readOnly: false,
  models: false,
  errors: [...PROJECT_ERRORS, 'file_not_found', 'not_a_directory', 'session_limit'],
  describe: ({ sessions: s }) =>
    'Start a persistent bash session in the project: commands sent to it with POST /sessions/{session_id}/exec run one at a time in the ' +
    'same shell, so the working directory, exported variables, functions, aliases and an activated virtualenv carry over. ' +
    `A session with no command running for ${s.idleMinutes} minutes ends; at most ${s.maxPerProject} per project and ${s.max} in all.`,
  examples: [{ project_id: 'demo', name: 'agent-1' }],
  job: { type: 'session_create', lane: 'files', mutates: false, session: 'create' },
});

export const sessionExecTool = sessionTool({
  name: 'session_exec',
  title: 'Run a command in a persistent shell session',
  route: { method: 'POST', path: '/sessions/{session_id}/exec', notFound: 'session_not_found' },
  input: z.strictObject({
    session_id: sessionId,
    command: shellCommand.describe("Shell command, run in the session's bash as if typed at its prompt."),
    timeout_s: z.number().positive().optional().describe("Kill the command's processes after this many seconds."),
    wait_s: commandWait.optional(),
    max_output_chars: z.number().int().min(1000).optional().describe(MAX_OUTPUT_CHARS_DOC),
  }),
  output: commandView,
  readOnly: false,
  models: false,
  errors: [...sessionErrors, 'session_busy', 'project_not_found'],
  describe: ({ commands: c }) =>
    "Run a command in the session's shell and answer as /execute does (exit_code, stdout, stderr, cut to the output budget; a command " +
    `still running after wait_s, default ${c.defaultWaitS} s, is answered with its job_id: follow it with job_status). stdin is /dev/null. ` +
    `After timeout_s (default ${c.defaultTimeoutS} s), or a cancel, the shell ends with the command; processes a command leaves running are killed when it ends. ` +
    "When the shell does not survive (a timeout, a cancel, exit), a fresh one takes its place and the answer's session.restarted says so.",
  limits: (req, config) => commandLimit(req, config),
  toModel: (view) => commandText(view),
  examples: [{ session_id: 's_0123456789abcdef01234567_demo', command: 'cd src && export MODE=test && pwd' }],
  job: { type: 'session_exec', lane: 'commands', mutates: true, session: 'exec', project: (i) => sessionProject(i.session_id) },
});

const byId = z.strictObject({ session_id: sessionId });

export const sessionRestartTool = sessionTool({
  name: 'session_restart',
  title: 'Restart a persistent shell session',
  route: { method: 'POST', path: '/sessions/{session_id}/restart', notFound: 'session_not_found' },
  input: byId,
  output: sessionInfo,
  readOnly: false,
  models: false,
  errors: [...sessionErrors],
  describe: () =>
    "Kill the session's shell and everything it runs, and start a fresh one where the session started (with its starting variables). " +
    'A command running on it is cancelled first.',
  examples: [{ session_id: 's_0123456789abcdef01234567_demo' }],
  job: { type: 'session_restart', lane: 'files', mutates: false, session: 'restart', project: (i) => sessionProject(i.session_id) },
});

export const sessionDeleteTool = sessionTool({
  name: 'session_delete',
  title: 'End a persistent shell session',
  route: { method: 'DELETE', path: '/sessions/{session_id}', notFound: 'session_not_found' },
  input: byId,
  output: z.strictObject({ session_id: z.string(), ended: z.literal(true) }),
  readOnly: false,
  models: false,
  errors: [...sessionErrors],
  describe: () => 'End the session: its shell and everything it runs are killed (a running command is cancelled first).',
  examples: [{ session_id: 's_0123456789abcdef01234567_demo' }],
  job: { type: 'session_delete', lane: 'files', mutates: false, session: 'end', project: (i) => sessionProject(i.session_id) },
});

export const sessionListTool = sessionTool({
  name: 'session_list',
  title: "List a project's shell sessions",
  route: { method: 'GET', path: '/sessions' },
  input: z.strictObject({ project_id: projectId }),
  output: z.strictObject({ sessions: z.array(sessionInfo) }),
  readOnly: true,
  models: false,
  errors: [],
  describe: () => "List the project's live shell sessions, oldest first.",
  examples: [{ project_id: 'demo' }],
  job: { type: 'session_list', lane: 'files', mutates: false, session: 'list' },
});

/** The session tools, in the order the API reference lists them. */
export const SESSION_TOOLS = [sessionCreateTool, sessionExecTool, sessionRestartTool, sessionDeleteTool, sessionListTool] as const;
