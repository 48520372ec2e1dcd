-- 002: what the WhatsApp Cloud API said about an attempt, beyond its code (as SQLite's 011):
-- fbtrace_id (Meta's trace id of an error answer, what Meta's support asks for), held_for_quality
-- (1 when the send answer's message_status was "held_for_quality_assessment") and error_scope
-- (what the error is about in the WhatsApp error policy, docs/whatsapp-errors.md).
ALTER TABLE delivery_attempts ADD COLUMN fbtrace_id TEXT;
ALTER TABLE delivery_attempts ADD COLUMN held_for_quality INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delivery_attempts ADD COLUMN error_scope TEXT;
