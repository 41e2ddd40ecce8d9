-- The metrics endpoint counts dead outbox rows every few seconds (`formgate_outbox_rows`); without
-- an index that is a scan of the whole outbox, sent rows and all. Dead rows are few and written
-- once, so the index costs nothing on the hot path (a partial index is touched only by rows that
-- match it).
CREATE INDEX outbox_dead ON outbox (kind) WHERE state = 'dead';
