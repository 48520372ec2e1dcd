-- 006: a run's kind on the PostgreSQL ledger, as SQLite's sql/014: 'morning' is a day's planned
-- run, 'urgent' an item sent at once to a segment (`daybreak send-now`). A publish copies the
-- column from the SQLite file; dispatch reads it: an urgent run's rows go first on their sender,
-- and a dispatch already running adopts an urgent run published while it runs (as on SQLite).
-- The runs published before this migration are backfilled from their plan report: send-now's
-- says {"kind":"urgent", …} (compact JSON), the day's plan never does.
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'morning' CHECK (kind IN ('morning', 'urgent'));
UPDATE runs SET kind = 'urgent' WHERE strpos(plan_report, '"kind":"urgent"') > 0;
-- The adoption's look-up, every few seconds on every dispatch: the open urgent runs only.
CREATE INDEX runs_urgent_open ON runs(window_start) WHERE kind = 'urgent' AND state IN ('planned', 'running');
