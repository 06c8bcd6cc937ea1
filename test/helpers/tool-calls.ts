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
