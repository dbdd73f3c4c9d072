// TEST guest: lets host tests drive the host functions precisely. See ../../README.md.
//
// schedules(): runs config `discovery_calls` (responses ignored), then outputs config
//   `schedules` verbatim (default `[]`).
// run(): the payload says what to do, in this order:
//   "calls": [{"fn", "args": <json>} | {"fn", "raw": "<sent as is>"}]  host calls
//   "growPages": n          memory.grow(n) (result in "grew")
//   "spin": true            loop forever
//   "trap": true | "msg"    unreachable | abort("msg")
//   "fail": "msg"           error_set("msg"), return 1, no output
//   "failBefore": n         on attempts before n: error_set("attempt <attempt>"), return 1;
//                           from attempt n on, the result also has "attempt"
//   "output": "<text>"      write exactly this instead of the normal output
//   "setCursor": <json>     the output's cursor (omitted when absent)
//   "countCursor": true     the output's cursor is {"n": <the previous cursor's n> + 1}
//   "returnCode": n         return n (default 0), without error_set
// cleanup(): returns 0.

import { Json, jsonArray, jsonInt, jsonObject, jsonRaw } from '../../lib/json';
import { RunContext, configGet, fail, runResult, writeJson, writeOutput } from '../../lib/io';
import { HostResponse, callHostRaw } from '../../lib/host';

/** `{"fn", "args"}` sends args serialised; `{"fn", "raw"}` sends the string as is. */
function call(spec: Json): HostResponse {
  const fn = spec.get('fn').asString();
  if (spec.has('raw')) return callHostRaw(fn, spec.get('raw').asString());
  return callHostRaw(fn, spec.get('args').stringify());
}

function parseConfig(key: string, text: string): Json {
  const parsed = Json.parse(text);
  if (parsed === null) abort('config ' + key + ' is not JSON');
  return parsed!;
}

export function schedules(): i32 {
  const calls = configGet('discovery_calls');
  if (calls !== null) {
    const list = parseConfig('discovery_calls', calls);
    for (let i = 0; i < list.length; i++) call(list.at(i));
  }
  const declared = configGet('schedules');
  writeOutput(declared === null ? '[]' : declared);
  return 0;
}

export function run(): i32 {
  const ctx = RunContext.read();
  const p = ctx.payload;

  const responses = jsonArray();
  const calls = p.get('calls');
  for (let i = 0; i < calls.length; i++) responses.push(jsonRaw(call(calls.at(i)).raw));

  const result = jsonObject()
    .set('responses', responses)
    .set('seenCursor', ctx.json.get('cursor'))
    .set('scheduleId', ctx.json.get('scheduleId'))
    .set('trigger', ctx.json.get('trigger'))
    .set('catchUp', ctx.json.get('catchUp'));

  if (p.has('growPages')) result.set('grew', jsonInt(memory.grow(<i32>p.get('growPages').asInt())));
  if (p.get('spin').asBool()) while (true) {}

  const trap = p.get('trap');
  if (trap.isString()) abort(trap.asString());
  if (trap.asBool()) unreachable();
  if (p.has('fail')) return fail(p.get('fail').asString());
  if (p.has('failBefore')) {
    const before: i64 = p.get('failBefore').asInt();
    if (ctx.attempt < before) return fail('attempt ' + ctx.attempt.toString());
    result.set('attempt', jsonInt(ctx.attempt));
  }

  let cursor: Json | null = p.has('setCursor') ? p.get('setCursor') : null;
  if (p.get('countCursor').asBool())
    cursor = jsonObject().set('n', jsonInt(ctx.cursor.get('n').asInt() + 1));
  if (p.has('output')) writeOutput(p.get('output').asString());
  else writeJson(runResult(cursor, result));
  return <i32>p.get('returnCode').asInt();
}

export function cleanup(): i32 {
  return 0;
}
