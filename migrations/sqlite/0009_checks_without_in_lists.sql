-- CHECKs spelled as comparisons, not IN lists. SQLite compiles `x IN (a, b, c)` with more than
-- two constants into a temporary b-tree that every execution of the statement builds afresh
-- (sqlite3FindInIndex: only lists of two or fewer become plain comparisons), so each
-- submission's INSERT into messages built two (status, status_before_delete), its outbox INSERT
-- one since 0008 grew `kind` to four values (+4% instructions per submission under callgrind, a
-- 3% slower intake), and every UPDATE of a status or an outbox state one more. Same tables, same
-- rows, same meaning.
--
-- Rebuilding `messages` means dropping a table that audit and outbox rows reference with ON
-- DELETE CASCADE, and foreign keys cannot be turned off inside the transaction a migration runs
-- in: so the rows that reference it are kept aside first, their tables dropped before it (a drop
-- cascades only into tables that still exist), and everything is put back with the same ids.

-- AUTOINCREMENT's high-water marks: a dropped table loses its row in sqlite_sequence, and ids of
-- purged rows must never come back.
CREATE TEMP TABLE sequences_kept AS
SELECT name, seq FROM sqlite_sequence WHERE name IN ('messages', 'audit', 'outbox');
CREATE TEMP TABLE audit_kept AS SELECT * FROM audit;
CREATE TEMP TABLE outbox_kept AS SELECT * FROM outbox;
CREATE TEMP TABLE payloads_kept AS SELECT * FROM outbox_payloads;
DROP TABLE outbox_payloads;
DROP TABLE outbox;
DROP TABLE audit;

CREATE TABLE messages_new (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    status               TEXT    NOT NULL CHECK (status = 'pending' OR status = 'verified' OR status = 'released'
                                                 OR status = 'deleted' OR status = 'spam'),
    -- Where a trashed message goes back to on restore.
    status_before_delete TEXT    CHECK (status_before_delete = 'pending' OR status_before_delete = 'verified'
                                        OR status_before_delete = 'released' OR status_before_delete = 'spam'),
    name                 TEXT    NOT NULL,
    email                TEXT    NOT NULL,
    subject              TEXT,
    body                 TEXT    NOT NULL,
    -- Consent record.
    ip                   TEXT,
    user_agent           TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    -- The current verification nonce: part of every link's MAC; replaced on confirm and on resend,
    -- which revokes older links without a token table.
    nonce                TEXT    NOT NULL,
    -- The nonce the visitor confirmed with, so a second click on the same link is recognised.
    confirmed_nonce      TEXT,
    verify_expires_at    INTEGER NOT NULL,
    verify_mails         INTEGER NOT NULL DEFAULT 1,
    code_failures        INTEGER NOT NULL DEFAULT 0,
    link_opened_at       INTEGER,
    verified_at          INTEGER,
    released_at          INTEGER,
    deleted_at           INTEGER,
    form                 TEXT    NOT NULL DEFAULT 'contact',
    fields               TEXT    NOT NULL DEFAULT '[]'
);
INSERT INTO messages_new (id, status, status_before_delete, name, email, subject, body, ip, user_agent, created_at, updated_at, nonce, confirmed_nonce, verify_expires_at, verify_mails, code_failures, link_opened_at, verified_at, released_at, deleted_at, form, fields)
SELECT id, status, status_before_delete, name, email, subject, body, ip, user_agent, created_at, updated_at, nonce, confirmed_nonce, verify_expires_at, verify_mails, code_failures, link_opened_at, verified_at, released_at, deleted_at, form, fields FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_by_status ON messages (status, created_at DESC, id DESC);
CREATE INDEX messages_by_time ON messages (created_at DESC, id DESC);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    detail      TEXT
);
INSERT INTO audit (id, message_id, at, actor, action, from_status, to_status, detail)
SELECT id, message_id, at, actor, action, from_status, to_status, detail FROM temp.audit_kept;
CREATE INDEX audit_by_message ON audit (message_id, id);

CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id        INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    kind              TEXT    NOT NULL CHECK (kind = 'verify' OR kind = 'release' OR kind = 'confirmation' OR kind = 'webhook'),
    recipient         TEXT    NOT NULL,
    sender            TEXT    NOT NULL,
    message_id_header TEXT    NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'queued' CHECK (state = 'queued' OR state = 'sent' OR state = 'dead'),
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

INSERT INTO outbox (id, message_id, kind, recipient, sender, message_id_header, state, attempts,
                        created_at, next_attempt_at, give_up_at, last_error, last_attempt_at, sent_at,
                        lease_owner, lease_until, link_nonce, link_expires_at)
SELECT id, message_id, kind, recipient, sender, message_id_header, state, attempts,
       created_at, next_attempt_at, give_up_at, last_error, last_attempt_at, sent_at,
       lease_owner, lease_until, link_nonce, link_expires_at
FROM temp.outbox_kept;
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'queued';
-- The webhook worker claims only webhook rows: a small index of its own, so its claim never
-- scans a backlog of mail (a verification mail never enters it, so intake pays nothing for it).
CREATE INDEX outbox_webhooks_due ON outbox (next_attempt_at) WHERE state = 'queued' AND kind = 'webhook';
CREATE INDEX outbox_by_message ON outbox (message_id, id);
CREATE INDEX outbox_by_recipient ON outbox (lower(recipient), created_at);
CREATE INDEX outbox_by_time ON outbox (created_at);

CREATE TABLE outbox_payloads (
    outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    -- The complete RFC 5322 message or webhook body, rendered once when queued.
    payload   BLOB    NOT NULL
);
INSERT INTO outbox_payloads (outbox_id, payload) SELECT outbox_id, payload FROM temp.payloads_kept;

UPDATE sqlite_sequence
SET seq = MAX(seq, (SELECT k.seq FROM temp.sequences_kept k WHERE k.name = sqlite_sequence.name))
WHERE name IN (SELECT name FROM temp.sequences_kept);
INSERT INTO sqlite_sequence (name, seq)
SELECT name, seq FROM temp.sequences_kept WHERE name NOT IN (SELECT name FROM sqlite_sequence);
DROP TABLE temp.sequences_kept;
DROP TABLE temp.audit_kept;
DROP TABLE temp.outbox_kept;
DROP TABLE temp.payloads_kept;
