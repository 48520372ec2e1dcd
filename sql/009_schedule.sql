-- 009: the schedule's memory and each day's plan summary.
--
-- schedule_fires: the scheduled instant each daily job (nightly, dispatch) was last started
-- for by the cron guard (`daybreak schedule fire JOB`, run every minute by cron/daybreak-at).
-- One row per job; the guard's conditional upsert is what makes a job start once per
-- scheduled instant, and a missed instant (host down) start once when the host is back.
CREATE TABLE schedule_fires (
  job           TEXT PRIMARY KEY,
  scheduled_for INTEGER NOT NULL,  -- the scheduled instant, ms since the epoch
  fired_at      INTEGER NOT NULL   -- when the guard let it start
);

-- day_plans: what plan-deliveries found for a delivery day the last time it wrote the plan.
-- Dispatch's dead-man's switch compares today's eligible advisors with the deliveries planned
-- plus the advisors the plan could not reach (no opted-in channel with a sender), so a day
-- that was planned in full costs two counts, not a re-plan.
CREATE TABLE day_plans (
  date        TEXT PRIMARY KEY,
  planned_at  INTEGER NOT NULL,
  eligible    INTEGER NOT NULL,
  planned     INTEGER NOT NULL,
  unreachable INTEGER NOT NULL,
  unassigned  INTEGER NOT NULL,
  planned_by  TEXT NOT NULL      -- plan-deliveries | dispatch (the dead-man's switch)
);
