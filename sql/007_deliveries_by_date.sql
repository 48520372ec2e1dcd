-- 007: the uniqueness of a delivery, one per (advisor, date, slot), is enforced by an index led
-- by the date and the planner's order: UNIQUE (date, order_key, advisor_id, slot_at) instead of
-- UNIQUE (advisor_id, date, slot_at). order_key is domain delivery_order_key(advisor_id, date), the
-- hash plan_run orders a day's deliveries by inside a tier; it is a function of the advisor and
-- the date, so the same deliveries count as the same as before.
--
-- Why (measured on 1M advisors, docs/performance.md):
--  * Under the advisor-led key every new row lands beside the same advisor's rows of every
--    earlier day kept, so a night's inserts touch pages all over an index that grows with
--    retention: planning took 9.4 s on an empty ledger and 20.9 s with five earlier days kept.
--    Led by the date, a new day's entries form one range at the end of the index.
--  * Inside that range, rows are inserted in planned order (ids follow send order, which
--    dispatch's updates need), and planned order is (tier, order_key): the index takes its
--    entries in a few ascending sweeps instead of at random. The same million rows went into a
--    copy of the table in 4.1 s instead of 5.3-6.1 s.
--
-- Lookups by (advisor, date) compute order_key and use the index (store/overrides.cpp). Writers
-- other than plan-deliveries must give it too: daybreak's connections register
-- daybreak_order_key(advisor_id, date) for SQL (store/db.cpp), used below.
--
-- SQLite cannot change a table's UNIQUE constraint in place, so the table is rebuilt (the
-- procedure of https://www.sqlite.org/lang_altertable.html#otheralter; Db::migrate turns
-- foreign keys off around migrations and checks them before each commit). Existing columns keep
-- their order: the archive writes SELECT * rows. The copy takes about 10 s per million rows kept
-- on the benchmark machine.
CREATE TABLE deliveries_new (
  delivery_id         INTEGER PRIMARY KEY,
  run_id              INTEGER NOT NULL REFERENCES runs(run_id),
  advisor_id          TEXT NOT NULL REFERENCES advisors(advisor_id),
  date                TEXT NOT NULL,
  slot_at             INTEGER NOT NULL,
  content_id          TEXT NOT NULL REFERENCES content(content_id),
  source              TEXT NOT NULL,
  tier                TEXT NOT NULL,
  tier_rank           INTEGER NOT NULL,      -- 0 = highest
  state               TEXT NOT NULL DEFAULT 'planned' CHECK (state IN
                        ('planned', 'sending', 'uncertain', 'retry_wait', 'accepted', 'delivered', 'read', 'dead', 'cancelled')),
  channel             TEXT NOT NULL,
  channel_index       INTEGER NOT NULL DEFAULT 0, -- position in the advisor's preference list
  sender              TEXT NOT NULL,
  planned_at          INTEGER NOT NULL,
  deadline_at         INTEGER NOT NULL,
  next_attempt_at     INTEGER,
  claim_owner         TEXT,
  claim_until         INTEGER,
  attempts            INTEGER NOT NULL DEFAULT 0,
  first_sent_at       INTEGER,               -- when the first request left (lag = first_sent_at - planned_at)
  provider_message_id TEXT,
  accepted_at         INTEGER,
  delivered_at        INTEGER,
  read_at             INTEGER,
  last_error          TEXT,
  possible_duplicate  INTEGER NOT NULL DEFAULT 0, -- resent after an uncertain send
  updated_at          INTEGER NOT NULL,
  dismissed_at        INTEGER,
  dismissed_by        TEXT,
  resent_at           INTEGER,
  order_key           INTEGER NOT NULL,      -- delivery_order_key(advisor_id, date)
  UNIQUE (date, order_key, advisor_id, slot_at)
);
INSERT INTO deliveries_new SELECT delivery_id, run_id, advisor_id, date, slot_at, content_id, source, tier, tier_rank,
  state, channel, channel_index, sender, planned_at, deadline_at, next_attempt_at, claim_owner, claim_until, attempts,
  first_sent_at, provider_message_id, accepted_at, delivered_at, read_at, last_error, possible_duplicate, updated_at,
  dismissed_at, dismissed_by, resent_at, daybreak_order_key(advisor_id, date)
FROM deliveries ORDER BY delivery_id;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_run_state ON deliveries(run_id, state);
CREATE INDEX deliveries_provider_message ON deliveries(provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX deliveries_dead ON deliveries(updated_at) WHERE state = 'dead';
CREATE INDEX deliveries_date ON deliveries(date);
