/**
 * One ajv instance for every schema in the host (config, manifests, declarations, host-function
 * requests). Schemas are compiled once at module load; callers get a parse function that turns
 * `unknown` into a typed value or a list of `{ field, problem }` issues naming the JSON pointer.
 */
import { Ajv, type ErrorObject, type JSONSchemaType, type ValidateFunction } from 'ajv';

export const ajv = new Ajv({ allErrors: false, useDefaults: true, strict: true });

export interface SchemaIssue {
  readonly field: string;
  readonly problem: string;
}

export type Validator<T> = (
  value: unknown,
) => { ok: true; value: T } | { ok: false; issue: SchemaIssue };

function describe(err: ErrorObject): SchemaIssue {
  let field = err.instancePath;
  let problem = err.message ?? 'is invalid';
  if (err.keyword === 'additionalProperties') {
    const extra = (err.params as { additionalProperty: string }).additionalProperty;
    field = `${field}/${extra}`;
    problem = 'is not an allowed property';
  } else if (err.keyword === 'required') {
    field = `${field}/${(err.params as { missingProperty: string }).missingProperty}`;
    problem = 'is required';
  } else if (err.keyword === 'enum') {
    const allowed = (err.params as { allowedValues: unknown[] }).allowedValues;
    problem = `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return { field: field || '/', problem };
}

export function compile<T>(schema: JSONSchemaType<T> | Record<string, unknown>): Validator<T> {
  const validate = ajv.compile(schema) as ValidateFunction<T>;
  return (value: unknown) => {
    if (validate(value)) return { ok: true, value };
    const first = validate.errors?.[0];
    return {
      ok: false,
      issue: first ? describe(first) : { field: '/', problem: 'is invalid' },
    };
  };
}

/** Byte length of a value's JSON encoding (what crosses the boundary and what is stored). */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null');
}

/**
 * Deepest nesting of arrays and objects accepted in guest JSON (host-function requests,
 * `schedules()` output, run output). V8 parses far deeper JSON than it can encode again
 * (`JSON.stringify` overflows the stack near 10,000 levels), so depth is checked on the text,
 * before parsing, in one pass with no recursion.
 */
export const MAX_JSON_DEPTH = 64;

/** The first position where `text` nests arrays/objects deeper than `max`, or -1. */
export function jsonTooDeepAt(text: string, max: number = MAX_JSON_DEPTH): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return i;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return -1;
}

/** Thrown by `parseGuestJson` for JSON nested deeper than `MAX_JSON_DEPTH`. */
export class JsonDepthError extends SyntaxError {
  constructor(position: number) {
    super(`JSON is nested deeper than ${MAX_JSON_DEPTH} levels (at position ${position})`);
    this.name = 'JsonDepthError';
  }
}

/**
 * `JSON.parse` for guest text: refuses nesting deeper than `MAX_JSON_DEPTH` (throwing a
 * `SyntaxError`, like malformed JSON) before parsing.
 */
export function parseGuestJson(text: string): unknown {
  const at = jsonTooDeepAt(text);
  if (at >= 0) throw new JsonDepthError(at);
  return JSON.parse(text) as unknown;
}

/**
 * The JSON text of a value that is at most `MAX_JSON_DEPTH` deep, or null when it is deeper
 * (or too deep to encode at all). For values that did not come from `parseGuestJson`.
 */
export function boundedJsonText(value: unknown): string | null {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    return null; // a stack overflow (or a cycle): far too deep either way
  }
  text ??= 'null';
  return jsonTooDeepAt(text) >= 0 ? null : text;
}
