-- Mail and bots: caps on verification mail per recipient and per hour, and addresses that asked
-- never to be mailed again.

-- "How many verification mails went to this address in the last 24 h?", counted inside the
-- transaction that queues the next one. Addresses compare case-insensitively.
CREATE INDEX outbox_by_recipient ON outbox (lower(recipient), created_at);
-- "How many mails were queued in the last hour?" (the global hourly cap).
CREATE INDEX outbox_by_time ON outbox (created_at);

-- "I didn't send this": no mail to these addresses until a moderator lifts it.
CREATE TABLE suppressed_addresses (
    address    TEXT   NOT NULL PRIMARY KEY, -- lower-cased
    created_at BIGINT NOT NULL,
    reason     TEXT   NOT NULL
);
