-- Hourglass PostgreSQL store, version 8: a schedule's priority (0..9, higher first; 5 for every
-- row before this version), as in the SQLite store's version 14 (docs/schedules.md,
-- "Priorities"). The run status `quota_exhausted` (fuel windows) needs no change: `runs.status`
-- has no CHECK constraint.
ALTER TABLE schedules ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;
