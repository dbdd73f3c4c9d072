-- Hourglass store, version 11: plugin state, the Extism variables (`var_get` / `var_set`) of each
-- plugin, kept across runs, reloads and restarts (docs/guest-abi.md, "Plugin state"). One row per
-- plugin, written whole when a call changes it: `vars` is JSON, an array of [key, base64 value]
-- pairs; `bytes` what they count against the plugin's `varBytes` (keys + values + 64 each).
-- A cleared state is an empty array (the row stays: the write path writes row images).
CREATE TABLE plugin_state (
  plugin_id  TEXT PRIMARY KEY,
  tenant     TEXT NOT NULL,
  vars       TEXT NOT NULL,
  bytes      INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
