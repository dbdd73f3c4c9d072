-- Hourglass store, version 2: the host lease names its holder and is taken by compare-and-set.
-- `owner` is a random token per Host instance (two hosts in one process differ); `epoch` counts
-- takeovers (a fencing number); `host_name` and `pid` name the holder in the refusal message.
ALTER TABLE host_lease ADD COLUMN owner     TEXT    NOT NULL DEFAULT '';
ALTER TABLE host_lease ADD COLUMN host_name TEXT    NOT NULL DEFAULT '';
ALTER TABLE host_lease ADD COLUMN epoch     INTEGER NOT NULL DEFAULT 0;
