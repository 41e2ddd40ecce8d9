-- `formgate list` without --status and the export page through all messages, newest first.
CREATE INDEX messages_by_time ON messages (created_at DESC, id DESC);
