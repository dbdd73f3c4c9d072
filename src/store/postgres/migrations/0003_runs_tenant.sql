-- Hourglass PostgreSQL store, version 3: runs by tenant, newest first (the HTTP API's listing
-- for a tenant token, paged by start time then id like the other listings).
CREATE INDEX runs_tenant ON runs (tenant, started_at, id);
