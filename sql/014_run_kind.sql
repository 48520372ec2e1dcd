-- 014: a run's kind. 'morning' is the day's planned run (every run before this migration);
-- 'urgent' is an item sent at once to a segment (daybreak send-now). dispatch sends an urgent
-- run's due rows before routine ones on the same sender (engine/send_schedule.hpp, EEntry).
ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'morning' CHECK (kind IN ('morning', 'urgent'));
