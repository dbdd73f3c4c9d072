-- Hourglass store, version 5: live-schedule counts per tenant and plugin, kept by triggers.
-- A tenant's quota check (`schedule_create`, a plugin's load) reads its count instead of
-- counting rows (which made 40k creates in one tenant quadratic). Triggers keep the count in the
-- same transaction as the row change, so a rollback, a crash or a restart cannot make it drift.
-- Live = active, paused or completed (what counts against `maxSchedules`). Tenant and plugin
-- of a schedule never change after its insert.
CREATE TABLE IF NOT EXISTS schedule_counts (
  tenant    TEXT    NOT NULL,
  plugin_id TEXT    NOT NULL,
  live      INTEGER NOT NULL,
  PRIMARY KEY (tenant, plugin_id)
) WITHOUT ROWID;

-- Counted from the rows (again, if a store is ever migrated twice: the migration is idempotent).
DELETE FROM schedule_counts;
INSERT INTO schedule_counts (tenant, plugin_id, live)
  SELECT tenant, plugin_id, COUNT(*) FROM schedules
  WHERE state IN ('active', 'paused', 'completed')
  GROUP BY tenant, plugin_id;

CREATE TRIGGER IF NOT EXISTS schedule_counts_insert AFTER INSERT ON schedules
  WHEN NEW.state IN ('active', 'paused', 'completed')
BEGIN
  INSERT INTO schedule_counts (tenant, plugin_id, live) VALUES (NEW.tenant, NEW.plugin_id, 1)
    ON CONFLICT (tenant, plugin_id) DO UPDATE SET live = live + 1;
END;

CREATE TRIGGER IF NOT EXISTS schedule_counts_delete AFTER DELETE ON schedules
  WHEN OLD.state IN ('active', 'paused', 'completed')
BEGIN
  UPDATE schedule_counts SET live = live - 1
    WHERE tenant = OLD.tenant AND plugin_id = OLD.plugin_id;
END;

CREATE TRIGGER IF NOT EXISTS schedule_counts_revive AFTER UPDATE OF state ON schedules
  WHEN NEW.state IN ('active', 'paused', 'completed')
    AND OLD.state NOT IN ('active', 'paused', 'completed')
BEGIN
  INSERT INTO schedule_counts (tenant, plugin_id, live) VALUES (NEW.tenant, NEW.plugin_id, 1)
    ON CONFLICT (tenant, plugin_id) DO UPDATE SET live = live + 1;
END;

CREATE TRIGGER IF NOT EXISTS schedule_counts_retire AFTER UPDATE OF state ON schedules
  WHEN OLD.state IN ('active', 'paused', 'completed')
    AND NEW.state NOT IN ('active', 'paused', 'completed')
BEGIN
  UPDATE schedule_counts SET live = live - 1
    WHERE tenant = OLD.tenant AND plugin_id = OLD.plugin_id;
END;
