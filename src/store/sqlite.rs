//! The embedded default: one SQLite file in WAL mode.
//!
//! Writes go through a pool of ONE connection and `BEGIN IMMEDIATE`: SQLite allows one writer at a
//! time anyway, and taking the write lock up front (instead of upgrading a read lock mid-transaction)
//! means a concurrent writer in another process (`formgate tui`) waits on the busy timeout instead of
//! failing with SQLITE_BUSY. Reads use their own pool and never block on writes (WAL).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, Transaction};

use super::engine::Engine;
use super::records::{Inserted, ListQuery, MessageSummary, Submission};
use super::shared::Dialect;
use super::{StoreError, batch, rows, search};
use crate::domain::{MailGuard, MessageId, fields_to_json};
use crate::mail::handover::Lease;
use crate::mail::queue::{Channel, MailBody, OutboxItem, OutgoingMail, SendOutcome};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Copies the write-ahead log into the database file, off the writer's path (see `checkpoints`).
    checkpointer: tokio::task::JoinHandle<()>,
    /// The file opened, to tell in `ping` that it is still the one at its path (None: in memory).
    file: Option<DatabaseFile>,
}

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A database file by path and identity. An open connection keeps reading and writing a file
/// that was deleted or replaced under it (its folder removed, a restore copied over it) without
/// an error, and everything written then is lost at the next start: readiness must notice.
struct DatabaseFile {
    path: std::path::PathBuf,
    identity: (u64, u64),
}

impl DatabaseFile {
    fn of(path: &std::path::Path) -> Option<Self> {
        let identity = Self::identity(path).ok()?;
        Some(Self {
            path: path.to_path_buf(),
            identity,
        })
    }

    fn identity(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        Ok((meta.dev(), meta.ino()))
    }

    fn still_there(&self) -> Result<(), StoreError> {
        match Self::identity(&self.path) {
            Ok(identity) if identity == self.identity => Ok(()),
            _ => Err(StoreError::FileGone(self.path.display().to_string())),
        }
    }
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the checkpointer looks at the write-ahead log.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// The writer checkpoints by itself only past this many log pages (~40 MB): a backstop, should
/// the checkpointer fall behind or stop.
const WRITER_CHECKPOINT_PAGES: &str = "10000";

impl SqliteStore {
    pub async fn open(database_url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // A file connection cannot drop like a socket; the default ping before each use is
            // one more round trip to the database thread, on the path every write waits for.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES))
            .await?;
        MIGRATOR.run(&writer).await?;
        let checkpointer = tokio::spawn(checkpoints(options.clone()));
        let file = DatabaseFile::of(options.get_filename());
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            writer,
            reader,
            checkpointer,
            file,
        })
    }

    /// Records on each claimed row whose message is gone why (see `rows::SET_ASIDE_UNREADABLE`).
    async fn set_aside(&self, unreadable: &[(i64, String)], now: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        Sqlite::set_aside(&mut tx, unreadable, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

/// SQLite's automatic checkpoint runs inside whichever commit crosses the threshold: that commit
/// copies ~4 MB into the database file and syncs it while every other writer waits. Done here on
/// a connection of its own, PASSIVE (never waiting for readers or writers), it runs beside the
/// writer instead; the log still restarts from its beginning once fully copied.
async fn checkpoints(options: SqliteConnectOptions) {
    use sqlx::Connection;
    let mut conn = None;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if conn.is_none() {
            conn = sqlx::SqliteConnection::connect_with(&options).await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut *c).await {
            tracing::debug!(error = %e, "checkpoint failed; the writer's own checkpoints are the backstop");
            conn = None;
        }
    }
}

/// Appends the INSERTs that queue `mails` (each: its message, the queue time, the mail) to a
/// script: the outbox rows, then the rendered payloads, in power-of-two chunks. Each message
/// gets one new mail per script, so its newest outbox row is the one just inserted.
fn push_outbox_inserts(
    script: &mut sqlx::QueryBuilder<'_, Sqlite>,
    mails: &[(MessageId, i64, &OutgoingMail)],
    lease: Option<&Lease>,
) {
    let (owner, until) = (lease.map(|l| l.owner.clone()), lease.map(|l| l.until));
    for range in pow2_chunks(mails.len()) {
        script.push(
            "INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, link_nonce, link_expires_at,
                                 created_at, next_attempt_at, give_up_at, lease_owner, lease_until) ",
        );
        script.push_values(&mails[range], |mut row, (id, now, mail)| {
            let (_, link_nonce, link_expires_at) = rows::body_columns(&mail.body);
            row.push_bind(id.0)
                .push_bind(mail.kind.as_str())
                .push_bind(mail.recipient.clone())
                .push_bind(mail.sender.clone())
                .push_bind(mail.message_id_header.clone())
                .push_bind(link_nonce.map(str::to_owned))
                .push_bind(link_expires_at)
                .push_bind(*now)
                .push_bind(*now)
                .push_bind(mail.give_up_at)
                .push_bind(owner.clone())
                .push_bind(until);
        });
        // The rows' ids, for mails handed to their worker in memory.
        script.push(" RETURNING message_id, id;\n");
    }
    let rendered: Vec<(MessageId, &[u8])> = mails
        .iter()
        .filter_map(|(id, _, mail)| match &mail.body {
            MailBody::Rendered(bytes) => Some((*id, bytes.as_slice())),
            MailBody::Verification(_) => None,
        })
        .collect();
    for range in pow2_chunks(rendered.len()) {
        script.push("INSERT INTO outbox_payloads (outbox_id, payload) ");
        script.push_values(&rendered[range], |mut row, (id, payload)| {
            row.push("(SELECT max(id) FROM outbox WHERE message_id = ")
                .push_bind_unseparated(id.0)
                .push_unseparated(")")
                .push_bind(payload.to_vec());
        });
        script.push(";\n");
    }
}

#[async_trait]
impl Engine for SqliteStore {
    type Db = Sqlite;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if let Some(file) = &self.file {
            file.still_there()?;
        }
        Sqlite::ping(&self.reader).await
    }

    const NEXT_DUE: &'static str =
        "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until + 1, 0))) FROM outbox WHERE state = 'queued'";

    const IDS_IN_JSON: &'static str = "id IN (SELECT value FROM json_each($3))";

    fn reads(&self) -> &SqlitePool {
        &self.reader
    }

    fn writes(&self) -> &SqlitePool {
        &self.writer
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    async fn queue_mail(
        &self,
        tx: &mut SqliteConnection,
        message_id: MessageId,
        now: i64,
        mail: &OutgoingMail,
    ) -> Result<(), StoreError> {
        let mut script = sqlx::QueryBuilder::<Sqlite>::new("");
        push_outbox_inserts(&mut script, &[(message_id, now, mail)], None);
        script.build().execute(tx).await?;
        Ok(())
    }

    async fn record_link_opened(&self, id: MessageId, now: i64) -> Result<(), StoreError> {
        // Skip the write lock entirely when it was recorded before (scanners fetch links repeatedly).
        let opened: Option<Option<i64>> = sqlx::query_scalar("SELECT link_opened_at FROM messages WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?;
        if matches!(opened, Some(None)) {
            sqlx::query("UPDATE messages SET link_opened_at = COALESCE(link_opened_at, ?) WHERE id = ?")
                .bind(now)
                .bind(id.0)
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }

    async fn claim_outbox(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        channel: Channel,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET lease_owner = ?1, lease_until = ?2
             WHERE id IN (
                SELECT id FROM outbox
                WHERE state = 'queued' AND next_attempt_at <= ?3 AND (lease_until IS NULL OR lease_until < ?3)
                  AND {channel}
                ORDER BY next_attempt_at, id LIMIT ?4)
             RETURNING id, message_id, kind, recipient, sender, message_id_header,
                       CASE WHEN link_nonce IS NULL THEN X'' END AS payload, link_nonce, link_expires_at, created_at,
                       attempts, give_up_at",
            channel = channel.sql_filter()
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let (mut items, mut unreadable) = rows::claimed_items(&rows);
        Sqlite::set_aside(&mut tx, &unreadable, now).await?;
        tx.commit().await?;
        // Rendered messages never change: read them after the claim, off the writer.
        let rendered: Vec<i64> = items
            .iter()
            .filter(|i| matches!(i.body, MailBody::Rendered(_)))
            .map(|i| i.id)
            .collect();
        if !rendered.is_empty() {
            let ids = serde_json::to_string(&rendered).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut payloads: std::collections::HashMap<i64, Vec<u8>> = sqlx::query_as(
                "SELECT outbox_id, payload FROM outbox_payloads WHERE outbox_id IN (SELECT value FROM json_each(?))",
            )
            .bind(ids)
            .fetch_all(&self.reader)
            .await?
            .into_iter()
            .collect();
            let mut missing = Vec::new();
            items.retain_mut(|item| match &mut item.body {
                MailBody::Rendered(payload) => match payloads.remove(&item.id) {
                    Some(bytes) => {
                        *payload = bytes;
                        true
                    }
                    None => {
                        missing.push((item.id, format!("outbox row {} has no message", item.id)));
                        false
                    }
                },
                MailBody::Verification(_) => true,
            });
            if !missing.is_empty() {
                // The claim is committed: a failure here must not keep the readable mails from
                // going out (the leases hold the others back from an immediate re-claim anyway).
                if let Err(e) = self.set_aside(&missing, now).await {
                    tracing::error!(error = %e, "outbox: cannot record why mails were set aside");
                }
                unreadable.extend(missing);
            }
        }
        rows::log_unreadable(&unreadable);
        Ok(items)
    }

    async fn finish_outbox(&self, owner: &str, now: i64, results: &[(i64, SendOutcome)]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        // The whole batch in one statement: the writer is held for one round trip, not one per
        // mail (new submissions wait for it meanwhile).
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|(id, outcome)| match outcome {
                SendOutcome::Sent => serde_json::json!([id, "sent", null, null, now]),
                SendOutcome::Retry { at, error } => serde_json::json!([id, "queued", at, error, null]),
                SendOutcome::Dead { error } => serde_json::json!([id, "dead", null, error, null]),
            })
            .collect();
        let rows = serde_json::Value::Array(rows).to_string();
        sqlx::query(
            "UPDATE outbox SET state = r.state, next_attempt_at = COALESCE(r.next_attempt_at, outbox.next_attempt_at),
                last_error = COALESCE(r.error, outbox.last_error), sent_at = r.sent_at, attempts = outbox.attempts + 1,
                last_attempt_at = ?2, lease_owner = NULL, lease_until = NULL
             FROM (SELECT value ->> 0 AS id, value ->> 1 AS state, value ->> 2 AS next_attempt_at, value ->> 3 AS error,
                          value ->> 4 AS sent_at
                   FROM json_each(?1)) AS r
             WHERE outbox.id = r.id AND outbox.lease_owner = ?3",
        )
        .bind(rows)
        .bind(now)
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<MessageSummary>, StoreError> {
        let mut qb = search::list_query::<Sqlite>(q, search::TextMatch::SqliteAnyCase);
        let rows = qb.build().fetch_all(&self.reader).await?;
        rows.iter().map(rows::summary).collect()
    }

    async fn insert_batch(
        &self,
        batch: &[Submission<'_>],
        guard: &MailGuard,
        lease: Option<&Lease>,
    ) -> Result<Vec<Inserted>, StoreError> {
        let Some(first) = batch.first() else {
            return Ok(Vec::new());
        };
        let mut tx = self.write_tx().await?;
        let addresses = batch::mailable_addresses(batch);
        let withheld = if addresses.is_empty() {
            vec![None; batch.len()]
        } else {
            let (lookups, last_hour) = address_lookups(&mut tx, &addresses, first.now, guard).await?;
            batch::verdicts(guard, batch, lookups, last_hour)
        };
        let ids = insert_messages(&mut tx, batch).await?;
        let details = batch::audit_details(batch, &withheld);
        let mails = batch::batch_mails(batch, &ids, &withheld)?;
        // Audit lines, mails and their messages as one script: one round trip to the database
        // thread, however many statements (unnumbered `?`s run on across statements).
        let mut script = sqlx::QueryBuilder::<Sqlite>::new("");
        for range in pow2_chunks(batch.len()) {
            script.push("INSERT INTO audit (message_id, at, actor, action, from_status, to_status, detail) ");
            script.push_values(range, |mut row, i| {
                row.push_bind(ids[i].0)
                    .push_bind(batch[i].now)
                    .push_bind("visitor")
                    .push_bind("submit")
                    .push_bind(None::<&str>)
                    .push_bind(batch[i].status().as_str())
                    .push_bind(details[i].as_deref());
            });
            script.push(";\n");
        }
        let refs: Vec<(MessageId, i64, &OutgoingMail)> = mails.iter().map(|(id, now, m)| (*id, *now, m)).collect();
        push_outbox_inserts(&mut script, &refs, lease);
        // Only the outbox INSERTs return rows.
        let outbox_ids: Vec<(MessageId, i64)> = script
            .build_query_as::<(i64, i64)>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(message, id)| (MessageId(message), id))
            .collect();
        tx.commit().await?;
        batch::inserted(ids, withheld, mails, &outbox_ids, lease)
    }
}

/// Rows per multi-row INSERT: few round trips to the database thread, few variables per statement
/// (SQLite allows 32 766), and few distinct statement texts for the prepared-statement cache.
const MAX_ROWS_PER_INSERT: usize = 64;

/// Splits `0..n` into runs of 64, 32, …, 1 rows: a batch of 13 is three statements (8 + 4 + 1),
/// and only seven INSERT shapes per table are ever prepared.
fn pow2_chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let left = n - start;
        let size = if left >= MAX_ROWS_PER_INSERT {
            MAX_ROWS_PER_INSERT
        } else {
            1 << (usize::BITS - 1 - left.leading_zeros())
        };
        out.push(start..start + size);
        start += size;
    }
    out
}

/// Inserts the batch's messages; their ids in batch order (matched by nonce, since the order of
/// RETURNING rows is not specified).
async fn insert_messages(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &[Submission<'_>],
) -> Result<Vec<MessageId>, StoreError> {
    // Every chunk in one script: one round trip to the database thread.
    let mut script = sqlx::QueryBuilder::<Sqlite>::new("");
    for range in pow2_chunks(batch.len()) {
        script.push(
            "INSERT INTO messages (status, form, name, email, subject, body, fields, ip, user_agent, created_at, updated_at, nonce, verify_expires_at) ",
        );
        script.push_values(&batch[range], |mut row, s| {
            row.push_bind(s.status().as_str())
                .push_bind(s.msg.form.as_str())
                .push_bind(s.msg.name.as_str())
                .push_bind(s.msg.email.as_str())
                .push_bind(s.msg.subject.as_ref().map(|x| x.as_str()))
                .push_bind(s.msg.body.as_str())
                .push_bind(fields_to_json(&s.msg.fields))
                .push_bind(s.msg.ip.as_deref())
                .push_bind(s.msg.user_agent.as_deref())
                .push_bind(s.now)
                .push_bind(s.now)
                .push_bind(s.nonce)
                .push_bind(s.verify_expires_at);
        });
        script.push(" RETURNING id, nonce;\n");
    }
    let rows: Vec<(i64, String)> = script.build_query_as().fetch_all(&mut **tx).await?;
    let by_nonce: std::collections::HashMap<String, MessageId> =
        rows.into_iter().map(|(id, nonce)| (nonce, MessageId(id))).collect();
    batch
        .iter()
        .map(|s| {
            by_nonce
                .get(s.nonce)
                .copied()
                .ok_or_else(|| StoreError::Corrupt("an inserted message's id did not come back".into()))
        })
        .collect()
}

/// Looks up every address of a batch at once: suppressed or not, and (with a per-address cap) how
/// many verification mails it had within the window; with an hourly cap, also the mails queued in
/// the last hour. One statement whatever the batch size.
async fn address_lookups(
    tx: &mut Transaction<'_, Sqlite>,
    addresses: &[String],
    now: i64,
    guard: &MailGuard,
) -> Result<(Vec<crate::domain::AddressLookup>, Option<i64>), StoreError> {
    let list = serde_json::to_string(addresses).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (cap_on, since) = batch::per_address_window(guard, now);
    let rows: Vec<(String, String, bool, i64, i64)> = sqlx::query_as(
        "SELECT a.value, lower(a.value),
                EXISTS (SELECT 1 FROM suppressed_addresses s WHERE s.address = lower(a.value)),
                CASE WHEN ?2 THEN (SELECT COUNT(*) FROM outbox o
                                   WHERE lower(o.recipient) = lower(a.value) AND o.created_at > ?3 AND o.kind = 'verify')
                     ELSE 0 END,
                CASE WHEN ?4 THEN (SELECT COUNT(*) FROM outbox WHERE created_at > ?5) ELSE 0 END
         FROM json_each(?1) a",
    )
    .bind(list)
    .bind(cap_on)
    .bind(since)
    .bind(guard.per_hour.is_some())
    .bind(now - 3600)
    .fetch_all(&mut **tx)
    .await?;
    Ok(batch::lookups_from_rows(rows, guard))
}
