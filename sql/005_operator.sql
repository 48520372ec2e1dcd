-- 005: what the operator tool needs.
--  * Dead letters an operator has looked at and decided not to send stay 'dead' (the state machine
--    has no other way out but replay) and are marked dismissed, so `daybreak dead list` shows
--    only what still needs a decision.
--  * resent_at: when an operator sent a delivery back to 'planned' (resend, dead replay). The
--    delivery keeps its deadline_at, so the SLA stays honest (a resend after the deadline is
--    late), and dispatch measures its give-up limit from resent_at instead of the deadline.
--  * runs.reopened_at: a closed run reopened because one of its deliveries was resent; dispatch
--    picks such runs up like due ones (store/overrides.hpp, RunListReopened).
ALTER TABLE deliveries ADD COLUMN dismissed_at INTEGER;
ALTER TABLE deliveries ADD COLUMN dismissed_by TEXT;
ALTER TABLE deliveries ADD COLUMN resent_at INTEGER;
ALTER TABLE runs ADD COLUMN reopened_at INTEGER;

-- Dead-letter lists and counts read only the dead rows.
CREATE INDEX deliveries_dead ON deliveries(updated_at) WHERE state = 'dead';
-- Exports and retention walk deliveries by day.
CREATE INDEX deliveries_date ON deliveries(date);
-- `daybreak audit --since` and the newest-first listing.
CREATE INDEX audit_log_at ON audit_log(at);
