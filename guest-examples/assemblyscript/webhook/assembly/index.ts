// A webhook reporter: every run POSTs a small JSON report to config `webhook_url`.
//
// - `schedules()` declares `report` (every minute).
// - `run()` POSTs `{"plugin","schedule","runId","scheduledAt","firedAt","trigger","attempt",
//   "runsSeen","payload"}` with `content-type: application/json` and `idempotency-key: <runId>`
//   (a retried attempt of the same run sends the same key). `runsSeen` counts this schedule's
//   delivered reports, this one included (kept in the cursor, which only a successful run
//   advances). A 2xx answer succeeds with `{"delivered":true,"status":n,"runsSeen":n}`; anything
//   else fails the run: `http: <code>: <message>` when there was no answer, `http: status <n>`
//   otherwise. Without `webhook_url` the run fails with `config webhook_url is not set`.
// - The manifest asks for capability `http`; its `http.allowedHosts` and the tenant's grant
//   decide where it may post (docs/guest-abi.md).

import { jsonBool, jsonInt, jsonObject, jsonString } from '../../lib/json';
import { RunContext, configGet, fail, runResult, writeJson, writeOutput } from '../../lib/io';
import { httpRequest } from '../../lib/http';

export function schedules(): i32 {
  writeOutput(
    '[{"id":"report","every":"1m","description":"Posts a run report to config webhook_url."}]',
  );
  return 0;
}

export function run(): i32 {
  const ctx = RunContext.read();
  const url = configGet('webhook_url');
  if (url === null || url.length == 0) return fail('config webhook_url is not set');
  const runsSeen = ctx.cursor.get('runs').asInt() + 1;
  const report = jsonObject()
    .set('plugin', jsonString(ctx.plugin))
    .set('schedule', jsonString(ctx.scheduleId))
    .set('runId', jsonString(ctx.runId))
    .set('scheduledAt', jsonString(ctx.scheduledAt))
    .set('firedAt', jsonString(ctx.firedAt))
    .set('trigger', jsonString(ctx.trigger))
    .set('attempt', jsonInt(ctx.attempt))
    .set('runsSeen', jsonInt(runsSeen))
    .set('payload', ctx.payload);
  const headers = jsonObject()
    .set('content-type', jsonString('application/json'))
    .set('idempotency-key', jsonString(ctx.runId));
  const res = httpRequest('POST', url!, headers, report.stringify());
  const failure = res.failure();
  if (failure !== null) return fail(failure);
  const result = jsonObject()
    .set('delivered', jsonBool(true))
    .set('status', jsonInt(res.status))
    .set('runsSeen', jsonInt(runsSeen));
  writeJson(runResult(jsonObject().set('runs', jsonInt(runsSeen)), result));
  return 0;
}
