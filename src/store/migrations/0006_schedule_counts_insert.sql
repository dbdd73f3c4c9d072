-- Hourglass store, version 6: the store counts the rows it inserts itself (one update of
-- `schedule_counts` per insert statement, in the same transaction), instead of a trigger per row:
-- the per-row trigger was a third of the cost of writing a plugin's 1,000 new schedules. Only
-- the store inserts schedule rows (SqliteStore.insertSchedule / insertSchedules). The triggers
-- for deletes and state changes stay (those are rare and row by row anyway).
DROP TRIGGER IF EXISTS schedule_counts_insert;
