import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { isUserError, UserError } from '../errors';

/**
 * A config that breaks its schema: a `UserError` whose message joins every problem, with each problem also
 * listed on its own (each prefixed by where it is: `exp.json: optimizee "quadratic": dims must be ...`), so a
 * validator can print one line per problem.
 */
export class ConfigError extends UserError {
  readonly problems: readonly string[];

  constructor(message: string, problems: readonly string[], options?: { cause?: unknown }) {
    super(message, options);
    // Still a UserError by name, so `isUserError` recognises it across copies of @l2l/core.
    this.name = 'UserError';
    this.problems = problems;
  }
}

/** The problems an error stands for: a `ConfigError`'s list, else its message. */
export function errorProblems(e: unknown): string[] {
  const problems = (e as { problems?: unknown })?.problems;
  if (isUserError(e) && Array.isArray(problems)) return problems.map(String);
  return [(e as Error)?.message ?? String(e)];
}

/** A JSON Schema (draft 7 subset as ajv reads it). */
export type JsonSchema = { [keyword: string]: unknown };

const ajv = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true, strictRequired: false });
const compiled = new WeakMap<object, ValidateFunction>();

function compile(schema: JsonSchema): ValidateFunction {
  let fn = compiled.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    compiled.set(schema, fn);
  }
  return fn;
}

/** Plain words for what a schema accepts: `an integer ≥ 1`, `one of "relu", "tanh"`. */
export function describeSchema(schema: JsonSchema | undefined): string {
  if (!schema) return 'valid';
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if ('const' in schema) return `${JSON.stringify(schema.const)}`;
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : schema.type ? [schema.type as string] : [];
  const nouns: Record<string, string> = {
    integer: 'an integer',
    number: 'a number',
    string: 'a string',
    boolean: 'true or false',
    object: 'an object',
    array: 'an array',
    null: 'null',
  };
  let text = types.map((t) => nouns[t] ?? t).join(' or ') || 'a value';
  const bounds: string[] = [];
  if (typeof schema.minimum === 'number') bounds.push(`≥ ${schema.minimum}`);
  if (typeof schema.exclusiveMinimum === 'number') bounds.push(`> ${schema.exclusiveMinimum}`);
  if (typeof schema.maximum === 'number') bounds.push(`≤ ${schema.maximum}`);
  if (typeof schema.exclusiveMaximum === 'number') bounds.push(`< ${schema.exclusiveMaximum}`);
  if (bounds.length) text += ' ' + bounds.join(' and ');
  if (types.includes('array') && schema.items && typeof schema.items === 'object') {
    const item = describeSchema(schema.items as JsonSchema);
    // "an integer ≥ 1" → "integers ≥ 1"; "one of …" stays as it is.
    text += ` of ${/^an? /.test(item) ? item.replace(/^an? (\w+)/, '$1s') : `items ${item}`}`;
    if (typeof schema.minItems === 'number' && schema.minItems > 0) text += ` (at least ${schema.minItems})`;
  }
  if (typeof schema.minLength === 'number' && schema.minLength > 0) text += ' (not empty)';
  return text;
}

function fieldPath(instancePath: string, prefix: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let out = prefix;
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

function show(value: unknown): string {
  const s = JSON.stringify(value);
  return s === undefined ? String(value) : s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** One plain-words sentence per ajv error; `prefix` names the field the data sits under. */
export function formatSchemaError(e: ErrorObject, prefix = ''): string {
  const path = fieldPath(e.instancePath, prefix);
  const at = path ? `${path}: ` : '';
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys((e.parentSchema?.properties as object | undefined) ?? {});
      const name = path ? `${path}.${field}` : field;
      return `unknown field "${name}"${known.length ? ` (known: ${known.join(', ')})` : ''}`;
    }
    case 'required': {
      const field = (e.params as { missingProperty: string }).missingProperty;
      return `missing field "${path ? `${path}.${field}` : field}"`;
    }
    case 'type':
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
    case 'enum':
    case 'const':
    case 'minLength':
    case 'multipleOf':
      return `${path || 'value'} must be ${describeSchema(e.parentSchema as JsonSchema)}, got ${show(e.data)}`;
    case 'minItems':
    case 'maxItems':
      return `${path || 'value'} must have ${e.keyword === 'minItems' ? 'at least' : 'at most'} ${(e.params as { limit: number }).limit} items, got ${(e.data as unknown[]).length}`;
    default:
      return `${at}${e.message ?? 'is invalid'}${e.data !== undefined ? `, got ${show(e.data)}` : ''}`;
  }
}

/** Collapses ajv's cascades (a `type` error also reported by every `anyOf` branch, say) to the useful ones. */
function usefulErrors(errors: ErrorObject[]): ErrorObject[] {
  const plain = errors.filter((e) => !['anyOf', 'oneOf', 'if', 'then', 'else'].includes(e.keyword));
  const seen = new Set<string>();
  return (plain.length ? plain : errors).filter((e) => {
    const key = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Validates `value` against `schema` and returns a deep copy with defaults applied (the input is never
 * changed). Throws a `UserError` whose message starts with `where` (`config.json: optimizee "mnist-mlp"`)
 * and names each bad field.
 */
export function validateWithSchema<T>(schema: JsonSchema, value: unknown, where: string, prefix = ''): T {
  const copy = value === undefined ? {} : structuredClone(value);
  const fn = compile(schema);
  if (!fn(copy)) {
    const messages = usefulErrors(fn.errors ?? []).map((e) => formatSchemaError(e, prefix));
    throw new ConfigError(`${where}: ${messages.join('; ')}`, messages.map((m) => `${where}: ${m}`));
  }
  return copy as T;
}

/** Throws unless a component's options schema follows the house rules (closed, every property described). */
export function checkOptionsSchema(schema: JsonSchema, where: string): void {
  if (schema.type !== 'object') throw new Error(`${where}: options schema must have "type": "object"`);
  if (schema.additionalProperties !== false) {
    throw new Error(`${where}: options schema must set "additionalProperties": false`);
  }
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  for (const [name, prop] of Object.entries(props)) {
    if (typeof prop.description !== 'string' || !prop.description.trim()) {
      throw new Error(`${where}: option "${name}" has no description`);
    }
  }
  try {
    compile(schema);
  } catch (e) {
    throw new Error(`${where}: options schema does not compile: ${(e as Error).message}`);
  }
}
