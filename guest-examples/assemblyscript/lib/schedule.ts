// Schedule declarations and views for Hourglass guests (docs/guest-abi.md).
//
// `Schedule` builds a declaration (a `schedules()` entry or a `schedule_create` request):
//
//   Schedule.cron('nightly', '30 2 * * *').timezone('Europe/Berlin').priority(8)
//     .retry(new RetryPolicy(4).backoff(500, 8000)).toJson()
//
// Only what a setter was called for is sent, so the host's defaults apply to the rest (and a
// declaration built without the newer setters is the JSON it always was). `ScheduleView.from`
// reads a `schedule_*` answer (`HostResponse.view()` in host.ts) into typed fields.

import { Json, jsonArray, jsonBool, jsonInt, jsonNull, jsonObject, jsonString } from './json';

function stringOrNull(j: Json): string | null {
  return j.isString() ? j.text : null;
}

function stringOrJsonNull(s: string | null): Json {
  return s === null ? jsonNull() : jsonString(s!);
}

/**
 * A retry policy (declarations, `schedule_create`, job contracts: `contract.set('retry',
 * policy.toJson())`). A view's policy has every default filled in.
 */
export class RetryPolicy {
  /** 1..10, the first attempt included. */
  maxAttempts: i32;
  /** Backoff base; 0: the default (1,000 ms). */
  baseMs: i64 = 0;
  /** Backoff cap; 0: the default (60,000 ms, or the base if larger). */
  capMs: i64 = 0;
  /**
   * Outcomes that retry; empty: the default ("failed", "trapped", "timed_out"). Also
   * "stack_overflow", "worker_crashed"; never "out_of_fuel", "memory_limit", "host_call_denied".
   */
  on: string[] = [];

  constructor(maxAttempts: i32) {
    this.maxAttempts = maxAttempts;
  }

  /** Exponential backoff with full jitter: attempt n+1 waits [0, min(cap, base·2^(n-1))] ms. */
  backoff(baseMs: i64, capMs: i64): RetryPolicy {
    this.baseMs = baseMs;
    this.capMs = capMs;
    return this;
  }

  /** The outcomes that retry (sets `on`). */
  outcomes(on: string[]): RetryPolicy {
    this.on = on;
    return this;
  }

  toJson(): Json {
    const out = jsonObject().set('maxAttempts', jsonInt(this.maxAttempts));
    if (this.baseMs > 0 || this.capMs > 0) {
      const backoff = jsonObject();
      if (this.baseMs > 0) backoff.set('baseMs', jsonInt(this.baseMs));
      if (this.capMs > 0) backoff.set('capMs', jsonInt(this.capMs));
      out.set('backoff', backoff);
    }
    if (this.on.length > 0) {
      const on = jsonArray();
      for (let i = 0; i < this.on.length; i++) on.push(jsonString(this.on[i]));
      out.set('on', on);
    }
    return out;
  }

  /** The policy in `j`, or null when `j` is not an object. */
  static fromJson(j: Json): RetryPolicy | null {
    if (!j.isObject()) return null;
    const p = new RetryPolicy(<i32>j.get('maxAttempts').asInt());
    const backoff = j.get('backoff');
    p.baseMs = backoff.get('baseMs').asInt();
    p.capMs = backoff.get('capMs').asInt();
    const on = j.get('on');
    for (let i = 0; i < on.length; i++) p.on.push(on.at(i).asString());
    return p;
  }
}

/** A cron schedule's daylight-saving policy; "" in a declaration: the pattern's default. */
export class DstPolicy {
  /** A wall time that does not exist (spring forward): "skip" | "run-once". */
  skipped: string = '';
  /** A wall time that happens twice (fall back): "once" | "twice". */
  repeated: string = '';

  toJson(): Json {
    const out = jsonObject();
    if (this.skipped.length > 0) out.set('skipped', jsonString(this.skipped));
    if (this.repeated.length > 0) out.set('repeated', jsonString(this.repeated));
    return out;
  }

  static fromJson(j: Json): DstPolicy | null {
    if (!j.isObject()) return null;
    const p = new DstPolicy();
    p.skipped = j.get('skipped').asString();
    p.repeated = j.get('repeated').asString();
    return p;
  }
}

/** The breaker: pause the schedule after `afterFailures` failed ticks in a row (0: never). */
export class Breaker {
  afterFailures: i32;

  constructor(afterFailures: i32) {
    this.afterFailures = afterFailures;
  }

  toJson(): Json {
    return jsonObject().set('afterFailures', jsonInt(this.afterFailures));
  }

  static fromJson(j: Json): Breaker | null {
    return j.isObject() ? new Breaker(<i32>j.get('afterFailures').asInt()) : null;
  }
}

/** A schedule declaration, built with `Schedule.cron` / `every` / `at` and the setters. */
export class Schedule {
  private decl: Json = jsonObject();

  private static start(id: string, key: string, value: string): Schedule {
    const s = new Schedule();
    s.decl.set('id', jsonString(id)).set(key, jsonString(value));
    return s;
  }
  static cron(id: string, cron: string): Schedule {
    return Schedule.start(id, 'cron', cron);
  }
  static every(id: string, every: string): Schedule {
    return Schedule.start(id, 'every', every);
  }
  static at(id: string, at: string): Schedule {
    return Schedule.start(id, 'at', at);
  }

  private text(key: string, value: string): Schedule {
    this.decl.set(key, jsonString(value));
    return this;
  }
  /** IANA zone, cron only (default UTC). */
  timezone(zone: string): Schedule {
    return this.text('timezone', zone);
  }
  jitter(jitter: string): Schedule {
    return this.text('jitter', jitter);
  }
  payload(payload: Json): Schedule {
    this.decl.set('payload', payload);
    return this;
  }
  /** "skip" (default) | "buffer-one" */
  overlap(policy: string): Schedule {
    return this.text('overlap', policy);
  }
  /** "skip" (default) | "run-once" */
  misfire(policy: string): Schedule {
    return this.text('misfire', policy);
  }
  paused(paused: bool): Schedule {
    this.decl.set('paused', jsonBool(paused));
    return this;
  }
  description(text: string): Schedule {
    return this.text('description', text);
  }
  /** "cluster" (default) | "host": every host of a cluster runs each tick (declared only) */
  scope(scope: string): Schedule {
    return this.text('scope', scope);
  }
  private dst(): Json {
    if (!this.decl.has('dst')) this.decl.set('dst', jsonObject());
    return this.decl.get('dst');
  }
  /** Cron only: "skip" | "run-once" for a wall time that does not exist. */
  dstSkipped(policy: string): Schedule {
    this.dst().set('skipped', jsonString(policy));
    return this;
  }
  /** Cron only: "once" | "twice" for a wall time that happens twice. */
  dstRepeated(policy: string): Schedule {
    this.dst().set('repeated', jsonString(policy));
    return this;
  }
  /** 0..9 (default 5): higher first among the tenant's ticks waiting for a run slot. */
  priority(priority: i32): Schedule {
    this.decl.set('priority', jsonInt(priority));
    return this;
  }
  /** Default: the job contract's (`job`), else one attempt per tick. */
  retry(policy: RetryPolicy): Schedule {
    this.decl.set('retry', policy.toJson());
    return this;
  }
  /** A job contract this plugin registers (its retry policy is the default). */
  job(name: string): Schedule {
    return this.text('job', name);
  }
  /** Pause after `afterFailures` failed ticks in a row (0: never; default: the tenant's). */
  breaker(afterFailures: i32): Schedule {
    this.decl.set('breaker', new Breaker(afterFailures).toJson());
    return this;
  }

  toJson(): Json {
    return this.decl;
  }
}

/** What a schedule looks like to its guest (`schedule_*` answers). */
export class ScheduleView {
  id: string = '';
  /** "declared" | "runtime" */
  origin: string = '';
  cron: string | null = null;
  timezone: string | null = null;
  /** A cron schedule's policy in force (its own or its pattern's default); null otherwise. */
  dst: DstPolicy | null = null;
  every: string | null = null;
  at: string | null = null;
  jitter: string | null = null;
  overlap: string = '';
  misfire: string = '';
  /** 0..9, the one in force (5 unless declared). */
  priority: i32 = 5;
  /** Its own policy, defaults filled in; null: the job contract's, else one attempt. */
  retry: RetryPolicy | null = null;
  job: string | null = null;
  /** Its own breaker; null: the tenant's default. */
  breaker: Breaker | null = null;
  /** Failed ticks in a row so far (the breaker's count). */
  failStreak: i64 = 0;
  /** "active" | "paused" | "completed" */
  state: string = '';
  pauseNote: string | null = null;
  nextRunAt: string | null = null;
  /** The payload (JSON null when there is none). */
  payload: Json = jsonNull();
  description: string | null = null;
  /** The whole view as parsed. */
  json: Json = jsonNull();

  static from(j: Json): ScheduleView {
    const v = new ScheduleView();
    v.json = j;
    v.id = j.get('id').asString();
    v.origin = j.get('origin').asString();
    v.cron = stringOrNull(j.get('cron'));
    v.timezone = stringOrNull(j.get('timezone'));
    v.dst = DstPolicy.fromJson(j.get('dst'));
    v.every = stringOrNull(j.get('every'));
    v.at = stringOrNull(j.get('at'));
    v.jitter = stringOrNull(j.get('jitter'));
    v.overlap = j.get('overlap').asString();
    v.misfire = j.get('misfire').asString();
    v.priority = <i32>j.get('priority').asInt(5);
    v.retry = RetryPolicy.fromJson(j.get('retry'));
    v.job = stringOrNull(j.get('job'));
    v.breaker = Breaker.fromJson(j.get('breaker'));
    v.failStreak = j.get('failStreak').asInt();
    v.state = j.get('state').asString();
    v.pauseNote = stringOrNull(j.get('pauseNote'));
    v.nextRunAt = stringOrNull(j.get('nextRunAt'));
    v.payload = j.get('payload');
    v.description = stringOrNull(j.get('description'));
    return v;
  }

  /** The view in the host's JSON shape, from the typed fields. */
  toJson(): Json {
    const dst = this.dst;
    const retry = this.retry;
    const breaker = this.breaker;
    return jsonObject()
      .set('id', jsonString(this.id))
      .set('origin', jsonString(this.origin))
      .set('cron', stringOrJsonNull(this.cron))
      .set('timezone', stringOrJsonNull(this.timezone))
      .set('dst', dst === null ? jsonNull() : dst.toJson())
      .set('every', stringOrJsonNull(this.every))
      .set('at', stringOrJsonNull(this.at))
      .set('jitter', stringOrJsonNull(this.jitter))
      .set('overlap', jsonString(this.overlap))
      .set('misfire', jsonString(this.misfire))
      .set('priority', jsonInt(this.priority))
      .set('retry', retry === null ? jsonNull() : retry.toJson())
      .set('job', stringOrJsonNull(this.job))
      .set('breaker', breaker === null ? jsonNull() : breaker.toJson())
      .set('failStreak', jsonInt(this.failStreak))
      .set('state', jsonString(this.state))
      .set('pauseNote', stringOrJsonNull(this.pauseNote))
      .set('nextRunAt', stringOrJsonNull(this.nextRunAt))
      .set('payload', this.payload)
      .set('description', stringOrJsonNull(this.description));
  }
}
