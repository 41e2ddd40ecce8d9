-- Destinations: the outbox carries more than mail. Besides the verification mail ('verify') and
-- the staff mail ('release') it now holds the visitor's own copy ('confirmation') and webhook
-- deliveries ('webhook'). A webhook row keeps its URL as `recipient`, the slug of the form whose
-- webhook it is as `sender` (where its secret is found when it is sent: secrets stay in the
-- configuration, never in the database), its `webhook-id` as `message_id_header`, and its JSON
-- body as `payload`, rendered once so every retry sends the same bytes.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('verify', 'release', 'confirmation', 'webhook'));

-- Each worker claims one channel (mail, or webhooks): the due index leads with the channel, so
-- a backlog of one never makes the other's claim scan it.
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox ((CASE WHEN kind = 'webhook' THEN 'webhook' ELSE 'mail' END), next_attempt_at)
    WHERE state = 'queued';
