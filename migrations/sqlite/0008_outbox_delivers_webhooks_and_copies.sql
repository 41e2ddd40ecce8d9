-- Destinations: the outbox carries more than mail. Besides the verification mail ('verify') and
-- the staff mail ('release') it now holds the visitor's own copy ('confirmation') and webhook
-- deliveries ('webhook'). A webhook row keeps its URL as `recipient`, the slug of the form whose
-- webhook it is as `sender` (where its secret is found when it is sent: secrets stay in the
-- configuration, never in the database), its `webhook-id` as `message_id_header`, and its JSON
-- body in `outbox_payloads`, rendered once so every retry sends the same bytes.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt. Its rendered payloads
-- are parked in a table without a foreign key meanwhile, since dropping `outbox` would cascade
-- into a table that still references it.
CREATE TABLE outbox_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id        INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    kind              TEXT    NOT NULL CHECK (kind IN ('verify', 'release', 'confirmation', 'webhook')),
    recipient         TEXT    NOT NULL,
    sender            TEXT    NOT NULL,
    message_id_header TEXT    NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dead')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    next_attempt_at   INTEGER NOT NULL,
    give_up_at        INTEGER NOT NULL,
    last_error        TEXT,
    last_attempt_at   INTEGER,
    sent_at           INTEGER,
    lease_owner       TEXT,
    lease_until       INTEGER,
    link_nonce        TEXT,
    link_expires_at   INTEGER
);

INSERT INTO outbox_new (id, message_id, kind, recipient, sender, message_id_header, state, attempts,
                        created_at, next_attempt_at, give_up_at, last_error, last_attempt_at, sent_at,
                        lease_owner, lease_until, link_nonce, link_expires_at)
SELECT id, message_id, kind, recipient, sender, message_id_header, state, attempts,
       created_at, next_attempt_at, give_up_at, last_error, last_attempt_at, sent_at,
       lease_owner, lease_until, link_nonce, link_expires_at
FROM outbox;

CREATE TABLE outbox_payloads_parked (outbox_id INTEGER PRIMARY KEY, payload BLOB NOT NULL);
INSERT INTO outbox_payloads_parked SELECT outbox_id, payload FROM outbox_payloads;
DROP TABLE outbox_payloads;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;

CREATE TABLE outbox_payloads (
    outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    -- The complete RFC 5322 message or webhook body, rendered once when queued.
    payload   BLOB    NOT NULL
);
INSERT INTO outbox_payloads SELECT outbox_id, payload FROM outbox_payloads_parked;
DROP TABLE outbox_payloads_parked;

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'queued';
-- The webhook worker claims only webhook rows: a small index of its own, so its claim never
-- scans a backlog of mail (a verification mail never enters it, so intake pays nothing for it).
CREATE INDEX outbox_webhooks_due ON outbox (next_attempt_at) WHERE state = 'queued' AND kind = 'webhook';
CREATE INDEX outbox_by_message ON outbox (message_id, id);
CREATE INDEX outbox_by_recipient ON outbox (lower(recipient), created_at);
CREATE INDEX outbox_by_time ON outbox (created_at);
