-- Hourglass store, version 3: scheduler records (issue 9).

-- The incarnation of a schedule: bumped whenever a deleted or retired schedule is re-created
-- (by a guest, an operator or a declaration), so a run of the old incarnation cannot write its
-- cursor into the new one. Done by a trigger so that every path that re-creates a row bumps it.
ALTER TABLE schedules ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;

CREATE TRIGGER schedules_incarnation AFTER UPDATE OF state ON schedules
  WHEN OLD.state IN ('deleted', 'retired') AND NEW.state NOT IN ('deleted', 'retired')
BEGIN
  UPDATE schedules SET generation = OLD.generation + 1 WHERE key = NEW.key;
END;

-- A record that accounts for a span of ticks (a misfire record: ticks missed while the host was
-- down, suspended or late) covers the nominal ticks in [scheduled_at, covers_until].
-- NULL: the record accounts for its own tick (scheduled_at) only.
ALTER TABLE runs ADD COLUMN covers_until INTEGER;

-- Ticks accepted but waiting for a tenant slot are rows with status 'waiting' (found at restart).
CREATE INDEX runs_waiting ON runs (plugin_id, id) WHERE status = 'waiting';
