//! Cron schedules declared in discovery, plus the job contract they run.
//! `weekday-report` fires at 09:00 Berlin time on weekdays, `nightly-cleanup` at 03:30 UTC;
//! each run counts itself in the cursor and reports what it did.
use hourglass_guest::*;

#[plugin_fn]
pub fn schedules() -> FnResult<Json<Vec<Schedule>>> {
    jobs_register(&JobContract {
        name: "weekday-report".into(),
        display_name: Some("Weekday report".into()),
        description: Some("Summarises yesterday's activity for the team.".into()),
        cron: Some("0 9 * * 1-5".into()),
        timezone: Some("Europe/Berlin".into()),
        timeout_ms: Some(30_000),
        input: Some(json!({ "team": "string" })),
        ..Default::default()
    })?;
    Ok(Json(vec![
        Schedule::cron("weekday-report", "0 9 * * 1-5")
            .timezone("Europe/Berlin")
            .payload(json!({ "team": "platform" }))
            .misfire("run-once"),
        Schedule::cron("nightly-cleanup", "30 3 * * *").description("Prunes old reports."),
    ]))
}

#[plugin_fn]
pub fn run(Json(ctx): Json<RunContext>) -> FnResult<Json<RunResult>> {
    let runs = ctx.cursor["runs"].as_i64().unwrap_or(0) + 1;
    let result = match ctx.schedule_id.as_str() {
        "weekday-report" => json!({ "report": "daily", "team": ctx.payload["team"], "for": ctx.scheduled_at }),
        "nightly-cleanup" => json!({ "pruned": 0 }),
        other => return fail(format!("unknown schedule: {other}")),
    };
    Ok(Json(RunResult::new().cursor(json!({ "runs": runs })).result(result)))
}

#[plugin_fn]
pub fn cleanup() -> FnResult<()> {
    Ok(())
}
