-- Several forms: every message knows the form it was posted to, and keeps the form's own fields
-- (everything beyond name, email, subject and message) as a JSON array of [name, value] pairs.
-- Messages stored before there were forms belong to the default form `contact` and have none.
ALTER TABLE messages ADD COLUMN form TEXT NOT NULL DEFAULT 'contact';
ALTER TABLE messages ADD COLUMN fields TEXT NOT NULL DEFAULT '[]';
-- No index on `form`: one more index to keep up cost every post ~4% of SQLite intake (measured),
-- while `list --form F` walks `messages_by_time` and stops at a page, and a form's counts scan
-- the table (35–70 ms at 100 000 messages, only while the dashboard shows one form).
