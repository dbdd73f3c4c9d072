-- Hourglass store, version 10: which version of its plugin ran a run (the manifest's version
-- and the module's SHA-256), written with the run's outcome. A hot reload or an upload changes
-- a plugin between two runs; each run says which one it was. Null on runs that did not run
-- (skipped, cancelled) and on runs recorded before this version.
ALTER TABLE runs ADD COLUMN plugin_version TEXT;
ALTER TABLE runs ADD COLUMN wasm_sha256 TEXT;
