-- Hourglass PostgreSQL store, version 2: where a schedule's ticks run (`cluster`: once in the
-- cluster; `host`: on every host, as rows of the host's replica shard `<tenant>@<owner>`; see
-- docs/cluster.md).
ALTER TABLE schedules ADD COLUMN scope TEXT NOT NULL DEFAULT 'cluster';

-- A replica shard whose host is gone, closed by a survivor (its runs recorded, its copies
-- retired): no longer collected. Its host may still claim it again (a claim clears it).
ALTER TABLE hg_shards ADD COLUMN retired BOOLEAN NOT NULL DEFAULT false;
