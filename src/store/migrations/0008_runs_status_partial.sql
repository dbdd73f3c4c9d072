-- Hourglass store, version 8: the runs' status index leaves out 'succeeded' rows.
--
-- Every run of a burst went through five entries of `runs_status` (waiting, then running, then
-- succeeded at the end of by far the largest range) and two of `runs_waiting`: about a third
-- of the SQLite work per run on the scheduler's thread, and half of each group commit's pages
-- (docs/store.md, "Run rows and their indexes"). One partial index now serves every status
-- query: a run's entry lives from its insert to its success. The store's queries name its
-- condition (`status <> 'succeeded'`) literally, which is how SQLite knows it may use it.
-- Listing succeeded runs scans runs newest first (they are most rows, so a page fills fast).
DROP INDEX IF EXISTS runs_status;
DROP INDEX IF EXISTS runs_waiting;
CREATE INDEX runs_not_succeeded ON runs (status) WHERE status <> 'succeeded';
