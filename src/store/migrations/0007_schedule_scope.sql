-- Hourglass store, version 7: where a schedule's ticks run. `cluster` (every row before this
-- version): once in the cluster; `host`: on every host (docs/cluster.md). On one host both run
-- once; the column lets a run of a `host` schedule be told apart (it may not change schedules).
ALTER TABLE schedules ADD COLUMN scope TEXT NOT NULL DEFAULT 'cluster';
