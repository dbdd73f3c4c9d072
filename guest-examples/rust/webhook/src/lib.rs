//! A webhook reporter (the Rust twin of assemblyscript/webhook, same behaviour): `schedules()`
//! declares `report` (every minute); each run POSTs
//! `{"plugin","schedule","runId","scheduledAt","firedAt","trigger","attempt","runsSeen","payload"}`
//! to config `webhook_url` with `content-type: application/json` and `idempotency-key: <runId>`,
//! and fails unless the answer is 2xx (`http: <code>: <message>` / `http: status <n>`).
//! `runsSeen` counts this schedule's delivered reports, this one included (in the cursor).
use hourglass_guest::*;

#[plugin_fn]
pub fn schedules() -> FnResult<Json<Vec<Schedule>>> {
    let report =
        Schedule::every("report", "1m").description("Posts a run report to config webhook_url.");
    Ok(Json(vec![report]))
}

#[plugin_fn]
pub fn run(Json(ctx): Json<RunContext>) -> FnResult<Json<RunResult>> {
    let url = match config::get("webhook_url")?.filter(|u| !u.is_empty()) {
        Some(url) => url,
        None => return fail("config webhook_url is not set"),
    };
    let runs_seen = ctx.cursor["runs"].as_i64().unwrap_or(0) + 1;
    let report = json!({
        "plugin": ctx.plugin,
        "schedule": ctx.schedule_id,
        "runId": ctx.run_id,
        "scheduledAt": ctx.scheduled_at,
        "firedAt": ctx.fired_at,
        "trigger": ctx.trigger,
        "attempt": ctx.attempt,
        "runsSeen": runs_seen,
        "payload": ctx.payload,
    });
    let headers = [("content-type", "application/json"), ("idempotency-key", ctx.run_id.as_str())];
    let res = http::post(&url, &headers, report.to_string().as_bytes())?;
    if let Some(message) = res.failure() {
        return fail(message);
    }
    let result = json!({ "delivered": true, "status": res.status, "runsSeen": runs_seen });
    Ok(Json(RunResult::new().cursor(json!({ "runs": runs_seen })).result(result)))
}
