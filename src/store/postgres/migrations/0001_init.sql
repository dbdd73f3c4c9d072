-- Hourglass PostgreSQL store, version 1. Times in rows are milliseconds since the Unix epoch
-- (UTC), as in the SQLite store; lease expiries use the database's own clock (timestamptz), so
-- hosts never compare their clocks with each other.

CREATE TABLE hg_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- One id sequence for runs and operator commands (ids are taken by hosts in blocks).
CREATE SEQUENCE hg_ids;

-- Hosts of the cluster, for rebalancing (a host is live while its row has not expired).
CREATE TABLE hg_hosts (
  owner        TEXT PRIMARY KEY,           -- a random token per Host instance
  pid          INTEGER NOT NULL,
  host_name    TEXT NOT NULL,
  started_at   BIGINT NOT NULL,
  heartbeat_at TIMESTAMPTZ NOT NULL,
  expires_at   TIMESTAMPTZ NOT NULL
);

-- One lease per tenant: the unit a host owns. `epoch` counts the tenant's owners (a fencing
-- number): every row a host writes for the tenant carries the epoch it owned it under, and
-- hg_fence() refuses a row whose epoch is not the current one.
CREATE TABLE hg_shards (
  tenant     TEXT PRIMARY KEY,
  owner      TEXT,                         -- NULL: free
  epoch      BIGINT NOT NULL DEFAULT 0,
  expires_at TIMESTAMPTZ,
  claimed_at TIMESTAMPTZ
);

-- Every claim of a tenant's lease (for operators, and to check fencing from the database:
-- a row written under an epoch must fall within that epoch's ownership).
CREATE TABLE hg_lease_history (
  tenant     TEXT NOT NULL,
  epoch      BIGINT NOT NULL,
  owner      TEXT NOT NULL,
  claimed_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (tenant, epoch)
);

-- Writes refused because their epoch was stale (kept for operators and the cluster test).
CREATE TABLE hg_fence_rejections (
  id       BIGSERIAL PRIMARY KEY,
  tenant   TEXT NOT NULL,
  owner    TEXT NOT NULL,
  epoch    BIGINT NOT NULL,
  rows     INTEGER NOT NULL,
  at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE FUNCTION hg_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  current_epoch BIGINT;
BEGIN
  SELECT epoch INTO current_epoch FROM hg_shards WHERE tenant = NEW.tenant;
  IF current_epoch IS NULL OR NEW.epoch <> current_epoch THEN
    RAISE EXCEPTION 'stale write to tenant % under epoch % (current: %)',
      NEW.tenant, NEW.epoch, current_epoch USING ERRCODE = 'HGF01';
  END IF;
  RETURN NEW;
END $$;

CREATE TABLE plugins (
  id            TEXT PRIMARY KEY,
  tenant        TEXT NOT NULL,
  name          TEXT NOT NULL,
  version       TEXT NOT NULL,
  manifest_path TEXT NOT NULL,
  wasm_sha256   TEXT,
  status        TEXT NOT NULL,
  error         TEXT,
  updated_at    BIGINT NOT NULL,
  epoch         BIGINT NOT NULL
);
CREATE TRIGGER plugins_fence BEFORE INSERT OR UPDATE ON plugins
  FOR EACH ROW EXECUTE FUNCTION hg_fence();

CREATE TABLE job_contracts (
  plugin_id  TEXT NOT NULL,
  tenant     TEXT NOT NULL,
  name       TEXT NOT NULL,
  contract   TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  epoch      BIGINT NOT NULL,
  PRIMARY KEY (plugin_id, name)
);
CREATE TRIGGER job_contracts_fence BEFORE INSERT OR UPDATE ON job_contracts
  FOR EACH ROW EXECUTE FUNCTION hg_fence();

CREATE TABLE schedules (
  key          TEXT PRIMARY KEY,
  plugin_id    TEXT NOT NULL,
  tenant       TEXT NOT NULL,
  local_id     TEXT NOT NULL,
  origin       TEXT NOT NULL,
  spec         TEXT NOT NULL,
  jitter       TEXT,
  jitter_ms    BIGINT NOT NULL DEFAULT 0,
  payload      TEXT,
  overlap      TEXT NOT NULL,
  misfire      TEXT NOT NULL,
  description  TEXT,
  decl_hash    TEXT NOT NULL,
  state        TEXT NOT NULL,
  pause_note   TEXT,
  anchor_at    BIGINT NOT NULL,
  next_at      BIGINT,
  cursor       TEXT,
  buffered_at  BIGINT,
  created_at   BIGINT NOT NULL,
  updated_at   BIGINT NOT NULL,
  generation   BIGINT NOT NULL DEFAULT 1,
  epoch        BIGINT NOT NULL
);
CREATE INDEX schedules_plugin ON schedules (plugin_id, local_id);
CREATE INDEX schedules_tenant_state ON schedules (tenant, state);
CREATE TRIGGER schedules_fence BEFORE INSERT OR UPDATE ON schedules
  FOR EACH ROW EXECUTE FUNCTION hg_fence();

CREATE TABLE runs (
  id            BIGINT PRIMARY KEY,
  schedule_key  TEXT NOT NULL,
  plugin_id     TEXT NOT NULL,
  tenant        TEXT NOT NULL,
  local_id      TEXT NOT NULL,
  trigger       TEXT NOT NULL,
  status        TEXT NOT NULL,
  reason        TEXT,
  scheduled_at  BIGINT NOT NULL,
  started_at    BIGINT NOT NULL,
  finished_at   BIGINT,
  attempt       INTEGER NOT NULL DEFAULT 1,
  error         TEXT,
  output_bytes  BIGINT,
  fuel_used     BIGINT,
  fuel_budget   BIGINT,
  result        TEXT,
  covers_until  BIGINT,
  epoch         BIGINT NOT NULL
);
-- Listings newest first (the CLI: src/store/postgres/pg-reads.ts) by start time, then id: run ids
-- come in per-host blocks, so they are not in time order across hosts.
CREATE INDEX runs_schedule ON runs (schedule_key, started_at, id);
CREATE INDEX runs_plugin ON runs (plugin_id, started_at, id);
CREATE INDEX runs_started ON runs (started_at, id);
CREATE INDEX runs_open ON runs (tenant, status) WHERE status IN ('running', 'waiting');
CREATE TRIGGER runs_fence BEFORE INSERT OR UPDATE ON runs
  FOR EACH ROW EXECUTE FUNCTION hg_fence();

-- Operator commands from any host or CLI, applied by the host that owns the schedule's tenant.
CREATE TABLE operator_commands (
  id           BIGINT PRIMARY KEY DEFAULT nextval('hg_ids'),
  schedule_key TEXT NOT NULL,
  tenant       TEXT NOT NULL GENERATED ALWAYS AS (split_part(schedule_key, '/', 1)) STORED,
  action       TEXT NOT NULL,
  note         TEXT,
  created_at   BIGINT NOT NULL,
  applied_at   BIGINT,
  result       TEXT
);
CREATE INDEX operator_commands_pending ON operator_commands (tenant, id) WHERE applied_at IS NULL;
