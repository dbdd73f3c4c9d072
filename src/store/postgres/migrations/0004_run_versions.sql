-- Hourglass PostgreSQL store, version 4: which version of its plugin ran a run (the manifest's
-- version and the module's SHA-256), written with the run's outcome (SQLite migration 10).
ALTER TABLE runs ADD COLUMN plugin_version TEXT;
ALTER TABLE runs ADD COLUMN wasm_sha256 TEXT;
