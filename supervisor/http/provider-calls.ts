/**
 * What the provider routes (anthropic-routes.ts, openai-routes.ts) share: running a toolhost tool by name for a
 * built-in tool call (its input checked by its own schema, then callTool, so the queue, locks, containment and dirty
 * marks apply), the project root's absolute forms (for the paths the built-in tools send), and how such a route is
 * described in OpenAPI.
 */
import { realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Response } from 'express';
import { z } from 'zod';
import { type ErrorCode, ToolhostError } from '../../lib/errors.js';
import type { JsonSchema } from '../../lib/tool-formats.js';
import type { AppDeps } from './deps.js';
import { errorBody } from './errors.js';
import { callTool, findTool, type ToolCall } from './tools.js';
import { toolInput } from './validate.js';

/** Runs the tool named `name` on the project with `args`; its error comes back as the client may see it. */
export type ToolRunner = (name: string, args: Record<string, unknown>) => Promise<unknown>;

/**
 * A runner of tools on `projectId` for a provider route. An error is rethrown as the ToolhostError a client may
 * see (errorBody: an internal one logged and named by the request id, the data directory scrubbed from messages),
 * so what the model reads is what any other route would have answered.
 */
export function toolRunner(d: AppDeps, projectId: string, call: ToolCall, res: Response): ToolRunner {
  return async (name, args) => {
    try {
      const tool = findTool(name);
      if (!tool) throw new ToolhostError('internal', `the ${name} tool is missing from this build`);
      const input = toolInput(tool.input, { ...args, project_id: projectId }, `the ${name} call`);
      return await callTool(d, tool, input, call);
    } catch (err) {
      throw clientError(res, err);
    }
  };
}

/** The error `err` as the client may see it: its code, its message and details as errorBody gives them. */
export function clientError(res: Response, err: unknown): ToolhostError {
  const { code, message, ...details } = errorBody(res, err).error;
  return new ToolhostError(code, message, details);
}

/**
 * The absolute paths of the project's working copy, as commands see it (`pwd` in a fresh shell) and as the data
 * directory names it: `<dataDir>/projects/<id>`, resolved through symlinks first. Only where this process shares
 * the data directory of the worker holding the copy (role "all") do they name the copy; elsewhere they name
 * nothing and only "/"-rooted and relative paths are understood.
 */
export function projectRoots(d: AppDeps, projectId: string): string[] {
  const dataDir = resolve(d.config.dataDir);
  const real = realDataDir(dataDir);
  return [...new Set([join(real, 'projects', projectId), join(dataDir, 'projects', projectId)])];
}

const realDirs = new Map<string, string>();
/** The data directory through its symlinks, resolved once per process (not a sync call on the loop per request). */
function realDataDir(dataDir: string): string {
  let real = realDirs.get(dataDir);
  if (real === undefined) {
    try {
      real = realpathSync(dataDir);
      realDirs.set(dataDir, real);
    } catch {
      return dataDir; // no data directory here yet (an api process may have none): the configured path is all there is
    }
  }
  return real;
}

/** Refuses a provider call on a worker process, which takes no tool calls (as POST /tools/{name}/call). */
export function refuseOnWorker(d: AppDeps): void {
  if (d.config.role === 'worker') {
    throw new ToolhostError('not_on_this_role', 'this process has role "worker" and takes no tool calls; send them to a process with role "api" (or "all")');
  }
}

/** A provider route as OpenAPI documents it (the shape of openapi.ts's route table). */
export interface ProviderRouteDoc {
  method: 'post';
  path: string;
  operationId: string;
  summary: string;
  description: string;
  body: { contentType: string; schema: JsonSchema; description: string };
  ok: Record<string, { description: string; schema: JsonSchema }>;
  errors: readonly ErrorCode[];
}

/** Errors a provider route answers as HTTP errors: the request itself is wrong, or the server cannot take it. */
export const PROVIDER_ROUTE_ERRORS: readonly ErrorCode[] = [
  'bad_request',
  'unknown_field',
  'invalid_json',
  'unsupported_media_type',
  'payload_too_large',
  'project_not_found',
  'not_on_this_role',
  'shutting_down',
  'internal',
];

/** A zod schema as JSON Schema, for OpenAPI. */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}
