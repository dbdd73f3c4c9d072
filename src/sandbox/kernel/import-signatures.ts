/**
 * The function types of the imports Hourglass implements: Extism's kernel, Hourglass's host
 * functions and AssemblyScript's `env.abort`. A guest declaring one with another type is
 * refused at load: at run time the mismatch would surface as a JS `TypeError` thrown at the
 * import's boundary (e.g. an i64 result returned to an import declared i32), a JS exception a
 * guest's `catch_all` could catch, and no host code would have a say in what happened.
 *
 * Notation: `params:results`, `I` = i64, `i` = i32 (the types of Extism's kernel and PDKs).
 */
import { readImports, readTypes, SectionId, splitSections } from '../../wasm/sections.ts';

export const KERNEL_SIGNATURES = {
  alloc: 'I:I',
  free: 'I:',
  load_u8: 'I:i',
  load_u64: 'I:I',
  store_u8: 'Ii:',
  store_u64: 'II:',
  input_offset: ':I',
  input_length: ':I',
  input_load_u8: 'I:i',
  input_load_u64: 'I:I',
  output_set: 'II:',
  error_set: 'I:',
  error_get: ':I',
  config_get: 'I:I',
  var_get: 'I:I',
  var_set: 'II:',
  http_request: 'II:I',
  http_status_code: ':i',
  http_headers: ':I',
  length: 'I:I',
  length_unsafe: 'I:I',
  log_trace: 'I:',
  log_debug: 'I:',
  log_info: 'I:',
  log_warn: 'I:',
  log_error: 'I:',
  get_log_level: ':i',
} as const;

export type KernelName = keyof typeof KERNEL_SIGNATURES;

/** Every Hourglass host function takes and returns a block offset. */
export const HOST_FUNCTION_SIGNATURE = 'I:I';
export const ABORT_SIGNATURE = 'iiii:';

const CODE: Readonly<Record<number, string>> = { 0x7e: 'I', 0x7f: 'i' };

/**
 * The first import of `module` whose type is not `expected(name)` (null: not checked here), as
 * a message; null when all match (or the module cannot be parsed here). `bytes` must be a valid
 * module.
 */
export function signatureMismatch(
  bytes: Uint8Array,
  expected: (module: string, name: string) => string | null,
): string | null {
  try {
    return firstMismatch(bytes, expected);
  } catch {
    return null; // a module these readers cannot parse is refused by the instrumenter
  }
}

function firstMismatch(
  bytes: Uint8Array,
  expected: (module: string, name: string) => string | null,
): string | null {
  const sections = splitSections(bytes);
  const importSec = sections.find((s) => s.id === SectionId.import);
  if (!importSec) return null;
  const typeSec = sections.find((s) => s.id === SectionId.type);
  const types = typeSec ? readTypes(bytes, typeSec) : [];
  for (const imp of readImports(bytes, importSec)) {
    if (imp.kind !== 0) continue;
    const want = expected(imp.module, imp.name);
    if (want === null) continue;
    const t = types[imp.typeIndex];
    const sig = t
      ? `${t.paramTypes.map((v) => CODE[v] ?? '?').join('')}:${t.results.map((v) => CODE[v] ?? '?').join('')}`
      : '?';
    if (sig !== want) {
      return `imports '${imp.module}.${imp.name}' with type (${describe(sig)}); Hourglass implements it as (${describe(want)})`;
    }
  }
  return null;
}

function describe(sig: string): string {
  const [p = '', r = ''] = sig.split(':');
  const name = (c: string) => (c === 'I' ? 'i64' : c === 'i' ? 'i32' : '?');
  return `${[...p].map(name).join(', ') || 'no params'} -> ${[...r].map(name).join(', ') || 'nothing'}`;
}
