-- 011: what the WhatsApp Cloud API said about an attempt, beyond its code.
--
-- fbtrace_id: Meta's trace id of an error answer (the error object's `fbtrace_id`), what Meta's
-- support asks for when a code needs their help (368, 131031, 131048 ...).
-- held_for_quality: 1 when the send answer's messages[0].message_status was
-- "held_for_quality_assessment" (accepted, but Meta holds it while it judges the message's quality).
-- error_scope: what the error is about, from the WhatsApp error policy (docs/whatsapp-errors.md):
-- message, advisor, template, phone_number, account, or 'unknown' for a code not in the table.
ALTER TABLE delivery_attempts ADD COLUMN fbtrace_id TEXT;
ALTER TABLE delivery_attempts ADD COLUMN held_for_quality INTEGER NOT NULL DEFAULT 0;
ALTER TABLE delivery_attempts ADD COLUMN error_scope TEXT;
