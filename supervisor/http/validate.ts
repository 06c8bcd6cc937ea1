/** Request bodies: the JSON parser of the routes, and validation with the shared zod schemas, turning zod's issues into errors that say what to fix. */
import express from 'express';
import type { z } from 'zod';
import { ToolhostError } from '../../lib/errors.js';
import { isJsonContentType } from './guards.js';

/**
 * The JSON body parser of a route: parses JSON media types only (the app's guard answers 415 to any other POST),
 * inflates gzip, deflate and br, and refuses more than `limit` bytes after inflating.
 */
export function jsonBody(limit: number): express.RequestHandler {
  return express.json({ limit, strict: true, type: (req) => isJsonContentType(req.headers['content-type']) });
}

/** Parses `body` with `schema`, or throws a 400 naming every bad or unknown field. */
export function validate<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ToolhostError('bad_request', `${what} needs a JSON object body with Content-Type: application/json${fieldList(schema, 'fields')}`);
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const unknown: string[] = [];
  const problems: string[] = [];
  for (const issue of parsed.error.issues) {
    const field = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') unknown.push(...issue.keys.map((k) => (field ? `${field}.${k}` : k)));
    else problems.push(`${field || 'body'}: ${issue.message}`);
  }
  if (unknown.length > 0) {
    const allowed = fieldList(schema, 'allowed fields');
    throw new ToolhostError('unknown_field', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} in ${what}${allowed}`, {
      fields: unknown,
    });
  }
  throw new ToolhostError('bad_request', `invalid ${what}: ${problems.join('; ')}`, { problems });
}

/**
 * Parses a tool's arguments, from whatever transport (the route, MCP, POST /tools/{name}/call), with its request
 * schema, or throws a 400 naming every bad or unknown field.
 */
export function toolInput<S extends z.ZodObject>(schema: S, args: unknown, what: string): z.infer<S> {
  return validate(schema, args, what);
}

/** "; <label>: a, b, c" for an object schema, else "". */
function fieldList(schema: z.ZodType, label: string): string {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? `; ${label}: ${Object.keys(shape).join(', ')}` : '';
}
