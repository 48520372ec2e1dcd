-- 003: provider status callbacks. The raw webhook body is stored first,
-- exactly as received and only after its X-Hub-Signature-256 verified, before the receiver
-- answers 200; each status inside it becomes one status_updates row, applied to the delivery
-- it names (idempotently and monotonically, store/status_events.cpp).

-- One verified webhook request. body_sha256 makes a retried or duplicated request (same bytes)
-- one row: storing it again is a no-op, which is what makes the raw store idempotent.
CREATE TABLE status_events (
  event_id      INTEGER PRIMARY KEY,
  received_at   INTEGER NOT NULL,               -- ms, daybreak's clock
  source        TEXT NOT NULL CHECK (source IN ('receiver', 'spool')),
  source_ref    TEXT NOT NULL DEFAULT '',       -- spool file name for 'spool'
  signature     TEXT NOT NULL,                  -- the X-Hub-Signature-256 header as received
  verified      INTEGER NOT NULL CHECK (verified IN (0, 1)), -- always 1 today: unverified bodies are never stored
  body          TEXT NOT NULL,                  -- the raw body, byte for byte
  body_sha256   TEXT NOT NULL UNIQUE,
  state         TEXT NOT NULL DEFAULT 'received' CHECK (state IN ('received', 'processed', 'malformed')),
  error         TEXT,                           -- why it is 'malformed' (the field named)
  processed_at  INTEGER
);
CREATE INDEX status_events_state ON status_events(state) WHERE state = 'received';

-- One status of one message. (provider_message_id, status) is unique: Meta retries webhooks
-- and the simulator duplicates them, and a second copy of a status changes nothing.
-- applied_at stays NULL while no delivery matches (neither the provider message id nor the
-- delivery id from biz_opaque_callback_data): such a status is pending and is applied when the
-- delivery's provider_message_id is recorded (StatusApplyPending).
CREATE TABLE status_updates (
  update_id           INTEGER PRIMARY KEY,
  event_id            INTEGER NOT NULL REFERENCES status_events(event_id),
  provider_message_id TEXT NOT NULL,
  delivery_id         INTEGER,                  -- from biz_opaque_callback_data when it is ours
  status              TEXT NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
  provider_at         INTEGER NOT NULL,         -- the status timestamp, ms
  phone_number_id     TEXT NOT NULL DEFAULT '',
  error_code          INTEGER,
  error_title         TEXT,
  received_at         INTEGER NOT NULL,
  applied_at          INTEGER,                  -- NULL = pending
  matched_delivery_id INTEGER,                  -- the delivery it was applied to
  outcome             TEXT,                     -- moved | unchanged | ignored (final row) | error_recorded
  UNIQUE (provider_message_id, status)
);
CREATE INDEX status_updates_pending ON status_updates(provider_message_id) WHERE applied_at IS NULL;
CREATE INDEX status_updates_delivery ON status_updates(delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX status_updates_matched ON status_updates(matched_delivery_id) WHERE matched_delivery_id IS NOT NULL;
