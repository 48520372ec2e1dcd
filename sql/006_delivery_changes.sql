-- 006: operator changes a running dispatch must see (overrides take effect
-- within one second). `dispatch` holds its run in memory, so every operator change to a delivery
-- (cancel, resend, content change, compliance pull, dead-letter replay) appends a row here in the
-- same transaction as the change; dispatch polls for rows past the last seq it saw and reloads
-- those deliveries from the table. Rows are small and purged with their runs.
CREATE TABLE delivery_changes (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  delivery_id INTEGER NOT NULL,
  run_id      INTEGER NOT NULL,
  kind        TEXT NOT NULL,       -- cancel, resend, content, withdraw, replay, ...
  at          INTEGER NOT NULL
);
CREATE INDEX delivery_changes_run ON delivery_changes(run_id, seq);
