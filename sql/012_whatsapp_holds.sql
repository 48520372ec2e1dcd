-- 012: per-advisor WhatsApp holds.
--
-- A `failed` status with Meta's error 131049 (the per-user marketing message limit: "This
-- message was not delivered to maintain healthy ecosystem engagement", WhatsApp Cloud API
-- error codes reference, https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/)
-- means another WhatsApp message to that advisor soon would meet the same answer. The status
-- ingest records a hold here (24 h from the failure); plan-deliveries and dispatch skip WhatsApp
-- for the advisor while `until` is in the future and use the advisor's next channel.
-- One row per advisor: a later failure extends the hold, never shortens it.
CREATE TABLE whatsapp_holds (
  advisor_id  TEXT PRIMARY KEY,
  until       INTEGER NOT NULL,   -- ms since the epoch: WhatsApp is skipped before this instant
  error_code  INTEGER NOT NULL,   -- the status error that set it (131049)
  delivery_id INTEGER,            -- the delivery whose failed status set it
  set_at      INTEGER NOT NULL    -- when the ingest wrote it (dispatch polls holds set since)
);
CREATE INDEX whatsapp_holds_set ON whatsapp_holds(set_at);
