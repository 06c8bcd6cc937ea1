/**
 * What a tool is. Each tool is one declarative definition, in one file: its request and response schemas, its
 * HTTP route, its description for a model, the limits that depend on the configuration, and how it runs. The
 * HTTP routes, GET /tools, GET /openapi.json, POST /mcp and the pool threads' handler registry are all derived
 * from these definitions, so adding a tool is one new file (and its tests) plus its line in a registry.
 *
 * Four kinds of tool share the {@link ToolBase}:
 *   - a pool tool ({@link PoolTool}) is queued as a job and runs on a pool thread (handlers/);
 *   - a session tool ({@link SessionTool}) is queued as a job and runs on the project's persistent shells;
 *   - a project-op tool ({@link ProjectOpTool}) is queued as a job and done by the project cache of the worker
 *     holding the project (checkpoints, restore, fork);
 *   - a supervisor tool answers from the supervisor itself (the jobs API, supervisor/http/job-tools.ts).
 */
import type { MessagePort } from 'node:worker_threads';
import type { z } from 'zod';
import type { Config } from '../config/schema.js';
import type { ErrorCode } from './errors.js';

/** The part every tool has. */
export interface ToolBase<In extends z.ZodObject = z.ZodObject, Out extends z.ZodType = z.ZodType> {
  /** The name models call it by: ^[a-zA-Z0-9_-]{1,64}$. */
  name: string;
  /** A short human title (MCP clients show it). */
  title: string;
  /**
   * The HTTP route that serves the tool. A `{field}` in the path takes that input field; the other fields go in
   * the query string (GET, DELETE) or the JSON body (POST). `notFound` is the error of a path field that is
   * malformed, and so names nothing that exists; a route with several path fields may give one per field.
   */
  route: { method: 'GET' | 'POST' | 'DELETE'; path: string; notFound?: ErrorCode | Readonly<Record<string, ErrorCode>> };
  /** The request schema: HTTP, MCP and the provider formats validate with it and document it. */
  input: In;
  /** The response schema: OpenAPI types every answer with it, and the tests hold every answer to it. */
  output: Out;
  /** True when the tool never changes the project or a job. */
  readOnly: boolean;
  /**
   * False for a tool of the HTTP API only (OpenAPI documents it) that models are not offered: GET /tools, MCP and
   * POST /tools/{name}/call leave it out (the session routes, which models reach through the `shell` tool).
   */
  models?: false;
  /** What the tool does, when to use it and its limits, for the model. */
  describe(config: Config): string;
  /** Error codes this tool can end with, besides {@link COMMON_ERRORS}. */
  errors: readonly ErrorCode[];
  /** Descriptions of input fields that the schema leaves undocumented. */
  hints?: Readonly<Record<string, string>>;
  /** Valid calls; a `job_id` in them stands for a job the caller started. Tests run every one. */
  examples: readonly z.input<In>[];
  /** Bounds that depend on the configuration, checked before the tool runs: a message saying what to ask for. */
  limits?(input: z.output<In>, config: Config): string | undefined;
  /**
   * The answer as a model reads it (MCP content, POST /tools/{name}/call): plain text with the facts first,
   * within the tool's budget, and where something was left out one line saying how to get the rest. Without it,
   * the answer's JSON. The HTTP JSON answer is the output schema's, unchanged.
   */
  toModel?(output: z.input<Out>, input: z.output<In>, config: Config): ModelContent[];
}

/** What a model receives of an answer: text, and images (file_read of a png). */
export type ModelContent = { type: 'text'; text: string } | { type: 'image'; mediaType: string; data: string };

/** `value`, the answer of `tool` to `input`, as a model reads it. */
export function modelContent(tool: ToolBase, value: unknown, input: Record<string, unknown>, config: Config): ModelContent[] {
  return tool.toModel ? tool.toModel(value, input, config) : [{ type: 'text', text: JSON.stringify(value) }];
}

/**
 * Lanes keep short jobs from waiting behind long ones: commands run in their own lane on their own pool, so a
 * read, list or search never competes with a command for a slot or a thread. A job of the commands lane is a
 * command job: it has a record (status, output logs, stdin, cancel) that outlives its request.
 */
export type Lane = 'commands' | 'files';

/** What every queued tool declares about its jobs. */
export interface JobSpec<In extends z.ZodObject> {
  /** The job type on the queue (and in logs and metrics). */
  type: string;
  lane: Lane;
  /** Changes the project: marks the working copy dirty first, and is never run again silently after a crash. */
  mutates: boolean;
  /** The project path whose jobs run one at a time (a write or an edit of one file), if any. */
  lockPath?(input: z.output<In>): string;
  /** The project the job runs in, for input that names it otherwise than by `project_id` (a session id). */
  project?(input: z.output<In>): string;
}

/** A tool that is queued as a job and runs on a pool thread. */
export interface PoolTool<In extends z.ZodObject = z.ZodObject, Out extends z.ZodType = z.ZodType, Res = z.input<Out>> extends ToolBase<In, Out> {
  job: JobSpec<In> & {
    /**
     * The implementation, on a pool thread. Its result is the caller's answer, except for a command, whose result
     * (the facts of its run) its record turns into the answer (supervisor/command-jobs.ts).
     */
    handler(req: z.output<In>, ctx: HandlerContext): Promise<Res>;
  };
}

/** What a session tool's job does to the project's persistent shells (supervisor/sessions.ts does it). */
export type SessionOp = 'create' | 'exec' | 'restart' | 'end' | 'list';

/**
 * A tool that is queued as a job and runs on the project's persistent shell sessions: the worker holding the
 * project does it with its session registry (an exec in the thread that hosts the session's shell).
 */
export interface SessionTool<In extends z.ZodObject = z.ZodObject, Out extends z.ZodType = z.ZodType> extends ToolBase<In, Out> {
  job: JobSpec<In> & { session: SessionOp };
}

/** What a project-op tool's job does to the project's working copy and store (supervisor/project-ops.ts does it). */
export type ProjectOp = 'checkpoint_create' | 'checkpoint_list' | 'checkpoint_restore' | 'project_fork';

/**
 * A tool that is queued as a job and done by the project cache of the worker holding the project: with the Azure
 * roles, a checkpoint, restore or fork reaches the one process whose working copy it must see.
 */
export interface ProjectOpTool<In extends z.ZodObject = z.ZodObject, Out extends z.ZodType = z.ZodType> extends ToolBase<In, Out> {
  job: JobSpec<In> & { projectOp: ProjectOp };
}

/** A tool that is queued as a job. */
export type JobTool = PoolTool | SessionTool | ProjectOpTool;

/** Checks a pool tool's definition against its schemas (and infers their types). */
export function jobTool<In extends z.ZodObject, Out extends z.ZodType, Res = z.input<Out>>(tool: PoolTool<In, Out, Res>): PoolTool<In, Out, Res> {
  return tool;
}

/** Checks a session tool's definition against its schemas (and infers their types). */
export function sessionTool<In extends z.ZodObject, Out extends z.ZodType>(tool: SessionTool<In, Out>): SessionTool<In, Out> {
  return tool;
}

/** Checks a project-op tool's definition against its schemas (and infers their types). */
export function projectOpTool<In extends z.ZodObject, Out extends z.ZodType>(tool: ProjectOpTool<In, Out>): ProjectOpTool<In, Out> {
  return tool;
}

/** The context of one job inside a pool thread. */
export interface HandlerContext {
  /** Absolute real path of the project's working copy. */
  root: string;
  /** The supervisor's validated configuration. */
  config: Config;
  /** Fires when the job must stop (its process tree is killed). */
  signal: AbortSignal;
  /** Job id, used to mark the processes a command starts. */
  jobId: string;
  /** The project the job runs in. */
  projectId: string;
  /** The job's channel to the supervisor, for commands: the handler posts progress messages on it. */
  port?: MessagePort | undefined;
  /**
   * Delivers input sent to the job's stdin, including what arrived before the handler subscribed (the
   * supervisor may forward input as soon as the job is handed to the thread).
   */
  onStdin?: ((sink: (m: { data: string; eof?: boolean | undefined }) => void) => void) | undefined;
}

/** A tool implementation: a plain async function from a validated request to a JSON-safe result. */
export type Handler<Req, Res> = (req: Req, ctx: HandlerContext) => Promise<Res>;

/** Errors any tool can end with. */
export const COMMON_ERRORS: readonly ErrorCode[] = ['bad_request', 'unknown_field', 'queue_full', 'shutting_down', 'internal'];

/** Errors of every tool that works in a project's files. */
export const PROJECT_ERRORS: readonly ErrorCode[] = ['project_not_found', 'path_outside_project', 'permission_denied', 'no_space'];
