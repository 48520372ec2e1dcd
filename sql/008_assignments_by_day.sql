-- 008: one day's assignments read without walking every other day's.
--
-- assignments is keyed (advisor_id, date), so an advisor's rows of every day kept sit side by
-- side. plan-deliveries looks up each advisor's assignment for the day in advisor order, and
-- with history those lookups read the pages of every kept day: measured on 1M advisors planned
-- night after night (scripts/bench p), its load phase grew from 2.5 s with no earlier day to
-- 4.0-4.8 s with five; the join alone took 2.4-2.5 s against 1.2 s through this index.
--
-- This index holds what the planner reads (date, advisor_id, content_id, source), led by the
-- date, so one day is one contiguous range read in advisor order, and a night's assignments,
-- written in advisor order, append to it. It replaces assignments_date (a prefix of it).
CREATE INDEX assignments_day ON assignments(date, advisor_id, content_id, source);
DROP INDEX assignments_date;
