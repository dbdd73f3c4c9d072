-- Hourglass store, version 12: the guest's last log lines of a run (at most 10 lines of 300
-- characters, `level: message`), written with the run's outcome, for the run's detail (API,
-- dashboard, CLI). Null when the guest logged nothing and on runs recorded before this version.
ALTER TABLE runs ADD COLUMN log_tail TEXT;
