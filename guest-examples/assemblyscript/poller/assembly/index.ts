// The example Hourglass guest: a user-driven feed poller.
//
// - `housekeeping` (declared, every 10 s) stands in for a user: when no poller exists it
//   creates the runtime schedule `poll-feed-1`, and counts its own runs in its cursor.
// - `poll-feed-*` schedules "poll" their payload's feed, count runs in their cursor and pause
//   themselves after the third run.
// - A run whose payload is `{"action": …}` drives one host function (pause, resume, delete,
//   create, register) and returns the host's answer, leaving the cursor unchanged.

import { Json, jsonBool, jsonInt, jsonObject, jsonRaw } from '../../lib/json';
import { RunContext, fail, runResult, writeJson, writeOutput } from '../../lib/io';
import * as hourglass from '../../lib/host';

const POLLER_ID = 'poll-feed-1';
const JOB_CONTRACT =
  '{"name":"poll-feed","displayName":"Poll a feed","description":"Fetches a feed and records ' +
  'how many times it was polled.","concurrency":1,"timeoutMs":5000}';
const POLLER =
  '{"id":"poll-feed-1","every":"10s","payload":{"feed":"https://example.com/feed"},"overlap":"skip"}';

/** Discovery: register the job contract and declare the housekeeping schedule. */
export function schedules(): i32 {
  const registered = hourglass.jobsRegister(Json.parse(JOB_CONTRACT)!);
  if (!registered.isOk) return fail('jobs_register failed: ' + registered.raw);
  writeOutput(
    '[{"id":"housekeeping","cron":"*/10 * * * * *","timezone":"Europe/Berlin",' +
      '"overlap":"skip","description":"Creates the feed poller when it is missing."}]',
  );
  return 0;
}

export function run(): i32 {
  const ctx = RunContext.read();
  if (ctx.payload.has('action')) return action(ctx.payload);
  if (ctx.scheduleId == 'housekeeping') return housekeeping(ctx);
  if (ctx.scheduleId.startsWith('poll-feed-')) return poll(ctx);
  return fail('unknown schedule: ' + ctx.scheduleId);
}

/** Creates the poller when it does not exist; the cursor counts housekeeping runs. */
function housekeeping(ctx: RunContext): i32 {
  const ticks = ctx.cursor.get('ticks').asInt();
  let created = false;
  const existing = hourglass.scheduleGet(POLLER_ID);
  if (existing.errorCode == 'not_found') {
    const res = hourglass.scheduleCreate(Json.parse(POLLER)!);
    if (!res.isOk) return fail('schedule_create failed: ' + res.raw);
    created = true;
  } else if (!existing.isOk) {
    return fail('schedule_get failed: ' + existing.raw);
  }
  const cursor = jsonObject().set('ticks', jsonInt(ticks + 1));
  writeJson(runResult(cursor, jsonObject().set('created', jsonBool(created))));
  return 0;
}

/** One poll: count it, and pause this schedule once it has run three times. */
function poll(ctx: RunContext): i32 {
  const seen = ctx.cursor.get('seen').asInt() + 1;
  if (seen == 3) {
    const res = hourglass.schedulePause(ctx.scheduleId, 'caught up');
    if (!res.isOk) return fail('schedule_pause failed: ' + res.raw);
  }
  const cursor = jsonObject().set('seen', jsonInt(seen));
  const result = jsonObject().set('polled', ctx.payload.get('feed')).set('seen', jsonInt(seen));
  writeJson(runResult(cursor, result));
  return 0;
}

/** `{"action": "pause"|"resume"|"delete", "id"}`, `{"action":"create","schedule"}`, `{"action":"register"}`. */
function action(payload: Json): i32 {
  const name = payload.get('action').asString();
  const id = payload.get('id').asString();
  let res: hourglass.HostResponse;
  if (name == 'pause') res = hourglass.schedulePause(id);
  else if (name == 'resume') res = hourglass.scheduleResume(id);
  else if (name == 'delete') res = hourglass.scheduleDelete(id);
  else if (name == 'create') res = hourglass.scheduleCreate(payload.get('schedule'));
  else if (name == 'register') res = hourglass.jobsRegister(Json.parse(JOB_CONTRACT)!);
  else return fail('unknown action: ' + name);
  // No cursor key: the cursor stays as it was.
  writeJson(runResult(null, jsonObject().set('response', jsonRaw(res.raw))));
  return 0;
}
