-- The outbox's rendered mails are stored out of line but no longer compressed. Each mail was
-- compressed (pglz) when queued and decompressed when claimed, on the path of every submission,
-- to save a few kilobytes per mail for the days until it is purged. SQLite's 0005 moves the same
-- column to a table of its own, for its own reason.
ALTER TABLE outbox ALTER COLUMN payload SET STORAGE EXTERNAL;
