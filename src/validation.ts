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
