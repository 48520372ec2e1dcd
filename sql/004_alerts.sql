-- 004: alert delivery. An alert row fires once per (rule, subject) while its
-- condition holds; every notification it causes (fired, escalated, acknowledged, resolved) is
-- queued here in the same transaction as the alert change, and a sender (a thread in dispatch,
-- or `daybreak alerts check` from cron) posts it with bounded retries. Sending never happens
-- inside a delivery transaction, so a slow webhook cannot slow deliveries down.

-- At most one firing row per rule and subject: a second "fire" is an update of the first.
CREATE UNIQUE INDEX alerts_one_firing ON alerts(rule, subject) WHERE state = 'firing';

CREATE TABLE alert_notifications (
  notification_id INTEGER PRIMARY KEY,
  alert_id        INTEGER NOT NULL REFERENCES alerts(alert_id),
  event           TEXT NOT NULL CHECK (event IN ('fired', 'escalated', 'acknowledged', 'resolved')),
  level           INTEGER NOT NULL,          -- index into alerts.chain of the level it goes to
  sink            TEXT NOT NULL CHECK (sink IN ('webhook', 'email')),
  target          TEXT NOT NULL,             -- email: the address; webhook: 'LEVEL#INDEX' into the config (URLs are secrets)
  body            TEXT NOT NULL,             -- webhook: the JSON to post; email: {"subject": ..., "text": ...}
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  sent_at         INTEGER,
  failed_at       INTEGER,                   -- gave up after the last attempt
  last_error      TEXT,
  created_at      INTEGER NOT NULL
);
CREATE INDEX alert_notifications_pending ON alert_notifications(next_attempt_at)
  WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX alert_notifications_alert ON alert_notifications(alert_id);
