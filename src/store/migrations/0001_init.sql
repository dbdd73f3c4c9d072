-- Hourglass store, version 1. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE plugins (
  id            TEXT PRIMARY KEY,          -- "<tenant>/<name>"
  tenant        TEXT NOT NULL,
  name          TEXT NOT NULL,
  version       TEXT NOT NULL,
  manifest_path TEXT NOT NULL,
  wasm_sha256   TEXT,
  status        TEXT NOT NULL,             -- loaded | failed | unloaded
  error         TEXT,
  updated_at    INTEGER NOT NULL
);

CREATE TABLE job_contracts (
  plugin_id  TEXT NOT NULL,
  name       TEXT NOT NULL,
  contract   TEXT NOT NULL,                -- JSON as registered (validated)
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (plugin_id, name)
);

CREATE TABLE schedules (
  key          TEXT PRIMARY KEY,           -- "<tenant>/<plugin>/<id>"
  plugin_id    TEXT NOT NULL,
  tenant       TEXT NOT NULL,
  local_id     TEXT NOT NULL,
  origin       TEXT NOT NULL,              -- declared | runtime
  spec         TEXT NOT NULL,              -- JSON ScheduleSpec
  jitter       TEXT,
  jitter_ms    INTEGER NOT NULL DEFAULT 0,
  payload      TEXT,
  overlap      TEXT NOT NULL,
  misfire      TEXT NOT NULL,
  description  TEXT,
  decl_hash    TEXT NOT NULL,
  state        TEXT NOT NULL,              -- active | paused | completed | deleted | retired
  pause_note   TEXT,
  anchor_at    INTEGER NOT NULL,
  next_at      INTEGER,                    -- nominal next fire time (jitter is derived)
  cursor       TEXT,
  buffered_at  INTEGER,                    -- nominal time of a buffered (buffer-one) tick
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);
CREATE INDEX schedules_plugin ON schedules (plugin_id, local_id);
CREATE INDEX schedules_tenant_state ON schedules (tenant, state);

CREATE TABLE runs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  schedule_key  TEXT NOT NULL,
  plugin_id     TEXT NOT NULL,
  tenant        TEXT NOT NULL,
  local_id      TEXT NOT NULL,
  trigger       TEXT NOT NULL,             -- schedule | buffered | catch_up | manual
  status        TEXT NOT NULL,             -- running | succeeded | failed | trapped | skipped_overlap | ...
  reason        TEXT,
  scheduled_at  INTEGER NOT NULL,
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER,
  attempt       INTEGER NOT NULL DEFAULT 1,
  error         TEXT,
  output_bytes  INTEGER,
  fuel_used     INTEGER,
  fuel_budget   INTEGER,
  result        TEXT
);
CREATE INDEX runs_schedule ON runs (schedule_key, id);
CREATE INDEX runs_plugin ON runs (plugin_id, id);
CREATE INDEX runs_status ON runs (status);

-- Operator commands from another process (the CLI) for a running host to apply.
CREATE TABLE operator_commands (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  schedule_key TEXT NOT NULL,
  action       TEXT NOT NULL,              -- pause | resume | trigger | delete
  note         TEXT,
  created_at   INTEGER NOT NULL,
  applied_at   INTEGER,
  result       TEXT
);

-- Liveness of the host process that owns this store (one row).
CREATE TABLE host_lease (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  pid          INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
);
