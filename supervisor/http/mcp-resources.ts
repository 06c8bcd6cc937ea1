/**
 * A project's files as MCP resources, through one resource template: `toolhost://{project_id}/{path}`. A read is
 * a file_read call (the same queue, job and checks as the tool and its HTTP route), so a URI cannot reach what
 * the tool cannot: a path outside the project, through `..`, a symlink, an absolute path or percent-encoding, is
 * refused by the tool's own checks, and a malformed URI before any job is queued.
 *
 * resources/list lists nothing: a project's files are many and change under commands; file_list, file_glob and
 * search find them, and the template reads them.
 */
import type { ReadResourceResult, ResourceTemplate } from '@modelcontextprotocol/sdk/types.js';
import { ErrorCode as RpcErrorCode } from '@modelcontextprotocol/sdk/types.js';
import type { Response } from 'express';
import { ToolhostError, toToolhostError } from '../../lib/errors.js';
import { modelContent } from '../../lib/tool.js';
import type { AppDeps } from './deps.js';
import { errorBody } from './errors.js';
import { RpcError } from './mcp-content.js';
import { callTool, findTool, type ToolCall } from './tools.js';
import { toolInput } from './validate.js';

const SCHEME = 'toolhost://';

/** The one resource template. */
export const FILE_TEMPLATE: ResourceTemplate = {
  uriTemplate: `${SCHEME}{project_id}/{path}`,
  name: 'project_file',
  title: 'A file of a project',
  description:
    'A file of a project, by its path relative to the project root (its slashes plain or as %2F). Text files come ' +
    "back as text, images as base64 blobs; the same limits and checks as the file_read tool apply, and a cut text's " +
    '_meta says so (file_read reads on from end_line).',
};

/** MCP's "resource not found" (the spec's code; the SDK has no name for it). */
const RESOURCE_NOT_FOUND = -32002;

/** The project and path a `toolhost://` URI names, percent-decoded; a bad_request that says the form otherwise. */
export function parseFileUri(uri: string): { project_id: string; path: string } {
  const form = `use ${SCHEME}{project_id}/{path}, the path relative to the project root`;
  if (uri.slice(0, SCHEME.length).toLowerCase() !== SCHEME) throw new ToolhostError('bad_request', `"${clip(uri)}" is not a toolhost URI; ${form}`);
  const rest = uri.slice(SCHEME.length);
  if (/[?#]/.test(rest)) throw new ToolhostError('bad_request', `a toolhost URI has no query or fragment; percent-encode "?" as %3F and "#" as %23`);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) throw new ToolhostError('bad_request', `"${clip(uri)}" names no file; ${form}`);
  return { project_id: decode(rest.slice(0, slash)), path: decode(rest.slice(slash + 1)) };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ToolhostError('bad_request', `"${clip(s)}" is not valid percent-encoding; encode each byte as %XX`);
  }
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** Reads the file `uri` names with the file_read tool; its errors become JSON-RPC errors carrying the error body. */
export async function readFileResource(d: AppDeps, res: Response, uri: string, call: ToolCall): Promise<ReadResourceResult> {
  const tool = findTool('file_read');
  try {
    if (!tool) throw new ToolhostError('internal', 'the file_read tool is missing');
    const input = toolInput(tool.input, parseFileUri(uri), `resource ${clip(uri)}`);
    const value = await callTool(d, tool, input, call);
    const image = modelContent(tool, value, input, d.config).find((c) => c.type === 'image');
    if (image) return { contents: [{ uri, mimeType: image.mediaType, blob: image.data }] };
    const { content, ...facts } = isRecord(value) ? value : {};
    if (typeof content !== 'string') throw new ToolhostError('internal', 'file_read answered without content');
    const cut =
      facts.truncated === true ||
      (Array.isArray(facts.cut_lines) && facts.cut_lines.length > 0) ||
      (typeof facts.end_line === 'number' && typeof facts.total_lines === 'number' && facts.end_line < facts.total_lines);
    return { contents: [{ uri, mimeType: textMime(String(input.path)), text: content, ...(cut ? { _meta: facts } : {}) }] };
  } catch (err) {
    const body = errorBody(res, err);
    const status = toToolhostError(err).status;
    const code = status === 404 ? RESOURCE_NOT_FOUND : status < 500 ? RpcErrorCode.InvalidParams : RpcErrorCode.InternalError;
    throw new RpcError(code, body.error.message, body);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Text types a client may render; anything else is text/plain (file_read reads text only, and images apart). */
const TEXT_MIME: Record<string, string> = {
  md: 'text/markdown',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  csv: 'text/csv',
  json: 'application/json',
  js: 'text/javascript',
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  ts: 'text/x-typescript',
  tsx: 'text/x-typescript',
  py: 'text/x-python',
  xml: 'application/xml',
  svg: 'image/svg+xml',
  yaml: 'application/yaml',
  yml: 'application/yaml',
  sh: 'text/x-shellscript',
};

function textMime(path: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(path)?.[1]?.toLowerCase();
  return (ext && TEXT_MIME[ext]) ?? 'text/plain';
}
