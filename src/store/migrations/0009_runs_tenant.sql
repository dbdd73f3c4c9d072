-- Hourglass store, version 9: runs by tenant, newest first. The HTTP API lists a tenant's runs
-- (a tenant token sees nothing else), paged by id; without this index a page of a quiet tenant
-- scans every other tenant's history. The write-behind mirror drops it like the other two
-- listing indexes (src/store/write-behind.ts): history is read from the durable file.
CREATE INDEX runs_tenant ON runs (tenant, id);
