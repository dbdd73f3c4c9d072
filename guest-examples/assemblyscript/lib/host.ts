// Hourglass host functions (namespace `extism:host/user`), see docs/guest-abi.md.
//
// Each takes the offset of an Extism memory block holding a JSON request and returns the
// offset of a block holding `{"ok": …}` or `{"error": {"code", "message"}}`.

import { Memory } from '@extism/as-pdk';
import { length } from '@extism/as-pdk/lib/env';
import { Json, jsonNull, jsonNumber, jsonObject, jsonString } from './json';
import { ScheduleView } from './schedule';

@external('extism:host/user', 'jobs_register') declare function jobs_register(request: u64): u64;
@external('extism:host/user', 'schedule_create') declare function schedule_create(request: u64): u64;
@external('extism:host/user', 'schedule_pause') declare function schedule_pause(request: u64): u64;
@external('extism:host/user', 'schedule_resume') declare function schedule_resume(request: u64): u64;
@external('extism:host/user', 'schedule_delete') declare function schedule_delete(request: u64): u64;
@external('extism:host/user', 'schedule_get') declare function schedule_get(request: u64): u64;
@external('extism:host/user', 'schedule_list') declare function schedule_list(request: u64): u64;

/** A host function's answer. */
export class HostResponse {
  /** The response exactly as the host wrote it. */
  raw: string;
  private parsed: Json | null = null;

  constructor(raw: string) {
    this.raw = raw;
  }

  /** The parsed response (JSON null if the host's text was not JSON). */
  get json(): Json {
    if (this.parsed === null) {
      const p = Json.parse(this.raw);
      this.parsed = p === null ? jsonNull() : p;
    }
    return this.parsed!;
  }
  get isOk(): bool {
    return this.json.has('ok');
  }
  /** The `ok` value (JSON null on error). */
  get value(): Json {
    return this.json.get('ok');
  }
  /** The `ok` value of a `schedule_create` / `_pause` / `_resume` / `_get` answer, typed. */
  view(): ScheduleView {
    return ScheduleView.from(this.value);
  }
  /** The error code (`not_found`, `phase`, …), or "" on success. */
  get errorCode(): string {
    return this.json.get('error').get('code').asString();
  }
  get errorMessage(): string {
    return this.json.get('error').get('message').asString();
  }
}

/** Copies a request into an Extism memory block. */
function send(request: string): Memory {
  return Memory.allocateString(request);
}

/** Reads the response block of a call to `fn` made with block `request`. */
function receive(fn: string, request: Memory, response: u64): HostResponse {
  if (response == 0) abort(fn + ' returned no response block');
  const text = new Memory(response, length(response)).toString();
  request.free();
  return new HostResponse(text);
}

/**
 * Calls host function `fn` by name with `request` sent as is (UTF-8); aborts on an unknown
 * name. Imports all seven functions: prefer the typed helpers below, which import only
 * what they use.
 */
export function callHostRaw(fn: string, request: string): HostResponse {
  const req = send(request);
  let res: u64 = 0;
  if (fn == 'jobs_register') res = jobs_register(req.offset);
  else if (fn == 'schedule_create') res = schedule_create(req.offset);
  else if (fn == 'schedule_pause') res = schedule_pause(req.offset);
  else if (fn == 'schedule_resume') res = schedule_resume(req.offset);
  else if (fn == 'schedule_delete') res = schedule_delete(req.offset);
  else if (fn == 'schedule_get') res = schedule_get(req.offset);
  else if (fn == 'schedule_list') res = schedule_list(req.offset);
  else abort('unknown host function: ' + fn);
  return receive(fn, req, res);
}

function idRequest(id: string): string {
  return jsonObject().set('id', jsonString(id)).stringify();
}

/** Discovery only: registers a job contract `{"name", "displayName"?, …}`. */
export function jobsRegister(contract: Json): HostResponse {
  const req = send(contract.stringify());
  return receive('jobs_register', req, jobs_register(req.offset));
}
/**
 * Creates a runtime schedule from a declaration (same shape as `schedules()` entries; build one
 * with `Schedule` in schedule.ts: `scheduleCreate(Schedule.every('p', '10s').toJson())`).
 */
export function scheduleCreate(declaration: Json): HostResponse {
  const req = send(declaration.stringify());
  return receive('schedule_create', req, schedule_create(req.offset));
}
export function schedulePause(id: string, note: string | null = null): HostResponse {
  const body = jsonObject().set('id', jsonString(id));
  if (note !== null) body.set('note', jsonString(note));
  const req = send(body.stringify());
  return receive('schedule_pause', req, schedule_pause(req.offset));
}
export function scheduleResume(id: string): HostResponse {
  const req = send(idRequest(id));
  return receive('schedule_resume', req, schedule_resume(req.offset));
}
export function scheduleDelete(id: string): HostResponse {
  const req = send(idRequest(id));
  return receive('schedule_delete', req, schedule_delete(req.offset));
}
export function scheduleGet(id: string): HostResponse {
  const req = send(idRequest(id));
  return receive('schedule_get', req, schedule_get(req.offset));
}
/** Lists this plugin's schedules, `limit` at a time (0: host default), after id `after`. */
export function scheduleList(limit: i32 = 0, after: string | null = null): HostResponse {
  const body = jsonObject();
  if (limit > 0) body.set('limit', jsonNumber(<f64>limit));
  if (after !== null) body.set('after', jsonString(after));
  const req = send(body.stringify());
  return receive('schedule_list', req, schedule_list(req.offset));
}
