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
    else problems.push(...issueLines(issue, issue.path));
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
 * schema, or throws a 400 naming every bad or unknown field. A field whose value is null is taken as not given:
 * OpenAI's strict mode makes a model send every field, null for the ones it leaves out (lib/strict-schema.ts).
 */
export function toolInput<S extends z.ZodObject>(schema: S, args: unknown, what: string): z.infer<S> {
  return validate(schema, withoutNulls(args), what);
}

/**
 * Deepest nesting of arrays and objects a tool's arguments may have. No tool takes more than three levels; JSON.parse
 * takes any depth, and a walk of a hostile 100,000-level value would overflow the stack.
 */
const MAX_ARGUMENT_DEPTH = 32;

/** The value with every null-valued field of every object in it left out (array items stay where they are). */
export function withoutNulls(value: unknown, depth = 0): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_ARGUMENT_DEPTH) {
    throw new ToolhostError('bad_request', `the arguments nest arrays and objects deeper than ${MAX_ARGUMENT_DEPTH} levels; no tool takes that`);
  }
  if (Array.isArray(value)) return value.map((v) => withoutNulls(v, depth + 1));
  // fromEntries defines each key as its own property: a "__proto__" field stays a field (and an unknown one).
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v, depth + 1)]),
  );
}

/**
 * What an issue says, one line per problem. A union's own message is only "Invalid input": its lines are those of
 * the branches the value was meant for (a branch refusing the value's very kind, an array for a record, is left
 * out), and a record key's are the key's own.
 */
function issueLines(issue: z.core.$ZodIssue, path: PropertyKey[]): string[] {
  const at = path.map(String).join('.') || 'body';
  if (issue.code === 'invalid_union') {
    const meant = issue.errors.filter((branch) => !branch.every((i) => i.code === 'invalid_type' && i.path.length === 0));
    if (meant.length === 0)
      return [
        `${at}: ${issue.errors
          .flat()
          .map((i) => i.message)
          .join(', or ')}`,
      ];
    return meant.flat().flatMap((i) => issueLines(i, [...path, ...i.path]));
  }
  if (issue.code === 'invalid_key') return issue.issues.map((i) => `${at}: key ${i.message}`);
  return [`${at}: ${issue.message}`];
}

/** "; <label>: a, b, c" for an object schema, else "". */
function fieldList(schema: z.ZodType, label: string): string {
  const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? `; ${label}: ${Object.keys(shape).join(', ')}` : '';
}
