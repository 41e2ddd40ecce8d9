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
use sqlx::{Sqlite, Transaction};

use super::{
    Applied, AuditRecord, Change, Inserted, ListQuery, MailForId, MailGuard, MessageSummary, OutboxItem, OutboxRecord,
    Purged, SendOutcome, Store, StoreError, SuppressedAddress, rows,
};
use crate::domain::{Message, MessageId, NewMessage, Status};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

async fn insert_outbox(
    tx: &mut Transaction<'_, Sqlite>,
    message_id: MessageId,
    now: i64,
    mail: &super::OutgoingMail,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, payload, created_at, next_attempt_at, give_up_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(message_id.0)
    .bind(mail.kind.as_str())
    .bind(&mail.recipient)
    .bind(&mail.sender)
    .bind(&mail.message_id_header)
    .bind(&mail.payload)
    .bind(now)
    .bind(now)
    .bind(mail.give_up_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn insert_audit(
    tx: &mut Transaction<'_, Sqlite>,
    id: MessageId,
    now: i64,
    audit: &super::Audit,
    from: Option<Status>,
    to: Status,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit (message_id, at, actor, action, from_status, to_status, detail) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(id.0)
        .bind(now)
        .bind(&audit.actor)
        .bind(audit.action)
        .bind(from.map(Status::as_str))
        .bind(to.as_str())
        .bind(&audit.detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        let row = sqlx::query("SELECT * FROM messages WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(rows::message).transpose()
    }

    async fn apply(&self, c: &Change) -> Result<bool, StoreError> {
        Ok(self.apply_guarded(c, None).await?.done)
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

    async fn record_code_failure(&self, id: MessageId, nonce: &str) -> Result<i64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE messages SET code_failures = code_failures + 1 WHERE id = ? AND nonce = ? RETURNING code_failures",
        )
        .bind(id.0)
        .bind(nonce)
        .fetch_optional(&self.writer)
        .await?;
        Ok(n.unwrap_or(i64::MAX))
    }

    async fn audit_trail(&self, id: MessageId) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, from_status, to_status, detail FROM audit WHERE message_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::audit).collect()
    }

    async fn outbox_for_message(&self, id: MessageId) -> Result<Vec<OutboxRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, recipient, message_id_header, state, attempts, created_at, next_attempt_at, last_error, last_attempt_at, sent_at, lease_owner
             FROM outbox WHERE message_id = ? ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(rows::outbox_record).collect()
    }

    async fn claim_outbox(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(
            "UPDATE outbox SET lease_owner = ?1, lease_until = ?2
             WHERE id IN (
                SELECT id FROM outbox
                WHERE state = 'queued' AND next_attempt_at <= ?3 AND (lease_until IS NULL OR lease_until < ?3)
                ORDER BY next_attempt_at, id LIMIT ?4)
             RETURNING id, message_id, kind, recipient, sender, message_id_header, payload, attempts, give_up_at",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut items = rows
            .iter()
            .map(rows::outbox_item)
            .collect::<Result<Vec<_>, StoreError>>()?;
        // RETURNING order is unspecified; send oldest first.
        items.sort_by_key(|i| i.id);
        Ok(items)
    }

    async fn finish_outbox(&self, owner: &str, now: i64, results: &[(i64, SendOutcome)]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        // One transaction for the whole batch: one fsync-equivalent instead of one per mail.
        let mut tx = self.write_tx().await?;
        for (id, outcome) in results {
            let (state, next, error, sent_at): (&str, Option<i64>, Option<&str>, Option<i64>) = match outcome {
                SendOutcome::Sent => ("sent", None, None, Some(now)),
                SendOutcome::Retry { at, error } => ("queued", Some(*at), Some(error), None),
                SendOutcome::Dead { error } => ("dead", None, Some(error), None),
            };
            sqlx::query(
                "UPDATE outbox SET state = ?, next_attempt_at = COALESCE(?, next_attempt_at), last_error = COALESCE(?, last_error),
                    sent_at = ?, attempts = attempts + 1, last_attempt_at = ?, lease_owner = NULL, lease_until = NULL
                 WHERE id = ? AND lease_owner = ?",
            )
            .bind(state)
            .bind(next)
            .bind(error)
            .bind(sent_at)
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let n = sqlx::query(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND state = 'queued'",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n)
    }

    async fn next_outbox_due(&self) -> Result<Option<i64>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until + 1, 0))) FROM outbox WHERE state = 'queued'",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(due)
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<MessageSummary>, StoreError> {
        let mut qb = super::list_query::<Sqlite>(
            q,
            "LIKE",
            "LEFT JOIN outbox o ON o.id = (SELECT MAX(id) FROM outbox WHERE message_id = m.id)",
        );
        let rows = qb.build().fetch_all(&self.reader).await?;
        rows.iter().map(rows::summary).collect()
    }

    async fn counts(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM messages GROUP BY status")
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::status_count).collect()
    }

    async fn purge(&self, trashed_before: i64, unverified_before: i64) -> Result<Purged, StoreError> {
        let mut tx = self.write_tx().await?;
        let trashed = sqlx::query("DELETE FROM messages WHERE status = 'deleted' AND deleted_at < ?")
            .bind(trashed_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let unverified = sqlx::query("DELETE FROM messages WHERE status IN ('pending', 'spam') AND created_at < ?")
            .bind(unverified_before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Purged { trashed, unverified })
    }

    async fn insert_guarded(
        &self,
        msg: &NewMessage,
        now: i64,
        nonce: &str,
        verify_expires_at: i64,
        mail: MailForId<'_>,
        guard: &MailGuard,
        spam: Option<&str>,
    ) -> Result<Inserted, StoreError> {
        let mut tx = self.write_tx().await?;
        let withheld = match spam {
            Some(_) => None,
            None => guard_verdict(&mut tx, msg.email.as_str(), now, guard).await?,
        };
        let status = if spam.is_some() { Status::Spam } else { Status::Pending };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (status, name, email, subject, body, ip, user_agent, created_at, updated_at, nonce, verify_expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(status.as_str())
        .bind(msg.name.as_str())
        .bind(msg.email.as_str())
        .bind(msg.subject.as_ref().map(|s| s.as_str()))
        .bind(msg.body.as_str())
        .bind(&msg.ip)
        .bind(&msg.user_agent)
        .bind(now)
        .bind(now)
        .bind(nonce)
        .bind(verify_expires_at)
        .fetch_one(&mut *tx)
        .await?;
        let id = MessageId(id);
        let detail = match spam {
            Some(why) => Some(format!("caught by a bot filter: {why}; not mailed")),
            None => withheld.clone(),
        };
        let audit = super::Audit {
            actor: "visitor".into(),
            action: "submit",
            detail,
        };
        insert_audit(&mut tx, id, now, &audit, None, status).await?;
        if spam.is_none() && withheld.is_none() {
            insert_outbox(&mut tx, id, now, &mail(id).map_err(StoreError::Mail)?).await?;
        }
        tx.commit().await?;
        Ok(Inserted { id, withheld })
    }

    async fn apply_guarded(&self, change: &Change, guard: Option<&MailGuard>) -> Result<Applied, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut withheld = None;
        let mut held;
        let mut c = change;
        if let (Some(guard), Some(mail)) = (guard, &change.mail) {
            withheld = guard_verdict(&mut tx, &mail.recipient, change.now, guard).await?;
            if let Some(reason) = &withheld {
                held = change.clone();
                held.mail = None;
                held.new_nonce = None;
                held.new_verification = None;
                held.audit.detail = Some(reason.clone());
                c = &held;
            }
        }
        let to = c.to.as_str();
        let updated = sqlx::query(
            "UPDATE messages SET
                status = ?1,
                updated_at = ?2,
                nonce = COALESCE(?3, nonce),
                confirmed_nonce = COALESCE(?4, confirmed_nonce),
                verify_expires_at = COALESCE(?5, verify_expires_at),
                verify_mails = verify_mails + (?5 IS NOT NULL),
                code_failures = CASE WHEN ?5 IS NOT NULL THEN 0 ELSE code_failures END,
                verified_at = CASE WHEN ?1 = 'verified' THEN ?2 ELSE verified_at END,
                released_at = CASE WHEN ?1 = 'released' THEN ?2 ELSE released_at END,
                deleted_at = CASE WHEN ?1 = 'deleted' THEN ?2 ELSE NULL END,
                status_before_delete = CASE WHEN ?1 = 'deleted' THEN status ELSE NULL END
             WHERE id = ?6 AND status = ?7 AND (?8 IS NULL OR nonce = ?8)",
        )
        .bind(to)
        .bind(c.now)
        .bind(&c.new_nonce)
        .bind(&c.confirmed_nonce)
        .bind(c.new_verification)
        .bind(c.id.0)
        .bind(c.from.as_str())
        .bind(&c.expect_nonce)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            // Someone else got there first (or the caller's view was stale): change nothing.
            tx.rollback().await?;
            return Ok(Applied {
                done: false,
                withheld: None,
            });
        }
        insert_audit(&mut tx, c.id, c.now, &c.audit, Some(c.from), c.to).await?;
        if let Some(mail) = &c.mail {
            insert_outbox(&mut tx, c.id, c.now, mail).await?;
        }
        tx.commit().await?;
        Ok(Applied { done: true, withheld })
    }

    async fn suppress(&self, address: &str, now: i64, reason: &str) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO suppressed_addresses (address, created_at, reason) VALUES (lower(?), ?, ?) ON CONFLICT (address) DO NOTHING",
        )
        .bind(address)
        .bind(now)
        .bind(reason)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM suppressed_addresses WHERE address = lower(?)")
            .bind(address)
            .execute(&self.writer)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn suppressed(&self) -> Result<Vec<SuppressedAddress>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT address, created_at, reason FROM suppressed_addresses ORDER BY created_at DESC, address",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(address, created_at, reason)| SuppressedAddress {
                address,
                created_at,
                reason,
            })
            .collect())
    }

    async fn count_request(
        &self,
        bucket: &str,
        key: &str,
        window_start: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        // A single statement commits on its own; no BEGIN IMMEDIATE needed for one upsert.
        let count = sqlx::query_scalar(
            "INSERT INTO rate_limits (bucket, key, window_start, count, expires_at) VALUES (?, ?, ?, 1, ?)
             ON CONFLICT (bucket, key, window_start) DO UPDATE SET count = count + 1 RETURNING count",
        )
        .bind(bucket)
        .bind(key)
        .bind(window_start)
        .bind(expires_at)
        .fetch_one(&self.writer)
        .await?;
        Ok(count)
    }

    async fn prune_rate_limits(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM rate_limits WHERE expires_at < ?")
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }
}

/// Looks up what `guard` needs, inside the write transaction (BEGIN IMMEDIATE: no other writer
/// can queue a mail between this count and our insert).
async fn guard_verdict(
    tx: &mut Transaction<'_, Sqlite>,
    recipient: &str,
    now: i64,
    guard: &MailGuard,
) -> Result<Option<String>, StoreError> {
    let suppressed: Option<i64> = sqlx::query_scalar("SELECT 1 FROM suppressed_addresses WHERE address = lower(?)")
        .bind(recipient)
        .fetch_optional(&mut **tx)
        .await?;
    let to_address = match guard.per_address {
        Some((_, window)) => Some(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE lower(recipient) = lower(?) AND created_at > ? AND kind = 'verify'",
            )
            .bind(recipient)
            .bind(now - window)
            .fetch_one(&mut **tx)
            .await?,
        ),
        None => None,
    };
    let last_hour = match guard.per_hour {
        Some(_) => Some(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE created_at > ?")
                .bind(now - 3600)
                .fetch_one(&mut **tx)
                .await?,
        ),
        None => None,
    };
    let counts = super::GuardCounts {
        suppressed: suppressed.is_some(),
        to_address,
        last_hour,
    };
    Ok(super::withhold_reason(guard, &counts))
}
