-- Several forms: every message knows the form it was posted to, and keeps the form's own fields
-- (everything beyond name, email, subject and message) as a JSON array of [name, value] pairs.
-- Messages stored before there were forms belong to the default form `contact` and have none.
ALTER TABLE messages ADD COLUMN form TEXT NOT NULL DEFAULT 'contact';
ALTER TABLE messages ADD COLUMN fields TEXT NOT NULL DEFAULT '[]';
-- `list --form F` and the dashboard's form filter, newest first.
CREATE INDEX messages_by_form ON messages (form, created_at DESC, id DESC);
