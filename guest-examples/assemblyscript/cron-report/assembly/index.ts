// Cron schedules declared in discovery, plus the job contract they run.
// `weekday-report` fires at 09:00 Berlin time on weekdays, `nightly-cleanup` at 03:30 UTC;
// each run counts itself in the cursor and reports what it did.

import { Json, jsonInt, jsonObject, jsonString } from '../../lib/json';
import { RunContext, fail, runResult, writeOutput, writeJson } from '../../lib/io';
import * as hourglass from '../../lib/host';

const CONTRACT =
  '{"name":"weekday-report","displayName":"Weekday report","description":"Summarises ' +
  'yesterday\'s activity for the team.","cron":"0 9 * * 1-5","timezone":"Europe/Berlin",' +
  '"timeoutMs":30000,"input":{"team":"string"}}';

export function schedules(): i32 {
  const registered = hourglass.jobsRegister(Json.parse(CONTRACT)!);
  if (!registered.isOk) return fail('jobs_register failed: ' + registered.raw);
  writeOutput(
    '[{"id":"weekday-report","cron":"0 9 * * 1-5","timezone":"Europe/Berlin",' +
      '"payload":{"team":"platform"},"misfire":"run-once"},' +
      '{"id":"nightly-cleanup","cron":"30 3 * * *","description":"Prunes old reports."}]',
  );
  return 0;
}

export function run(): i32 {
  const ctx = RunContext.read();
  const runs = ctx.cursor.get('runs').asInt() + 1;
  const result = jsonObject();
  if (ctx.scheduleId == 'weekday-report') {
    result.set('report', jsonString('daily'));
    result.set('team', ctx.payload.get('team'));
    result.set('for', jsonString(ctx.scheduledAt));
  } else if (ctx.scheduleId == 'nightly-cleanup') {
    result.set('pruned', jsonInt(0));
  } else {
    return fail('unknown schedule: ' + ctx.scheduleId);
  }
  writeJson(runResult(jsonObject().set('runs', jsonInt(runs)), result));
  return 0;
}

export function cleanup(): i32 {
  return 0;
}
