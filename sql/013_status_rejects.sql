-- 013: statuses rejected one by one, and one-click unsubscribes.
--
-- A webhook body is read element by element (channels/status_parse.hpp): a status (or change,
-- or entry) that cannot be read is rejected on its own and kept here with its reason, while the
-- rest of the body is applied. Path, reason and excerpt are each at most 512 bytes, and at most
-- 100 rows are kept per body (status_events.rejected counts them all). `daybreak status
-- rejected` lists them; retention deletes them with their event.
CREATE TABLE status_rejects (
  reject_id           INTEGER PRIMARY KEY,
  event_id            INTEGER NOT NULL REFERENCES status_events(event_id),
  received_at         INTEGER NOT NULL,
  path                TEXT NOT NULL,               -- e.g. entry[0].changes[0].value.statuses[17]
  provider_message_id TEXT NOT NULL DEFAULT '',    -- the status's id when it had one
  reason              TEXT NOT NULL,               -- what was wrong, naming the field
  excerpt             TEXT NOT NULL DEFAULT ''     -- the element as received, cut
);
CREATE INDEX status_rejects_event ON status_rejects(event_id);
CREATE INDEX status_rejects_received ON status_rejects(received_at);
ALTER TABLE status_events ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0;  -- elements rejected, all of them

-- A channel the advisor unsubscribed from through the List-Unsubscribe link of an email
-- (RFC 8058 one-click, `POST /unsubscribe` on daybreak-callbacks). Such a row stays opted out
-- whatever a later advisors.csv import says; only `daybreak advisors opt-in` clears it.
ALTER TABLE advisor_channels ADD COLUMN unsubscribed_at INTEGER;
