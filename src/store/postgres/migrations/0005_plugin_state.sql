-- Hourglass PostgreSQL store, version 5: plugin state, the Extism variables of each plugin (SQLite
-- migration 11; docs/guest-abi.md, "Plugin state"). One row per plugin, written whole: `vars` is
-- JSON text, an array of [key, base64 value] pairs. Fenced like the plugin's other rows.
CREATE TABLE plugin_state (
  plugin_id  TEXT PRIMARY KEY,
  tenant     TEXT NOT NULL,
  vars       TEXT NOT NULL,
  bytes      BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  epoch      BIGINT NOT NULL
);
CREATE TRIGGER plugin_state_fence BEFORE INSERT OR UPDATE ON plugin_state
  FOR EACH ROW EXECUTE FUNCTION hg_fence();
