-- Verification mails are no longer rendered when queued but when sent, from what the row keeps:
-- the link's nonce and expiry (and its Message-ID, recipient and queue time, already here). A
-- new submission then writes a small outbox row instead of a ~5 KB message. Staff mails
-- (release) keep their rendered payload: they quote a message that may be purged before they
-- go out. A row has exactly one of the two.
ALTER TABLE outbox ADD COLUMN link_nonce TEXT;
ALTER TABLE outbox ADD COLUMN link_expires_at BIGINT;
ALTER TABLE outbox ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE outbox ADD CONSTRAINT outbox_rendered_or_link
    CHECK ((payload IS NULL) = (link_nonce IS NOT NULL AND link_expires_at IS NOT NULL));
