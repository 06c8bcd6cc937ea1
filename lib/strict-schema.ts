/**
 * OpenAI's strict mode (Structured Outputs, `strict: true` on a function tool): the model's arguments are decoded
 * against the schema, so they always parse and fit, but only a subset of JSON Schema is accepted. This module turns
 * a tool's plain input schema into that subset, and checks a schema against the subset's rules (the tests run the
 * check on every served tool, so a new tool that strict mode cannot express fails there, not at OpenAI).
 *
 * The subset (OpenAI's "Supported schemas" of Structured Outputs): every object lists all its properties in
 * `required` and has `additionalProperties: false`; an optional field is typed with `null` (callers send null for
 * "not given", which toolInput drops before validation); the root is an object, not anyOf; keywords are limited to
 * the ones in {@link STRICT_KEYWORDS}; at most 10 levels of object nesting, 5000 properties, 1000 enum values.
 */
/** A JSON Schema object. */
export type JsonSchema = Record<string, unknown>;

/** Keywords strict mode accepts. Everything else is dropped by {@link strictSchema}, its meaning moved to the description. */
export const STRICT_KEYWORDS: ReadonlySet<string> = new Set([
  'type',
  'description',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  'anyOf',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minItems',
  'maxItems',
]);

/** The string formats strict mode accepts. */
export const STRICT_FORMATS: ReadonlySet<string> = new Set(['date-time', 'time', 'date', 'duration', 'email', 'hostname', 'ipv4', 'ipv6', 'uuid']);

/** Strict mode's size limits. */
export const STRICT_LIMITS = { depth: 10, properties: 5000, enumValues: 1000, bigEnum: 250, bigEnumChars: 15_000, chars: 120_000 } as const;

const LOOKAROUND_AT = /^\(\?<?[=!]/;

/** A schema node strict mode cannot express (a free-form record, an untyped value), with where it is. */
export class NotStrict extends Error {}

/**
 * `schema` (an object's input schema, as inputJsonSchema makes it) in strict mode's subset. A free-form part (a
 * record: an object with a schema for additionalProperties) cannot be expressed: inside anyOf, that branch is left
 * out (a field that accepts a record or a list of pairs keeps the list); anywhere else it throws {@link NotStrict}.
 */
export function strictSchema(schema: JsonSchema, at = 'parameters'): JsonSchema {
  const out = convert(schema, at);
  if (out === undefined) throw new NotStrict(`${at}: strict mode cannot express this schema`);
  return out;
}

/** The node in strict form, or undefined when strict mode cannot express it. */
function convert(node: JsonSchema, at: string): JsonSchema | undefined {
  if (Array.isArray(node.anyOf)) return convertAnyOf(node, at);
  const types = typesOf(node);
  if (types.length === 0 && node.enum === undefined && node.const === undefined) return undefined;
  const out = keywords(node);
  if (types.includes('object')) {
    const props = (node.properties ?? {}) as Record<string, JsonSchema>;
    const free = node.additionalProperties !== undefined && node.additionalProperties !== false;
    if (free && Object.keys(props).length === 0) return undefined;
    if (free) throw new NotStrict(`${at}: an object with both fixed and free-form properties`);
    const required = new Set((node.required ?? []) as string[]);
    const properties: Record<string, JsonSchema> = {};
    for (const [name, child] of Object.entries(props)) {
      const strict = convert(child, `${at}.${name}`);
      if (strict === undefined) throw new NotStrict(`${at}.${name}: strict mode cannot express this field (a free-form record or an untyped value)`);
      properties[name] = required.has(name) ? strict : nullable(strict);
    }
    Object.assign(out, { properties, required: Object.keys(properties), additionalProperties: false });
  }
  if (types.includes('array') && node.items !== undefined) {
    const items = convert(node.items as JsonSchema, `${at}[]`);
    if (items === undefined) throw new NotStrict(`${at}[]: strict mode cannot express the items`);
    out.items = items;
  }
  return out;
}

/**
 * The node's keywords other than its structure (properties, items, anyOf) that strict mode accepts; what the
 * others meant (a default, a length bound) is added to the description, so the model still knows it.
 */
function keywords(node: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  const notes: string[] = [];
  for (const [k, v] of Object.entries(node)) {
    if (STRUCTURE.has(k)) continue;
    if (k === 'pattern' && typeof v === 'string' && hasLookaround(v)) {
      // A lookaround only narrows what matches: without it the pattern accepts more, and the server still checks all.
      out.pattern = withoutLookarounds(v);
    } else if (k === 'format' && !STRICT_FORMATS.has(String(v))) {
      notes.push(`format ${String(v)}`);
    } else if (STRICT_KEYWORDS.has(k)) {
      out[k] = v;
    } else {
      const note = droppedNote(k, v);
      if (note) notes.push(note);
    }
  }
  if (notes.length > 0) out.description = withNotes(out.description, notes);
  return out;
}

const STRUCTURE = new Set(['properties', 'required', 'additionalProperties', 'items', 'anyOf']);

/** anyOf with the branches strict mode cannot express left out; one branch left stands for the node itself. */
function convertAnyOf(node: JsonSchema, at: string): JsonSchema | undefined {
  const branches = (node.anyOf as JsonSchema[]).map((b, i) => convert(b, `${at}|${i}`)).filter((b): b is JsonSchema => b !== undefined);
  const outer = keywords(node);
  const [only, ...others] = branches;
  if (only === undefined) return undefined;
  if (others.length > 0) return { ...outer, anyOf: branches };
  const description = [outer.description, only.description].filter((d) => typeof d === 'string').join(' ');
  return { ...only, ...outer, ...(description ? { description } : {}) };
}

/** The node also accepting null: "not given" in strict mode. */
function nullable(node: JsonSchema): JsonSchema {
  const types = typesOf(node);
  if (types.includes('null')) return node;
  if (node.anyOf) return { ...node, anyOf: [...(node.anyOf as JsonSchema[]), { type: 'null' }] };
  if (types.length === 0) return { anyOf: [node, { type: 'null' }] };
  const out: JsonSchema = { ...node, type: [...types, 'null'] };
  if (Array.isArray(node.enum)) out.enum = [...node.enum, null];
  return out;
}

function typesOf(node: JsonSchema): string[] {
  if (Array.isArray(node.type)) return node.type as string[];
  return typeof node.type === 'string' ? [node.type] : [];
}

/** What a keyword strict mode refuses meant, in words a model reads in the description. */
function droppedNote(keyword: string, value: unknown): string | undefined {
  switch (keyword) {
    case 'default':
      return `default ${JSON.stringify(value)}`;
    case 'minLength':
      return value === 1 ? 'not empty' : `at least ${String(value)} characters`;
    case 'maxLength':
      return `at most ${String(value)} characters`;
    case 'minProperties':
      return `at least ${String(value)} entries`;
    case 'maxProperties':
      return `at most ${String(value)} entries`;
    case 'uniqueItems':
      return value === true ? 'no duplicates' : undefined;
    default:
      return undefined; // title, examples, $comment...: nothing the model needs
  }
}

function withNotes(description: unknown, notes: string[]): string | undefined {
  const said = typeof description === 'string' ? description.toLowerCase() : '';
  const fresh = notes.filter((n) => !said.includes(n.toLowerCase()));
  if (fresh.length === 0) return typeof description === 'string' ? description : undefined;
  const text = fresh.join('; ');
  const sentence = text.charAt(0).toUpperCase() + text.slice(1);
  return typeof description === 'string' && description !== '' ? `${description.replace(/\.?$/, '.')} ${sentence}.` : `${sentence}.`;
}

/** The pattern without its lookaround groups `(?=…)`, `(?!…)`, `(?<=…)`, `(?<!…)` (escapes and classes respected). */
export function withoutLookarounds(pattern: string): string {
  let out = '';
  let inClass = false;
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    if (!inClass && LOOKAROUND_AT.test(pattern.slice(i, i + 4))) {
      i = groupEnd(pattern, i);
      continue;
    }
    const step = c === '\\' ? 2 : 1;
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    out += pattern.slice(i, i + step);
    i += step;
  }
  return out;
}

/** True when the pattern has a lookaround, which strict mode's regular expressions do not support. */
export function hasLookaround(pattern: string): boolean {
  return withoutLookarounds(pattern) !== pattern;
}

/** The index just past the group opening at `start`. */
function groupEnd(pattern: string, start: number): number {
  let depth = 0;
  let inClass = false;
  for (let i = start; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i += 1;
    else if (inClass) inClass = c !== ']';
    else if (c === '[') inClass = true;
    else if (c === '(') depth += 1;
    else if (c === ')' && --depth === 0) return i + 1;
  }
  return pattern.length;
}

/**
 * Every way `schema` breaks strict mode's rules, as "where: what" lines; none for a schema OpenAI accepts with
 * `strict: true`. The rules are OpenAI's published ones, checked here so a schema that breaks them fails a test.
 */
export function strictProblems(schema: JsonSchema): string[] {
  const problems: string[] = [];
  const totals = { properties: 0, enumValues: 0, chars: 0 };
  if (schema.type !== 'object') problems.push('root: must be type "object"');
  if (schema.anyOf !== undefined) problems.push('root: must not be anyOf');
  const walk = (node: JsonSchema, at: string, depth: number): void => {
    for (const k of Object.keys(node)) if (!STRICT_KEYWORDS.has(k)) problems.push(`${at}: keyword "${k}" is not supported`);
    const types = typesOf(node);
    if (types.length === 0 && node.anyOf === undefined && node.enum === undefined && node.const === undefined) problems.push(`${at}: no type`);
    if (typeof node.pattern === 'string' && hasLookaround(node.pattern)) problems.push(`${at}: pattern uses lookaround`);
    if (node.format !== undefined && !STRICT_FORMATS.has(String(node.format))) problems.push(`${at}: format "${String(node.format)}" is not supported`);
    if (Array.isArray(node.enum)) {
      totals.enumValues += node.enum.length;
      const chars = node.enum.reduce((n: number, v) => n + (typeof v === 'string' ? v.length : 0), 0);
      totals.chars += chars;
      if (node.enum.length > STRICT_LIMITS.bigEnum && chars > STRICT_LIMITS.bigEnumChars)
        problems.push(`${at}: an enum of over 250 values over 15000 characters`);
    }
    if (typeof node.const === 'string') totals.chars += node.const.length;
    if (types.includes('object') || node.properties !== undefined) {
      if (depth > STRICT_LIMITS.depth) problems.push(`${at}: more than ${STRICT_LIMITS.depth} levels of nested objects`);
      if (node.additionalProperties !== false) problems.push(`${at}: additionalProperties must be false`);
      const props = (node.properties ?? {}) as Record<string, JsonSchema>;
      const required = Array.isArray(node.required) ? (node.required as string[]) : [];
      for (const name of Object.keys(props)) {
        totals.properties += 1;
        totals.chars += name.length;
        if (!required.includes(name)) problems.push(`${at}.${name}: not in required (strict mode requires every property; type it with null instead)`);
        walk(props[name] as JsonSchema, `${at}.${name}`, depth + 1);
      }
      for (const name of required) if (!(name in props)) problems.push(`${at}: required "${name}" is not a property`);
    }
    if (typeof node.items === 'object' && node.items !== null) walk(node.items as JsonSchema, `${at}[]`, depth);
    if (Array.isArray(node.anyOf)) for (const [i, b] of (node.anyOf as JsonSchema[]).entries()) walk(b, `${at}|${i}`, depth);
  };
  walk(schema, 'root', 1);
  if (totals.properties > STRICT_LIMITS.properties) problems.push(`root: ${totals.properties} properties, over ${STRICT_LIMITS.properties}`);
  if (totals.enumValues > STRICT_LIMITS.enumValues) problems.push(`root: ${totals.enumValues} enum values, over ${STRICT_LIMITS.enumValues}`);
  if (totals.chars > STRICT_LIMITS.chars) problems.push(`root: ${totals.chars} characters of names and values, over ${STRICT_LIMITS.chars}`);
  return problems;
}
