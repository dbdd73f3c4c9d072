//! A user-driven feed poller (the Rust twin of assemblyscript/poller, same behaviour).
//! `housekeeping` (declared) creates the runtime schedule `poll-feed-1` when it is missing;
//! `poll-feed-*` runs count themselves in the cursor and pause their schedule after three
//! polls; a payload `{"action": …}` (a user's request) drives one host function (`policies`:
//! creates a schedule with retry, priority, DST policy, job and breaker, then reads it back;
//! `view`: one schedule's typed view).
//! With config `feed_url` set, `poll-feed-*` runs GET the feed instead and output
//! `{"new":[{"id","title"}…],"seen":N}` (feed.rs; config `feed_format`: `json` | `rss`, default
//! sniffed); a failed request fails the run with `http: <code>: <message>` or
//! `http: status <n>`. Without `feed_url`, nothing changes.
use hourglass_guest::*;

mod feed;

const POLLER_ID: &str = "poll-feed-1";

fn contract() -> JobContract {
    JobContract {
        name: "poll-feed".into(),
        display_name: Some("Poll a feed".into()),
        concurrency: Some(1),
        timeout_ms: Some(5000),
        // The default of schedules naming the contract (`job`) without a policy of their own.
        retry: Some(Retry::attempts(2)),
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
        match action {
            "policies" => return policies(id),
            "view" => {
                let view = schedule_get(id)?;
                return Ok(Json(RunResult::new().result(json!({ "view": view }))));
            }
            _ => {}
        }
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
    if let Some(url) = config::get("feed_url")?.filter(|u| !u.is_empty()) {
        return poll_feed(&url);
    }
    let seen = ctx.cursor["seen"].as_i64().unwrap_or(0) + 1;
    if seen == 3 {
        schedule_pause(&ctx.schedule_id, Some("caught up"))?;
    }
    let polled: &Value = &ctx.payload["feed"];
    let out = RunResult::new().cursor(json!({ "seen": seen }));
    Ok(Json(out.result(json!({ "polled": polled, "seen": seen }))))
}

/// Creates `id` with the scheduling policies of issue 14 through the typed bindings, reads it
/// back, and returns both typed views (re-encoded) as `{"created", "got"}`.
fn policies(id: &str) -> FnResult<Json<RunResult>> {
    let declaration = Schedule::cron(id, "30 2 * * *")
        .timezone("Europe/Berlin")
        .dst_skipped("skip")
        .dst_repeated("twice")
        .priority(8)
        .retry(Retry::attempts(4).backoff(500, 8000).on(&["failed", "timed_out"]))
        .job("poll-feed")
        .breaker(3);
    let created = schedule_create(&declaration)?;
    let got = schedule_get(id)?;
    Ok(Json(RunResult::new().result(json!({ "created": created, "got": got }))))
}

const ACCEPT: &str = "application/json, application/rss+xml, application/xml;q=0.9, */*;q=0.5";

/// A real poll: the feed's items not reported before, and how many were.
fn poll_feed(url: &str) -> FnResult<Json<RunResult>> {
    let configured = config::get("feed_format")?.unwrap_or_default();
    if !matches!(configured.as_str(), "" | "json" | "rss") {
        return fail(format!("feed_format: expected \"json\" or \"rss\", got \"{configured}\""));
    }
    let res = http::get(url, &[("accept", ACCEPT)])?;
    if let Some(message) = res.failure() {
        return fail(message);
    }
    let body = res.text();
    let format = match configured.as_str() {
        "" => feed::sniff(&body, res.header("content-type")),
        f => f,
    };
    let items = match format {
        "json" => match feed::parse_json(&body) {
            Some(items) => items,
            None => return fail("feed: not a JSON feed {\"items\":[…]}"),
        },
        "rss" => feed::parse_rss(&body),
        _ => return fail("feed: neither JSON nor RSS (set config feed_format)"),
    };
    let items = feed::first_distinct(items);
    let stored: String = var::get(feed::SEEN_VAR)?.unwrap_or_default();
    let previous: Vec<&str> = stored.split('\n').filter(|k| !k.is_empty()).collect();
    let known: std::collections::HashSet<&str> = previous.iter().copied().collect();
    let fresh: Vec<Value> = items
        .iter()
        .filter(|i| !known.contains(i.key.as_str()))
        .map(|i| json!({ "id": i.id, "title": i.title }))
        .collect();
    let seen = items.len() - fresh.len();
    var::set(feed::SEEN_VAR, feed::next_seen(&items, &previous).join("\n"))?;
    Ok(Json(RunResult::new().result(json!({ "new": fresh, "seen": seen }))))
}
