-- Hourglass store, version 14: a schedule's priority (0..9, higher first; 5 for every row before
-- this version). It orders the ticks of a tenant that wait for a run slot at the tenant's cap
-- (`maxRunsInFlight`), with aging (docs/schedules.md, "Priorities"). A tick waiting across a
-- restart (a `waiting` run) takes its priority from its schedule's row.
--
-- Fuel windows (the same version) need no column: `quota_exhausted` is one more run status, and
-- `runs.status` has no CHECK constraint (its values are the code's `RunStatuses`).
ALTER TABLE schedules ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;
