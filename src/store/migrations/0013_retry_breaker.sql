-- Hourglass store, version 13: retries and the breaker (docs/schedules.md, "Retries and the
-- breaker").
-- `retry`: the schedule's own retry policy (JSON, as declared, with its defaults filled in), or
-- null (the job contract's, when `job` names one; else no retry). `job`: the job contract
-- (`jobs_register`) the schedule names, or null. `breaker_after`: failed ticks in a row that
-- pause it (0: never), or null (the tenant's `breakerAfterFailures`). `fail_streak`: its failed
-- ticks in a row so far (a success, or an operator's resume, sets it to 0).
-- A pending retry is a `waiting` run row with trigger `retry`: no column of its own.
ALTER TABLE schedules ADD COLUMN retry TEXT;
ALTER TABLE schedules ADD COLUMN job TEXT;
ALTER TABLE schedules ADD COLUMN breaker_after INTEGER;
ALTER TABLE schedules ADD COLUMN fail_streak INTEGER NOT NULL DEFAULT 0;
