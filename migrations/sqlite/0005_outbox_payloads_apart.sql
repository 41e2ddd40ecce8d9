-- The outbox's rendered mails move to a table of their own. SQLite rewrites a whole row on UPDATE,
-- overflow pages and all: claiming a mail and recording its outcome change only a lease and a
-- state, yet rewrote the ~5 KB message both times, on the one writer that new submissions wait
-- for. PostgreSQL keeps large values out of line (TOAST) and needs no such change.
CREATE TABLE outbox_payloads (
    outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    -- The complete RFC 5322 message, rendered once when queued: a retry sends the same bytes.
    payload   BLOB    NOT NULL
);

INSERT INTO outbox_payloads (outbox_id, payload) SELECT id, payload FROM outbox;

ALTER TABLE outbox DROP COLUMN payload;
