-- Fixed-window request counters per client, shared by every instance on this database.
-- One row per (bucket, client key, window); rows past `expires_at` are pruned now and then.
CREATE TABLE rate_limits (
    bucket       TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (bucket, key, window_start)
);
CREATE INDEX rate_limits_by_expiry ON rate_limits (expires_at);
