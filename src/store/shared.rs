//! The statements both engines run as they are, written once. SQLite binds `$N` by its number,
//! so one text serves both. `engine.rs` builds the `Store` on them; what really differs stays in
//! `sqlite.rs` and `postgres.rs`.

use std::future::Future;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::error::StoreError;
use super::records::{Audit, AuditRecord, Change, MailSummary, OutboxGauge, Purged, SuppressedAddress};
use super::rows;
use crate::domain::{GuardCounts, MailGuard, Message, MessageId, Status, Withheld, withhold};
use crate::mail::queue::{Channel, MailKind, OutboxRecord};

/// The newest migration a migrator carries: what "migrations current" compares against.
pub(super) fn newest_migration(migrator: &sqlx::migrate::Migrator) -> Option<i64> {
    migrator.iter().map(|m| m.version).max()
}

/// How many rows a statement changed, whichever the engine.
pub(super) trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// The statements every engine runs alike, for engine `Self`: `Sqlite::message(&pool, id)`,
/// `Postgres::insert_audit(&mut tx, …)`. Implemented once, below, for every sqlx engine that
/// can bind and read the types formgate's schema uses; `engine.rs` builds the `Store` on them.
pub trait Dialect: Database {
    fn ping(pool: &Pool<Self>) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn message(pool: &Pool<Self>, id: MessageId) -> impl Future<Output = Result<Option<Message>, StoreError>> + Send;

    /// Counts a wrong code against the message's current nonce; `i64::MAX` when the nonce moved on.
    fn record_code_failure(
        pool: &Pool<Self>,
        id: MessageId,
        nonce: &str,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    fn audit_trail(
        pool: &Pool<Self>,
        id: MessageId,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;

    fn outbox_for_message(
        pool: &Pool<Self>,
        id: MessageId,
    ) -> impl Future<Output = Result<Vec<OutboxRecord>, StoreError>> + Send;

    fn release_leases(pool: &Pool<Self>, owner: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records on each unreadable claimed row why (see `rows::SET_ASIDE_UNREADABLE`).
    fn set_aside(
        conn: &mut Self::Connection,
        unreadable: &[(i64, String)],
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Messages per status, of one form (its slug) or of all.
    fn counts(
        pool: &Pool<Self>,
        form: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(Status, i64)>, StoreError>> + Send;

    /// Both deletes of `Store::purge`, inside the caller's transaction.
    fn purge(
        conn: &mut Self::Connection,
        trashed_before: i64,
        unverified_before: i64,
    ) -> impl Future<Output = Result<Purged, StoreError>> + Send;

    fn insert_audit(
        conn: &mut Self::Connection,
        id: MessageId,
        now: i64,
        audit: &Audit,
        from: Option<Status>,
        to: Option<Status>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The CAS of `Store::redeliver`, inside the caller's transaction: false when the row is not
    /// a sent or dead delivery of message `id`.
    fn requeue(
        conn: &mut Self::Connection,
        id: MessageId,
        outbox_id: i64,
        now: i64,
        give_up_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The deliveries of the messages `ids`, oldest first, each with its message: what a list
    /// page shows the worst of.
    fn deliveries_of(
        pool: &Pool<Self>,
        ids: &[MessageId],
    ) -> impl Future<Output = Result<Vec<(MessageId, MailSummary, bool)>, StoreError>> + Send;

    /// The compare-and-swap and its audit line, inside the caller's transaction. False, having
    /// written nothing, when the message had moved on (the caller rolls back).
    fn apply_change(conn: &mut Self::Connection, c: &Change) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The mail cap's verdict on a mail to `recipient`, from counts looked up inside the caller's
    /// write transaction (which must keep other writers from queueing to it meanwhile).
    fn verdict(
        conn: &mut Self::Connection,
        recipient: &str,
        now: i64,
        guard: &MailGuard,
    ) -> impl Future<Output = Result<Option<Withheld>, StoreError>> + Send;

    /// "I didn't send this": false if the address was suppressed already.
    fn suppress(
        pool: &Pool<Self>,
        address: &str,
        now: i64,
        reason: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn unsuppress(pool: &Pool<Self>, address: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn suppressed(pool: &Pool<Self>) -> impl Future<Output = Result<Vec<SuppressedAddress>, StoreError>> + Send;

    fn prune_rate_limits(pool: &Pool<Self>, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// One atomic upsert of a rate-limit window; the count so far, this request included. A single
    /// statement commits on its own (SQLite needs no BEGIN IMMEDIATE for it).
    fn count_request(
        pool: &Pool<Self>,
        bucket: &str,
        key: &str,
        window_start: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// `ids_in`: the engine's test that `id` is in the JSON array bound as $3.
    fn renew_leases(
        pool: &Pool<Self>,
        ids_in: &'static str,
        owner: &str,
        ids: &[i64],
        until: i64,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    fn lease_owners(
        pool: &Pool<Self>,
        channel: Channel,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// `sql`: the engine's `SELECT MIN(the larger of next_attempt_at and the lease's end)`.
    fn next_outbox_due(
        pool: &Pool<Self>,
        sql: &'static str,
        channel: Channel,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    fn outbox_gauges(pool: &Pool<Self>, now: i64) -> impl Future<Output = Result<Vec<OutboxGauge>, StoreError>> + Send;

    /// The newest migration applied successfully (None: none yet), from sqlx's own table.
    fn applied_migration(pool: &Pool<Self>) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
}

impl<DB> Dialect for DB
where
    DB: Database,
    DB::QueryResult: Affected,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'r> i64: Decode<'r, DB>,
    for<'r> i32: Decode<'r, DB>,
    for<'r> String: Decode<'r, DB>,
    for<'c> &'c str: ColumnIndex<DB::Row>,
    usize: ColumnIndex<DB::Row>,
{
    async fn ping(pool: &Pool<DB>) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(pool).await?;
        Ok(())
    }

    async fn message(pool: &Pool<DB>, id: MessageId) -> Result<Option<Message>, StoreError> {
        let row = sqlx::query("SELECT * FROM messages WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?;
        row.as_ref().map(rows::message).transpose()
    }

    async fn record_code_failure(pool: &Pool<DB>, id: MessageId, nonce: &str) -> Result<i64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE messages SET code_failures = code_failures + 1 WHERE id = $1 AND nonce = $2 RETURNING code_failures",
        )
        .bind(id.0)
        .bind(nonce)
        .fetch_optional(pool)
        .await?;
        Ok(n.unwrap_or(i64::MAX))
    }

    async fn audit_trail(pool: &Pool<DB>, id: MessageId) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, from_status, to_status, detail FROM audit WHERE message_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(pool)
        .await?;
        rows.iter().map(rows::audit).collect()
    }

    async fn outbox_for_message(pool: &Pool<DB>, id: MessageId) -> Result<Vec<OutboxRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, recipient, message_id_header, state, attempts, created_at, next_attempt_at, last_error, last_attempt_at, sent_at, lease_owner
             FROM outbox WHERE message_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(pool)
        .await?;
        rows.iter().map(rows::outbox_record).collect()
    }

    async fn release_leases(pool: &Pool<DB>, owner: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 AND state = 'queued'",
        )
        .bind(owner)
        .execute(pool)
        .await?;
        Ok(done.affected())
    }

    async fn set_aside(conn: &mut DB::Connection, unreadable: &[(i64, String)], now: i64) -> Result<(), StoreError> {
        for (id, error) in unreadable {
            sqlx::query(rows::SET_ASIDE_UNREADABLE)
                .bind(error.as_str())
                .bind(now)
                .bind(*id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn counts(pool: &Pool<DB>, form: Option<&str>) -> Result<Vec<(Status, i64)>, StoreError> {
        let rows = match form {
            None => sqlx::query(rows::COUNTS).fetch_all(pool).await?,
            Some(form) => sqlx::query(rows::COUNTS_OF_FORM).bind(form).fetch_all(pool).await?,
        };
        rows.iter().map(rows::status_count).collect()
    }

    async fn purge(
        conn: &mut DB::Connection,
        trashed_before: i64,
        unverified_before: i64,
    ) -> Result<Purged, StoreError> {
        let trashed = sqlx::query("DELETE FROM messages WHERE status = 'deleted' AND deleted_at < $1")
            .bind(trashed_before)
            .execute(&mut *conn)
            .await?
            .affected();
        let unverified = sqlx::query("DELETE FROM messages WHERE status IN ('pending', 'spam') AND created_at < $1")
            .bind(unverified_before)
            .execute(&mut *conn)
            .await?
            .affected();
        Ok(Purged { trashed, unverified })
    }

    async fn insert_audit(
        conn: &mut DB::Connection,
        id: MessageId,
        now: i64,
        audit: &Audit,
        from: Option<Status>,
        to: Option<Status>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (message_id, at, actor, action, from_status, to_status, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.0)
        .bind(now)
        .bind(audit.actor.as_str())
        .bind(audit.action)
        .bind(from.map(Status::as_str))
        .bind(to.map(Status::as_str))
        .bind(audit.detail.as_deref())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    async fn apply_change(conn: &mut DB::Connection, c: &Change) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE messages SET
                status = $1,
                updated_at = $2,
                nonce = COALESCE($3, nonce),
                confirmed_nonce = COALESCE($4, confirmed_nonce),
                verify_expires_at = COALESCE($5, verify_expires_at),
                verify_mails = verify_mails + CASE WHEN $5 IS NULL THEN 0 ELSE 1 END,
                code_failures = CASE WHEN $5 IS NULL THEN code_failures ELSE 0 END,
                verified_at = CASE WHEN $1 = 'verified' THEN $2 ELSE verified_at END,
                released_at = CASE WHEN $1 = 'released' THEN $2 ELSE released_at END,
                deleted_at = CASE WHEN $1 = 'deleted' THEN $2 ELSE NULL END,
                status_before_delete = CASE WHEN $1 = 'deleted' THEN status ELSE NULL END
             WHERE id = $6 AND status = $7 AND (CAST($8 AS TEXT) IS NULL OR nonce = $8)",
        )
        .bind(c.to.as_str())
        .bind(c.now)
        .bind(c.new_nonce.as_deref())
        .bind(c.confirmed_nonce.as_deref())
        .bind(c.new_verification)
        .bind(c.id.0)
        .bind(c.from.as_str())
        .bind(c.expect_nonce.as_deref())
        .execute(&mut *conn)
        .await?;
        if done.affected() == 0 {
            return Ok(false);
        }
        <DB as Dialect>::insert_audit(conn, c.id, c.now, &c.audit, Some(c.from), Some(c.to)).await?;
        Ok(true)
    }

    async fn requeue(
        conn: &mut DB::Connection,
        id: MessageId,
        outbox_id: i64,
        now: i64,
        give_up_at: i64,
    ) -> Result<bool, StoreError> {
        // Same row, so the same Message-ID or webhook-id and the same payload: a receiver that
        // got it before can tell it is a repeat. The old error goes to the audit line.
        let done = sqlx::query(
            "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = $1, give_up_at = $2,
                last_error = NULL, last_attempt_at = NULL, sent_at = NULL, lease_owner = NULL, lease_until = NULL
             WHERE id = $3 AND message_id = $4 AND state IN ('sent', 'dead')",
        )
        .bind(now)
        .bind(give_up_at)
        .bind(outbox_id)
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
        Ok(done.affected() > 0)
    }

    async fn deliveries_of(
        pool: &Pool<DB>,
        ids: &[MessageId],
    ) -> Result<Vec<(MessageId, MailSummary, bool)>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT message_id, kind, state, attempts, last_error, next_attempt_at, lease_owner FROM outbox
             WHERE message_id IN ({}) ORDER BY message_id, id",
            marks.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id.0);
        }
        let rows = query.fetch_all(pool).await?;
        rows.iter().map(rows::delivery).collect()
    }

    async fn verdict(
        conn: &mut DB::Connection,
        recipient: &str,
        now: i64,
        guard: &MailGuard,
    ) -> Result<Option<Withheld>, StoreError> {
        let suppressed: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM suppressed_addresses WHERE address = lower($1)")
                .bind(recipient)
                .fetch_optional(&mut *conn)
                .await?;
        let to_address = match guard.per_address {
            Some((_, window)) => Some(
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM outbox WHERE lower(recipient) = lower($1) AND created_at > $2 AND kind = 'verify'",
                )
                .bind(recipient)
                .bind(now - window)
                .fetch_one(&mut *conn)
                .await?,
            ),
            None => None,
        };
        let last_hour = match guard.per_hour {
            Some(_) => Some(
                sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE created_at > $1")
                    .bind(now - 3600)
                    .fetch_one(&mut *conn)
                    .await?,
            ),
            None => None,
        };
        let counts = GuardCounts {
            suppressed: suppressed.is_some(),
            to_address,
            last_hour,
        };
        Ok(withhold(guard, &counts))
    }

    async fn suppress(pool: &Pool<DB>, address: &str, now: i64, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO suppressed_addresses (address, created_at, reason) VALUES (lower($1), $2, $3) ON CONFLICT (address) DO NOTHING",
        )
        .bind(address)
        .bind(now)
        .bind(reason)
        .execute(pool)
        .await?;
        Ok(done.affected() > 0)
    }

    async fn unsuppress(pool: &Pool<DB>, address: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM suppressed_addresses WHERE address = lower($1)")
            .bind(address)
            .execute(pool)
            .await?;
        Ok(done.affected() > 0)
    }

    async fn suppressed(pool: &Pool<DB>) -> Result<Vec<SuppressedAddress>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT address, created_at, reason FROM suppressed_addresses ORDER BY created_at DESC, address",
        )
        .fetch_all(pool)
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

    async fn prune_rate_limits(pool: &Pool<DB>, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM rate_limits WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await?;
        Ok(done.affected())
    }

    async fn count_request(
        pool: &Pool<DB>,
        bucket: &str,
        key: &str,
        window_start: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        // The existing row's count is qualified: unqualified, PostgreSQL finds `count` ambiguous
        // (it could also be `excluded.count`); SQLite reads both spellings alike.
        let count = sqlx::query_scalar(
            "INSERT INTO rate_limits (bucket, key, window_start, count, expires_at) VALUES ($1, $2, $3, 1, $4)
             ON CONFLICT (bucket, key, window_start) DO UPDATE SET count = rate_limits.count + 1 RETURNING count",
        )
        .bind(bucket)
        .bind(key)
        .bind(window_start)
        .bind(expires_at)
        .fetch_one(pool)
        .await?;
        Ok(count)
    }

    async fn renew_leases(
        pool: &Pool<DB>,
        ids_in: &'static str,
        owner: &str,
        ids: &[i64],
        until: i64,
    ) -> Result<Vec<i64>, StoreError> {
        // One statement for all of them, whatever their number: the ids travel as one JSON array.
        let list = format!("[{}]", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        let sql = format!(
            "UPDATE outbox SET lease_until = $1 WHERE lease_owner = $2 AND state = 'queued' AND {ids_in} RETURNING id"
        );
        let renewed: Vec<i64> = sqlx::query_scalar(&sql)
            .bind(until)
            .bind(owner)
            .bind(list)
            .fetch_all(pool)
            .await?;
        Ok(renewed)
    }

    async fn lease_owners(pool: &Pool<DB>, channel: Channel) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT DISTINCT lease_owner FROM outbox WHERE state = 'queued' AND lease_owner IS NOT NULL AND {}",
            channel.sql_filter()
        );
        let owners: Vec<String> = sqlx::query_scalar(&sql).fetch_all(pool).await?;
        Ok(owners)
    }

    async fn next_outbox_due(pool: &Pool<DB>, sql: &'static str, channel: Channel) -> Result<Option<i64>, StoreError> {
        let sql = format!("{sql} AND {}", channel.sql_filter());
        let due: Option<i64> = sqlx::query_scalar(&sql).fetch_one(pool).await?;
        Ok(due)
    }

    async fn outbox_gauges(pool: &Pool<DB>, now: i64) -> Result<Vec<OutboxGauge>, StoreError> {
        let rows = sqlx::query(rows::OUTBOX_GAUGES).bind(now).fetch_all(pool).await?;
        rows.iter().map(rows::outbox_gauge).collect()
    }

    async fn applied_migration(pool: &Pool<DB>) -> Result<Option<i64>, StoreError> {
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?;
        Ok(newest)
    }
}

/// The change `apply_guarded` makes when the guard withholds its mail: no mail, and the nonce
/// and expiry left as they were (older links keep working); the audit line says why.
pub(super) fn withheld_change(change: &Change, why: &Withheld) -> Change {
    let mut held = change.clone();
    held.mails.clear();
    held.new_nonce = None;
    held.new_verification = None;
    held.audit.detail = Some(why.to_string());
    held
}

/// The change `apply_guarded` makes when the visitor's copy must not go out (`why`: the address
/// is suppressed): the same change without it, the audit line saying so.
pub(super) fn without_copy(change: &Change, why: &Withheld) -> Change {
    let mut held = change.clone();
    held.mails.retain(|m| m.kind != MailKind::Confirmation);
    let note = format!("no copy to the visitor: {}", why.reason());
    held.audit.detail = Some(match held.audit.detail.take() {
        Some(detail) => format!("{detail}; {note}"),
        None => note,
    });
    held
}
