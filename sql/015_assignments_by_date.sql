-- 015: assignments keyed (date, advisor_id) instead of (advisor_id, date), so that each night's
-- assignments are one range at the end of the table instead of one row per advisor between the
-- rows of every earlier day kept.
--
-- Why (measured on 1M advisors, docs/performance.md, "The night at 1M, second round"): under the
-- advisor-led key a night's 686k fallback rows (each with its score_parts text, about 200 bytes)
-- landed beside the same advisors' earlier days, so assign-fallback split or rewrote nearly every
-- leaf page of the table and sent them through the WAL and the commit, a cost that grows with
-- every day kept. Led by the date, the day's rows fill the tail of the table in advisor order.
--
-- Every column, its type, default and constraint is as before, in the same order (readers that
-- name them, and `SELECT *`, see the same rows); only the primary key's column order changes,
-- and the key is the same set of columns, so an (advisor, date) is still one assignment and
-- `ON CONFLICT (advisor_id, date)` still names it. Lookups of one (advisor, date) search the new
-- key; one advisor's days are read one date at a time (store/engagement.cpp). The date-led
-- covering index assignments_day (sql/008) stays: it is what the planner and the ranker scan,
-- about a sixth of the table's bytes per row.
--
-- SQLite cannot change a primary key in place, so the table is rebuilt (the procedure of
-- https://www.sqlite.org/lang_altertable.html#otheralter, as sql/007 did; Db::migrate turns
-- foreign keys off around migrations and checks them before each commit). The copy is read in
-- the new key's order so it is written as an append.
CREATE TABLE assignments_new (
  advisor_id  TEXT NOT NULL REFERENCES advisors(advisor_id) ON DELETE CASCADE,
  date        TEXT NOT NULL,
  content_id  TEXT NOT NULL REFERENCES content(content_id),
  source      TEXT NOT NULL CHECK (source IN ('editorial', 'advisor', 'fallback', 'emergency', 'override')),
  score       REAL NOT NULL DEFAULT 0,
  score_parts TEXT NOT NULL DEFAULT '{}',
  reason      TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (date, advisor_id)
) WITHOUT ROWID;
INSERT INTO assignments_new (advisor_id, date, content_id, source, score, score_parts, reason, created_at)
SELECT advisor_id, date, content_id, source, score, score_parts, reason, created_at
FROM assignments ORDER BY date, advisor_id;
DROP TABLE assignments;
ALTER TABLE assignments_new RENAME TO assignments;
CREATE INDEX assignments_day ON assignments(date, advisor_id, content_id, source);
