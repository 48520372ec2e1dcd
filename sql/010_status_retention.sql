-- 010: bounded status tables.
--
-- Statuses that name no known delivery stay pending (applied_at NULL). StatusApplyPending reads
-- them in bounded batches from a queue ordered by checked_at (NULL = never tried, first), then
-- update_id: every row a batch tries that matches no delivery gets checked_at = now and goes to
-- the back, so a large backlog costs one bounded batch per call and every row is reached in turn.
ALTER TABLE status_updates ADD COLUMN checked_at INTEGER;
CREATE INDEX status_updates_pending_queue ON status_updates(checked_at, update_id) WHERE applied_at IS NULL;

-- Pending statuses older than [retention] status_pending_expiry_hours are expired
-- (applied_at set, outcome 'expired'): found by age without scanning applied rows.
CREATE INDEX status_updates_pending_age ON status_updates(received_at) WHERE applied_at IS NULL;

-- Raw bodies hold advisors' phone numbers: `daybreak retention` deletes events and their
-- statuses older than [retention] status_days, oldest first, in batches found by these.
CREATE INDEX status_events_received ON status_events(received_at);
CREATE INDEX status_updates_event ON status_updates(event_id);
