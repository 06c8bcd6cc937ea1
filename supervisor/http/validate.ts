/** Request validation with the shared zod schemas, turning zod's issues into errors that say what to fix. */
import type { z } from 'zod';
import { ToolhostError } from '../../lib/errors.js';

/** Parses `body` with `schema`, or throws a 400 naming every bad or unknown field. */
export function validate<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ToolhostError('bad_request', `${what} needs a JSON object body with Content-Type: application/json`);
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
    const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
    const allowed = shape ? `; allowed fields: ${Object.keys(shape).join(', ')}` : '';
    throw new ToolhostError('unknown_field', `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')} in ${what}${allowed}`, {
      fields: unknown,
    });
  }
  throw new ToolhostError('bad_request', `invalid ${what}: ${problems.join('; ')}`, { problems });
}
