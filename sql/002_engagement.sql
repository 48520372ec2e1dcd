-- 002: what the fallback ranker learns from. One row per delivery day, content
-- item and advisor segment (domain/ranking.hpp, advisor_segment): how many deliveries reached
-- a phone (delivered or read) and how many were read. assign-fallback rebuilds the rows of the
-- last few days from deliveries.delivered_at/read_at each evening (read receipts arrive late),
-- so the table is a derived, idempotent summary: the ranker reads its sums, never deliveries.
CREATE TABLE engagement (
  date        TEXT NOT NULL,               -- delivery day D of the deliveries counted
  content_id  TEXT NOT NULL,
  segment     TEXT NOT NULL,               -- the advisor's primary topic, '-' when none
  exposures   INTEGER NOT NULL DEFAULT 0,  -- delivered_at or read_at set
  reads       INTEGER NOT NULL DEFAULT 0,  -- read_at set
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (date, content_id, segment)
) WITHOUT ROWID;
CREATE INDEX engagement_content ON engagement(content_id, segment);
