/**
 * Calling the catalog's tools the way an LLM host would: from the routes map GET /tools returns, and with example
 * arguments that need a live job (a `job_id`) pointed at a real one.
 */
import type { ApiResponse, FileMap, TestServer } from './harness.js';

/** A project the catalog's examples run against (project_id "demo"). */
export const DEMO_FILES: FileMap = {
  'src/app.ts': 'import http from "node:http";\nconst port = 3000;\n// TODO(ana): retry\nhttp.createServer().listen(port);\n',
  'README.md': '# demo\n',
};

/** The route of a tool, as GET /tools lists it. */
export interface ToolRoute {
  method: string;
  path: string;
}

/** Calls a tool over its HTTP route: `{field}` from the arguments, the rest as JSON body (POST) or query. */
export async function callRoute(s: TestServer, route: ToolRoute, args: Record<string, unknown>): Promise<ApiResponse> {
  const rest = { ...args };
  let path = route.path.replace(/\{(\w+)\}/g, (_m, field: string) => {
    const v = String(rest[field]);
    delete rest[field];
    return encodeURIComponent(v);
  });
  if (route.method === 'POST') return s.api(path, rest);
  const query = new URLSearchParams(Object.entries(rest).map(([k, v]) => [k, String(v)])).toString();
  if (query) path += `?${query}`;
  return s.api(path, undefined, { method: route.method });
}

/** Starts a command that waits on stdin (for the job_* examples); returns its job_id. */
export async function startStdinJob(s: TestServer): Promise<string> {
  const r = await s.api('/execute', { project_id: 'demo', command: 'echo ready; cat', background: true, stdin: 'pipe' });
  if (r.status !== 200 || typeof r.body.job_id !== 'string') throw new Error(`could not start a job: ${JSON.stringify(r.body)}`);
  return r.body.job_id as string;
}

/** The example with its `job_id` pointed at `jobId`. */
export function withJob(example: Record<string, unknown>, jobId: string): Record<string, unknown> {
  return 'job_id' in example ? { ...example, job_id: jobId } : example;
}

let made = 0;

/**
 * The example made live: its `job_id` pointed at `jobId`, a `checkpoint_id` at a checkpoint of its project taken
 * now (the project created, empty, when there is none), and a `new_project_id` made unique (a fork of one name
 * cannot be made twice).
 */
export async function liveArgs(s: TestServer, example: Record<string, unknown>, jobId: string): Promise<Record<string, unknown>> {
  const args = { ...withJob(example, jobId) };
  if (typeof args.new_project_id === 'string') args.new_project_id = `${args.new_project_id}-${++made}`;
  if (typeof args.checkpoint_id === 'string') {
    const project = String(args.project_id);
    if ((await s.api(`/projects/${project}`)).status === 404) await s.api(`/projects/${project}`, {});
    const r = await s.api(`/projects/${project}/checkpoints`, {});
    if (r.status !== 200) throw new Error(`could not take a checkpoint of ${project}: ${JSON.stringify(r.body)}`);
    args.checkpoint_id = r.body.checkpoint_id;
  }
  return args;
}
