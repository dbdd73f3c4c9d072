//! A user-driven feed poller (the Rust twin of assemblyscript/poller, same behaviour).
//! `housekeeping` (declared) creates the runtime schedule `poll-feed-1` when it is missing;
//! `poll-feed-*` runs count themselves in the cursor and pause their schedule after three
//! polls; a payload `{"action": …}` (a user's request) drives one host function.
use hourglass_guest::*;

const POLLER_ID: &str = "poll-feed-1";

fn contract() -> JobContract {
    JobContract {
        name: "poll-feed".into(),
        display_name: Some("Poll a feed".into()),
        concurrency: Some(1),
        timeout_ms: Some(5000),
        ..Default::default()
    }
}

#[plugin_fn]
pub fn schedules() -> FnResult<Json<Vec<Schedule>>> {
    jobs_register(&contract())?;
    let housekeeping = Schedule::cron("housekeeping", "*/10 * * * * *")
        .timezone("Europe/Berlin")
        .description("Creates the feed poller when it is missing.");
    Ok(Json(vec![housekeeping]))
}

#[plugin_fn]
pub fn run(Json(ctx): Json<RunContext>) -> FnResult<Json<RunResult>> {
    let p = &ctx.payload;
    if let Some(action) = p["action"].as_str() {
        let id = p["id"].as_str().unwrap_or("");
        let response = match action {
            "pause" => call_raw("schedule_pause", &json!({ "id": id })),
            "resume" => call_raw("schedule_resume", &json!({ "id": id })),
            "delete" => call_raw("schedule_delete", &json!({ "id": id })),
            "create" => call_raw("schedule_create", &p["schedule"]),
            _ => return fail(format!("unknown action: {action}")),
        }?;
        return Ok(Json(RunResult::new().result(json!({ "response": response }))));
    }
    if ctx.schedule_id == "housekeeping" {
        let ticks = ctx.cursor["ticks"].as_i64().unwrap_or(0) + 1;
        let created = match schedule_get(POLLER_ID) {
            Err(e) if e.code == ErrorCode::NotFound => {
                let feed = json!({ "feed": "https://example.com/feed" });
                schedule_create(&Schedule::every(POLLER_ID, "10s").payload(feed))?;
                true
            }
            other => other.map(|_| false)?,
        };
        let out = RunResult::new().cursor(json!({ "ticks": ticks }));
        return Ok(Json(out.result(json!({ "created": created }))));
    }
    if !ctx.schedule_id.starts_with("poll-feed-") {
        return fail(format!("unknown schedule: {}", ctx.schedule_id));
    }
    let seen = ctx.cursor["seen"].as_i64().unwrap_or(0) + 1;
    if seen == 3 {
        schedule_pause(&ctx.schedule_id, Some("caught up"))?;
    }
    let polled: &Value = &ctx.payload["feed"];
    let out = RunResult::new().cursor(json!({ "seen": seen }));
    Ok(Json(out.result(json!({ "polled": polled, "seen": seen }))))
}
