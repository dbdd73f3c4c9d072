//! Typed bindings for the Hourglass guest ABI (docs/guest-abi.md), over the official Extism
//! Rust PDK (`extism-pdk`).
//!
//! - Host functions (`extism:host/user`): [`jobs_register`], [`schedule_create`],
//!   [`schedule_pause`], [`schedule_resume`], [`schedule_delete`], [`schedule_get`],
//!   [`schedule_list`]. Each returns `Result<T, HostError>`; the host's
//!   `{"error":{"code","message"}}` becomes a [`HostError`] with an [`ErrorCode`].
//! - Exports: write them with `#[plugin_fn]` and the types here:
//!   `schedules() -> FnResult<Json<Vec<Schedule>>>`,
//!   `run(Json(ctx): Json<RunContext>) -> FnResult<Json<RunResult>>`, `cleanup() -> FnResult<()>`.
//!   Returning `Err` sets Extism's error and returns 1, which fails the call.
//! - Outbound HTTP: [`http`] (`http::get`, `http::post`, `http::send`); config values:
//!   [`config::get`]; Extism variables: [`var::get`] / [`var::set`] (re-exported from the PDK).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Map;
use std::fmt;

pub use extism_pdk::{self, config, plugin_fn, var, FnResult, Json};

pub mod http;
pub use serde_json::{self, json, Value};

mod raw {
    use extism_pdk::*;

    #[host_fn]
    extern "ExtismHost" {
        pub fn jobs_register(request: String) -> String;
        pub fn schedule_create(request: String) -> String;
        pub fn schedule_pause(request: String) -> String;
        pub fn schedule_resume(request: String) -> String;
        pub fn schedule_delete(request: String) -> String;
        pub fn schedule_get(request: String) -> String;
        pub fn schedule_list(request: String) -> String;
    }
}

/// The error codes a host function can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    Conflict,
    QuotaExceeded,
    Phase,
    Capability,
    TooLarge,
    /// The tenant's host calls used their share of the host's main thread; retry later.
    Busy,
    Internal,
    /// A code this version of the bindings does not know, or a broken response.
    #[serde(other)]
    Unknown,
}

/// A host function's `{"error": …}` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct HostError {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl std::error::Error for HostError {}

pub type HostResult<T> = Result<T, HostError>;

/// Fails the current export with `message` (Extism `error_set` and a non-zero return code).
pub fn fail<T>(message: impl fmt::Display) -> FnResult<T> {
    Err(extism_pdk::Error::msg(message.to_string()).into())
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Response<T> {
    Ok(T),
    Error(HostError),
}

fn broken(message: String) -> HostError {
    HostError { code: ErrorCode::Unknown, message }
}

/// Sends `request` (serialised as JSON) to host function `f` and decodes its answer.
fn call<Req: Serialize, T: DeserializeOwned>(
    f: unsafe fn(String) -> Result<String, extism_pdk::Error>,
    request: &Req,
) -> HostResult<T> {
    let text = serde_json::to_string(request).map_err(|e| broken(e.to_string()))?;
    let answer = unsafe { f(text) }.map_err(|e| broken(e.to_string()))?;
    match serde_json::from_str::<Response<T>>(&answer) {
        Ok(Response::Ok(value)) => Ok(value),
        Ok(Response::Error(err)) => Err(err),
        Err(e) => Err(broken(format!("unexpected host response {answer}: {e}"))),
    }
}

/// A schedule declaration: an entry of `schedules()`'s output, or a `schedule_create` request.
/// Build one with [`Schedule::cron`], [`Schedule::every`] or [`Schedule::at`] and the setters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Schedule {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// "skip" (default) | "buffer-one"
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlap: Option<String>,
    /// "skip" (default) | "run-once"
    #[serde(skip_serializing_if = "Option::is_none")]
    pub misfire: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// "cluster" (default) | "host": every host of a cluster runs each tick (declared only)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Cron only: the daylight-saving policy (default: the pattern's, see docs/guest-abi.md)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst: Option<Dst>,
    /// 0..9 (default 5): higher first among the tenant's ticks waiting for a run slot
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// Default: the job contract's (`job`), else one attempt per tick
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// A job contract this plugin registers (its retry policy is the default)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Default: the tenant's `breakerAfterFailures`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker: Option<Breaker>,
}

/// A cron schedule's daylight-saving policy. In a declaration either may be left out (the
/// pattern's default); a view always has both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dst {
    /// A wall time that does not exist (spring forward): "skip" | "run-once"
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// A wall time that happens twice (fall back): "once" | "twice"
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repeated: Option<String>,
}

/// A retry policy (declarations, `schedule_create`, job contracts). Build one with
/// [`Retry::attempts`] and the setters; a view's policy has every default filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// 1..10, the first attempt included
    pub max_attempts: u32,
    /// Default: base 1,000 ms, cap 60,000 ms (or the base if larger)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Outcomes that retry (default "failed", "trapped", "timed_out"; also "stack_overflow",
    /// "worker_crashed"; never "out_of_fuel", "memory_limit", "host_call_denied")
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<String>>,
}

/// Exponential backoff with full jitter: the delay before attempt n+1 is drawn from
/// [0, min(cap_ms, base_ms·2^(n-1))].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_ms: Option<u64>,
}

impl Retry {
    /// A policy of at most `max_attempts` attempts per tick, the first included.
    pub fn attempts(max_attempts: u32) -> Self {
        Retry { max_attempts, ..Default::default() }
    }
    pub fn backoff(mut self, base_ms: u64, cap_ms: u64) -> Self {
        self.backoff = Some(Backoff { base_ms: Some(base_ms), cap_ms: Some(cap_ms) });
        self
    }
    pub fn on(mut self, outcomes: &[&str]) -> Self {
        self.on = Some(outcomes.iter().map(|o| o.to_string()).collect());
        self
    }
}

/// The breaker: pause the schedule after this many failed ticks in a row (0: never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Breaker {
    pub after_failures: u32,
}

impl Schedule {
    pub fn cron(id: &str, cron: &str) -> Self {
        Schedule { id: id.into(), cron: Some(cron.into()), ..Default::default() }
    }
    pub fn every(id: &str, every: &str) -> Self {
        Schedule { id: id.into(), every: Some(every.into()), ..Default::default() }
    }
    pub fn at(id: &str, at: &str) -> Self {
        Schedule { id: id.into(), at: Some(at.into()), ..Default::default() }
    }
    pub fn timezone(mut self, zone: &str) -> Self {
        self.timezone = Some(zone.into());
        self
    }
    pub fn jitter(mut self, jitter: &str) -> Self {
        self.jitter = Some(jitter.into());
        self
    }
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = Some(payload);
        self
    }
    pub fn overlap(mut self, policy: &str) -> Self {
        self.overlap = Some(policy.into());
        self
    }
    pub fn misfire(mut self, policy: &str) -> Self {
        self.misfire = Some(policy.into());
        self
    }
    pub fn paused(mut self, paused: bool) -> Self {
        self.paused = Some(paused);
        self
    }
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.into());
        self
    }
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.into());
        self
    }
    /// Cron only: "skip" | "run-once" for a wall time that does not exist.
    pub fn dst_skipped(mut self, policy: &str) -> Self {
        self.dst.get_or_insert_with(Dst::default).skipped = Some(policy.into());
        self
    }
    /// Cron only: "once" | "twice" for a wall time that happens twice.
    pub fn dst_repeated(mut self, policy: &str) -> Self {
        self.dst.get_or_insert_with(Dst::default).repeated = Some(policy.into());
        self
    }
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }
    pub fn retry(mut self, policy: Retry) -> Self {
        self.retry = Some(policy);
        self
    }
    pub fn job(mut self, name: &str) -> Self {
        self.job = Some(name.into());
        self
    }
    /// Pause the schedule after `after_failures` failed ticks in a row (0: never).
    pub fn breaker(mut self, after_failures: u32) -> Self {
        self.breaker = Some(Breaker { after_failures });
        self
    }
}

/// What a schedule looks like to its guest (`schedule_*` answers). Serialises back to the
/// host's JSON shape.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub id: String,
    /// "declared" | "runtime"
    pub origin: String,
    pub cron: Option<String>,
    pub timezone: Option<String>,
    /// A cron schedule's policy in force (its own or its pattern's default); None otherwise
    pub dst: Option<Dst>,
    pub every: Option<String>,
    pub at: Option<String>,
    pub jitter: Option<String>,
    pub overlap: String,
    pub misfire: String,
    /// 0..9, the one in force (5 unless declared)
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Its own policy, defaults filled in; None: the job contract's, else one attempt
    pub retry: Option<Retry>,
    pub job: Option<String>,
    /// Its own breaker; None: the tenant's default
    pub breaker: Option<Breaker>,
    /// Failed ticks in a row so far (the breaker's count)
    #[serde(default)]
    pub fail_streak: u64,
    /// "active" | "paused" | "completed"
    pub state: String,
    pub pause_note: Option<String>,
    pub next_run_at: Option<String>,
    #[serde(default)]
    pub payload: Value,
    pub description: Option<String>,
}

fn default_priority() -> u8 {
    5
}

/// A page of `schedule_list`.
#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
    pub next: Option<String>,
}

/// `schedule_delete`'s answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

/// A job contract for `jobs_register` (discovery only).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobContract {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The default retry policy of the schedules that name this contract (`job`)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

/// The input of `run()`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunContext {
    pub schedule_id: String,
    pub run_id: String,
    pub plugin: String,
    pub scheduled_at: String,
    pub fired_at: String,
    /// 1, or n+1 for a retry of the same tick (same `scheduled_at`)
    pub attempt: u32,
    pub catch_up: bool,
    /// "schedule" | "buffered" | "catch_up" | "manual" | "retry" | "backfill"
    pub trigger: String,
    /// The schedule's payload (`Value::Null` when it has none).
    #[serde(default)]
    pub payload: Value,
    /// What the previous run returned as cursor (`Value::Null` at first).
    #[serde(default)]
    pub cursor: Value,
}

impl RunContext {
    /// The cursor decoded as `T`, or `T::default()` when there is none or it does not fit.
    pub fn cursor_as<T: DeserializeOwned + Default>(&self) -> T {
        serde_json::from_value(self.cursor.clone()).unwrap_or_default()
    }
}

/// The output of `run()`. Without [`RunResult::cursor`] the cursor stays as it was;
/// `cursor(Value::Null)` clears it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct RunResult(Map<String, Value>);

impl RunResult {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cursor<T: Serialize>(mut self, cursor: T) -> Self {
        self.0.insert("cursor".into(), serde_json::to_value(cursor).unwrap_or(Value::Null));
        self
    }
    pub fn result<T: Serialize>(mut self, result: T) -> Self {
        self.0.insert("result".into(), serde_json::to_value(result).unwrap_or(Value::Null));
        self
    }
}

#[derive(Serialize)]
struct IdRequest<'a> {
    id: &'a str,
}

/// Discovery only: registers (or replaces) a job contract.
pub fn jobs_register(contract: &JobContract) -> HostResult<String> {
    #[derive(Deserialize)]
    struct Name {
        name: String,
    }
    call::<_, Name>(raw::jobs_register, contract).map(|n| n.name)
}

/// Creates a runtime schedule (`conflict` if the id exists).
pub fn schedule_create(declaration: &Schedule) -> HostResult<ScheduleView> {
    call(raw::schedule_create, declaration)
}

/// Pauses one of this plugin's schedules, with an optional note for operators.
pub fn schedule_pause(id: &str, note: Option<&str>) -> HostResult<ScheduleView> {
    #[derive(Serialize)]
    struct Pause<'a> {
        id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<&'a str>,
    }
    call(raw::schedule_pause, &Pause { id, note })
}

pub fn schedule_resume(id: &str) -> HostResult<ScheduleView> {
    call(raw::schedule_resume, &IdRequest { id })
}

pub fn schedule_delete(id: &str) -> HostResult<Deleted> {
    call(raw::schedule_delete, &IdRequest { id })
}

/// One of this plugin's schedules; another plugin's id answers `not_found`.
pub fn schedule_get(id: &str) -> HostResult<ScheduleView> {
    call(raw::schedule_get, &IdRequest { id })
}

/// This plugin's schedules, `limit` at a time (None: host default), after id `after`.
pub fn schedule_list(limit: Option<u32>, after: Option<&str>) -> HostResult<ScheduleList> {
    #[derive(Serialize)]
    struct List<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<&'a str>,
    }
    call(raw::schedule_list, &List { limit, after })
}

/// Calls host function `name` with a raw JSON request and returns its whole JSON answer
/// (`{"ok":…}` or `{"error":…}`), for tools that relay answers verbatim.
pub fn call_raw(name: &str, request: &Value) -> HostResult<Value> {
    let f: unsafe fn(String) -> Result<String, extism_pdk::Error> = match name {
        "jobs_register" => raw::jobs_register,
        "schedule_create" => raw::schedule_create,
        "schedule_pause" => raw::schedule_pause,
        "schedule_resume" => raw::schedule_resume,
        "schedule_delete" => raw::schedule_delete,
        "schedule_get" => raw::schedule_get,
        "schedule_list" => raw::schedule_list,
        _ => return Err(broken(format!("unknown host function {name}"))),
    };
    let answer = unsafe { f(request.to_string()) }.map_err(|e| broken(e.to_string()))?;
    serde_json::from_str(&answer).map_err(|e| broken(e.to_string()))
}
