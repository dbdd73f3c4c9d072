// The example Hourglass guest: a user-driven feed poller.
//
// - `housekeeping` (declared, every 10 s) stands in for a user: when no poller exists it
//   creates the runtime schedule `poll-feed-1`, and counts its own runs in its cursor.
// - `poll-feed-*` schedules "poll" their payload's feed, count runs in their cursor and pause
//   themselves after the third run.
// - A run whose payload is `{"action": …}` drives one host function (pause, resume, delete,
//   create, register) and returns the host's answer, leaving the cursor unchanged; `policies`
//   creates a schedule with retry, priority, DST policy, job and breaker through the typed
//   builder and reads it back, `view` returns one schedule's typed view.
// - With config `feed_url` set, `poll-feed-*` runs really poll: they GET the URL (outbound HTTP,
//   manifest capability `http`), parse a JSON or RSS 2.0 feed (config `feed_format`: `json` |
//   `rss`, default: sniffed) and output `{"new":[{"id","title"}…],"seen":N}`: the items not
//   reported before, and how many of the feed's items were (`N`). The ids seen are kept in an
//   Extism variable (feed.ts), so each item is reported once. A failed request fails the run
//   with `http: <code>: <message>`, a non-2xx answer with `http: status <n>`. The cursor is
//   left alone and the schedule is not paused. Without `feed_url`, nothing changes.

import { Json, jsonArray, jsonBool, jsonInt, jsonObject, jsonRaw, jsonString } from '../../lib/json';
import {
  RunContext,
  configGet,
  fail,
  runResult,
  varGet,
  varSet,
  writeJson,
  writeOutput,
} from '../../lib/io';
import * as hourglass from '../../lib/host';
import { RetryPolicy, Schedule } from '../../lib/schedule';
import { httpRequest } from '../../lib/http';
import {
  FeedItem,
  SEEN_VAR,
  firstDistinct,
  nextSeen,
  parseJsonFeed,
  parseRss,
  sniffFormat,
} from './feed';

const POLLER_ID = 'poll-feed-1';
const JOB_CONTRACT =
  '{"name":"poll-feed","displayName":"Poll a feed","description":"Fetches a feed and records ' +
  'how many times it was polled.","concurrency":1,"timeoutMs":5000}';
const POLLER =
  '{"id":"poll-feed-1","every":"10s","payload":{"feed":"https://example.com/feed"},"overlap":"skip"}';

/** The job contract, with the default retry policy of schedules naming it (`job`). */
function jobContract(): Json {
  return Json.parse(JOB_CONTRACT)!.set('retry', new RetryPolicy(2).toJson());
}

/** Discovery: register the job contract and declare the housekeeping schedule. */
export function schedules(): i32 {
  const registered = hourglass.jobsRegister(jobContract());
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
  const url = configGet('feed_url');
  if (url !== null && url.length > 0) return pollFeed(url);
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

const ACCEPT = 'application/json, application/rss+xml, application/xml;q=0.9, */*;q=0.5';

/** A real poll of `url`: reports the feed's items not seen before (see the head comment). */
function pollFeed(url: string): i32 {
  const configured = configGet('feed_format');
  let format = configured === null ? '' : configured;
  if (format != '' && format != 'json' && format != 'rss') {
    return fail('feed_format: expected "json" or "rss", got "' + format + '"');
  }
  const res = httpRequest('GET', url, jsonObject().set('accept', jsonString(ACCEPT)));
  const failure = res.failure();
  if (failure !== null) return fail(failure);
  if (format == '') format = sniffFormat(res.body, res.header('content-type'));
  let parsed: FeedItem[] | null = null;
  if (format == 'json') parsed = parseJsonFeed(res.body);
  else if (format == 'rss') parsed = parseRss(res.body);
  else return fail('feed: neither JSON nor RSS (set config feed_format)');
  if (parsed === null) return fail('feed: not a JSON feed {"items":[…]}');
  const items = firstDistinct(parsed);

  const stored = varGet(SEEN_VAR);
  const previous = stored === null ? new Array<string>() : stored.split('\n');
  const known = new Set<string>();
  for (let i = 0; i < previous.length; i++) known.add(previous[i]);
  const fresh = jsonArray();
  let seen = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (known.has(item.key)) seen++;
    else fresh.push(jsonObject().set('id', jsonString(item.id)).set('title', jsonString(item.title)));
  }
  varSet(SEEN_VAR, nextSeen(items, previous).join('\n'));
  writeJson(runResult(null, jsonObject().set('new', fresh).set('seen', jsonInt(seen))));
  return 0;
}

/**
 * Creates `id` with the scheduling policies of issue 14 through the typed builder, reads it
 * back, and returns both typed views (re-encoded) as `{"created", "got"}`.
 */
function policies(id: string): i32 {
  const declaration = Schedule.cron(id, '30 2 * * *')
    .timezone('Europe/Berlin')
    .dstSkipped('skip')
    .dstRepeated('twice')
    .priority(8)
    .retry(new RetryPolicy(4).backoff(500, 8000).outcomes(['failed', 'timed_out']))
    .job('poll-feed')
    .breaker(3);
  const created = hourglass.scheduleCreate(declaration.toJson());
  if (!created.isOk) return fail('schedule_create failed: ' + created.raw);
  const got = hourglass.scheduleGet(id);
  if (!got.isOk) return fail('schedule_get failed: ' + got.raw);
  const result = jsonObject()
    .set('created', created.view().toJson())
    .set('got', got.view().toJson());
  writeJson(runResult(null, result));
  return 0;
}

/**
 * `{"action": "pause"|"resume"|"delete", "id"}`, `{"action":"create","schedule"}`,
 * `{"action":"register"}`, `{"action":"policies","id"}`, `{"action":"view","id"}`.
 */
function action(payload: Json): i32 {
  const name = payload.get('action').asString();
  const id = payload.get('id').asString();
  if (name == 'policies') return policies(id);
  if (name == 'view') {
    const got = hourglass.scheduleGet(id);
    if (!got.isOk) return fail('schedule_get failed: ' + got.raw);
    writeJson(runResult(null, jsonObject().set('view', got.view().toJson())));
    return 0;
  }
  let res: hourglass.HostResponse;
  if (name == 'pause') res = hourglass.schedulePause(id);
  else if (name == 'resume') res = hourglass.scheduleResume(id);
  else if (name == 'delete') res = hourglass.scheduleDelete(id);
  else if (name == 'create') res = hourglass.scheduleCreate(payload.get('schedule'));
  else if (name == 'register') res = hourglass.jobsRegister(jobContract());
  else return fail('unknown action: ' + name);
  // No cursor key: the cursor stays as it was.
  writeJson(runResult(null, jsonObject().set('response', jsonRaw(res.raw))));
  return 0;
}
