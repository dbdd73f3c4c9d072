-- Hourglass PostgreSQL store, version 7: retries and the breaker (SQLite migration 13).
ALTER TABLE schedules ADD COLUMN retry TEXT;
ALTER TABLE schedules ADD COLUMN job TEXT;
ALTER TABLE schedules ADD COLUMN breaker_after BIGINT;
ALTER TABLE schedules ADD COLUMN fail_streak BIGINT NOT NULL DEFAULT 0;
