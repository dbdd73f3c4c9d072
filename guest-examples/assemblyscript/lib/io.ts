// Input, output, errors, config and variables for Hourglass guests, over @extism/as-pdk.
//
// Output is always written as UTF-8 bytes: as-pdk's `Host.outputString` sizes its buffer in
// UTF-16 units and breaks on non-ASCII text.

import { Host, Memory } from '@extism/as-pdk';
import { config_get, error_set, length, var_get, var_set } from '@extism/as-pdk/lib/env';
import { Json, jsonObject } from './json';

/** The call's input, decoded from UTF-8. */
export function inputString(): string {
  return Host.inputString();
}

/** Writes `text` (UTF-8 encoded) as the call's output. */
export function writeOutput(text: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(text)));
}

export function writeJson(value: Json): void {
  writeOutput(value.stringify());
}

/** Sets the call's error message; return the result (1) from the export to fail the call. */
export function fail(message: string): i32 {
  error_set(Memory.allocateString(message).offset);
  return 1;
}

/** The Extism config value for `key`, or null when it is not set ("" when set but empty). */
export function configGet(key: string): string | null {
  const offset = config_get(Memory.allocateString(key).offset);
  if (offset == 0) return null;
  return new Memory(offset, length(offset)).toString();
}

/** The Extism variable `key` (UTF-8), or null when it is not set or empty. */
export function varGet(key: string): string | null {
  const offset = var_get(Memory.allocateString(key).offset);
  if (offset == 0) return null;
  const n = length(offset);
  if (n == 0) return null;
  return new Memory(offset, n).toString();
}

/**
 * Sets the Extism variable `key` to `value` (UTF-8), or removes it when `value` is null.
 * Variables are bounded (`limits.varBytes`, see docs/guest-abi.md): past the limit the host
 * ends the call.
 */
export function varSet(key: string, value: string | null): void {
  const k = Memory.allocateString(key);
  var_set(k.offset, value === null ? 0 : Memory.allocateString(value).offset);
}

/** The run context handed to `run()` (docs/guest-abi.md, "Run context"). */
export class RunContext {
  scheduleId: string = '';
  runId: string = '';
  plugin: string = '';
  scheduledAt: string = '';
  firedAt: string = '';
  /** 1, or n+1 for a retry of the same tick (same `scheduledAt`). */
  attempt: i64 = 0;
  catchUp: bool = false;
  /** "schedule" | "buffered" | "catch_up" | "manual" | "retry" | "backfill" */
  trigger: string = '';
  /** The schedule's payload (JSON null when it has none). */
  payload: Json = jsonObject();
  /** What the previous run returned as cursor (JSON null at first). */
  cursor: Json = jsonObject();
  /** The whole context as parsed. */
  json: Json = jsonObject();

  /** Reads and parses `run()`'s input; aborts (traps) when it is not a JSON object. */
  static read(): RunContext {
    const parsed = Json.parse(inputString());
    if (parsed === null || !parsed.isObject()) abort('run context is not a JSON object');
    const json = parsed!;
    const ctx = new RunContext();
    ctx.json = json;
    ctx.scheduleId = json.get('scheduleId').asString();
    ctx.runId = json.get('runId').asString();
    ctx.plugin = json.get('plugin').asString();
    ctx.scheduledAt = json.get('scheduledAt').asString();
    ctx.firedAt = json.get('firedAt').asString();
    ctx.attempt = json.get('attempt').asInt();
    ctx.catchUp = json.get('catchUp').asBool();
    ctx.trigger = json.get('trigger').asString();
    ctx.payload = json.get('payload');
    ctx.cursor = json.get('cursor');
    return ctx;
  }
}

/**
 * Builds a run result `{"cursor":…,"result":…}`. Pass `cursor = null` to leave the cursor
 * unchanged (the key is omitted) and `jsonNull()` to clear it.
 */
export function runResult(cursor: Json | null, result: Json): Json {
  const out = jsonObject();
  if (cursor !== null) out.set('cursor', cursor);
  return out.set('result', result);
}
