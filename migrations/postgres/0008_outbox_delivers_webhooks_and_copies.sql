-- Destinations: the outbox carries more than mail. Besides the verification mail ('verify') and
-- the staff mail ('release') it now holds the visitor's own copy ('confirmation') and webhook
-- deliveries ('webhook'). A webhook row keeps its URL as `recipient`, the slug of the form whose
-- webhook it is as `sender` (where its secret is found when it is sent: secrets stay in the
-- configuration, never in the database), its `webhook-id` as `message_id_header`, and its JSON
-- body as `payload`, rendered once so every retry sends the same bytes.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('verify', 'release', 'confirmation', 'webhook'));

-- The webhook worker claims only webhook rows: a small index of its own, so its claim never
-- scans a backlog of mail (a verification mail never enters it, so intake pays nothing for it).
CREATE INDEX outbox_webhooks_due ON outbox (next_attempt_at) WHERE state = 'queued' AND kind = 'webhook';
