-- Times are unix seconds (INTEGER) so both backends store and compare them the same way.

CREATE TABLE messages (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    status               TEXT    NOT NULL CHECK (status IN ('pending', 'verified', 'released', 'deleted', 'spam')),
    -- Where a trashed message goes back to on restore.
    status_before_delete TEXT    CHECK (status_before_delete IN ('pending', 'verified', 'released', 'spam')),
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
    deleted_at           INTEGER
);

-- The dashboard's tabs page through one status, newest first (keyset pagination).
CREATE INDEX messages_by_status ON messages (status, created_at DESC, id DESC);

CREATE TABLE outbox (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id        INTEGER REFERENCES messages (id) ON DELETE CASCADE,
    kind              TEXT    NOT NULL CHECK (kind IN ('verify', 'release')),
    recipient         TEXT    NOT NULL,
    sender            TEXT    NOT NULL,
    -- Stable across retries, so a duplicate delivery after a crash is recognisable downstream.
    message_id_header TEXT    NOT NULL,
    -- The complete RFC 5322 message, rendered once when queued: a retry sends the same bytes.
    payload           BLOB    NOT NULL,
    state             TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'dead')),
    attempts          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    next_attempt_at   INTEGER NOT NULL,
    give_up_at        INTEGER NOT NULL,
    last_error        TEXT,
    last_attempt_at   INTEGER,
    sent_at           INTEGER,
    -- A worker's claim: while lease_until is in the future nobody else sends this row.
    lease_owner       TEXT,
    lease_until       INTEGER
);

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'queued';
CREATE INDEX outbox_by_message ON outbox (message_id, id);

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

CREATE INDEX audit_by_message ON audit (message_id, id);
