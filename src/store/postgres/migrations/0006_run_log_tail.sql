-- Hourglass PostgreSQL store, version 6: the guest's last log lines of a run, written with
-- the run's outcome (SQLite migration 12).
ALTER TABLE runs ADD COLUMN log_tail TEXT;
