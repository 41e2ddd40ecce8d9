//! PostgreSQL: several `serve` instances and several moderators on one database.
//!
//! The concurrency is the engine's own. A compare-and-swap `UPDATE` waits for the row lock of a
//! concurrent one and then re-checks its `WHERE` against the committed row (READ COMMITTED), so of
//! two moderators acting on one message exactly one succeeds. Outbox workers claim rows with
//! `FOR UPDATE SKIP LOCKED`: instances neither wait for each other's claims nor take the same row.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

use super::engine::Engine;
use super::records::{Inserted, ListQuery, MessageSummary, Submission};
use super::shared::Dialect;
use super::{StoreError, batch, rows, search};
use crate::domain::{MailGuard, MessageId, Withheld, fields_to_json};
use crate::mail::handover::Lease;
use crate::mail::queue::{Channel, OutboxItem, OutgoingMail, SendOutcome};

pub struct PgStore {
    pool: PgPool,
    /// Started on the first `changes()` call: one LISTEN connection per process.
    changes: tokio::sync::OnceCell<Arc<Notify>>,
}

/// The channel every write notifies (inside its transaction, so it is delivered on commit only).
/// A macro so that statement texts can name it at compile time (`concat!`): they stay literals.
macro_rules! changes_channel {
    () => {
        "formgate_changes"
    };
}
const CHANGES_CHANNEL: &str = changes_channel!();
/// Wakes every watcher of [`CHANGES_CHANNEL`] (on commit, when run in a transaction).
const NOTIFY_CHANGES: &str = concat!("SELECT pg_notify('", changes_channel!(), "', '')");

/// Forwards notifications to `notify` until the store is dropped; reconnects after a lost
/// connection (and wakes the watcher then, since changes may have been missed meanwhile).
async fn listen_for_changes(pool: PgPool, notify: Weak<Notify>) {
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHANGES_CHANNEL).await {
                Ok(()) => loop {
                    let Some(n) = notify.upgrade() else { return };
                    n.notify_one();
                    drop(n);
                    if let Err(e) = listener.recv().await {
                        tracing::debug!(error = %e, "change feed: connection lost; reconnecting");
                        break;
                    }
                },
                Err(e) => tracing::debug!(error = %e, "change feed: LISTEN failed"),
            },
            Err(e) => tracing::debug!(error = %e, "change feed: cannot connect"),
        }
        if notify.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const MAX_CONNECTIONS: u32 = 10;
/// Concurrent intake transactions (group commit batches) per instance.
const INTAKE_WRITERS: usize = 4;
/// A database outage surfaces as an error (a 503 for a visitor) within seconds, not as a hang.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl PgStore {
    pub async fn open(database_url: &str) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(database_url)?;
        if options.get_application_name().is_none() {
            // Who is connected, in pg_stat_activity.
            options = options.application_name("formgate");
        }
        // Backstop: a session left idle inside a transaction (a cancelled request, a crashed
        // client) is closed by the server instead of holding its locks for ever.
        options = options.options([("idle_in_transaction_session_timeout", "60s")]);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        // sqlx holds an advisory lock while it migrates, so instances starting together take turns.
        MIGRATOR.run(&pool).await?;
        Ok(Self {
            pool,
            changes: tokio::sync::OnceCell::new(),
        })
    }
}

impl PgStore {
    /// Records on each unreadable claimed row why (see `rows::SET_ASIDE_UNREADABLE`).
    async fn set_aside(&self, unreadable: &[(i64, String)], now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Postgres::set_aside(&mut tx, unreadable, now).await?;
        // Mail states show on the dashboard.
        self.announce(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl Engine for PgStore {
    type Db = Postgres;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    const NEXT_DUE: &'static str =
        "SELECT MIN(GREATEST(next_attempt_at, COALESCE(lease_until + 1, 0))) FROM outbox WHERE state = 'queued'";

    const IDS_IN_JSON: &'static str = "id IN (SELECT jsonb_array_elements_text($3::jsonb)::BIGINT)";

    fn reads(&self) -> &PgPool {
        &self.pool
    }

    async fn write_tx(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// The advisory lock (released at commit) serialises transactions that would mail the same
    /// address, so two concurrent posts cannot both count zero.
    async fn lock_address(&self, tx: &mut PgConnection, recipient: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext(lower($1)))")
            .bind(recipient)
            .execute(tx)
            .await?;
        Ok(())
    }

    async fn queue_mail(
        &self,
        tx: &mut PgConnection,
        message_id: MessageId,
        now: i64,
        mail: &OutgoingMail,
    ) -> Result<(), StoreError> {
        let (payload, link_nonce, link_expires_at) = rows::body_columns(&mail.body);
        sqlx::query(
            "INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, payload, link_nonce, link_expires_at,
                                 created_at, next_attempt_at, give_up_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
        )
        .bind(message_id.0)
        .bind(mail.kind.as_str())
        .bind(&mail.recipient)
        .bind(&mail.sender)
        .bind(&mail.message_id_header)
        .bind(payload)
        .bind(link_nonce)
        .bind(link_expires_at)
        .bind(now)
        .bind(mail.give_up_at)
        .execute(tx)
        .await?;
        Ok(())
    }

    async fn announce(&self, tx: &mut PgConnection) -> Result<(), StoreError> {
        sqlx::query(NOTIFY_CHANGES).execute(tx).await?;
        Ok(())
    }

    async fn record_link_opened(&self, id: MessageId, now: i64) -> Result<(), StoreError> {
        // Writes nothing when it was recorded before (scanners fetch links repeatedly).
        sqlx::query("UPDATE messages SET link_opened_at = $1 WHERE id = $2 AND link_opened_at IS NULL")
            .bind(now)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
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
        // One statement, so one short transaction. SKIP LOCKED passes over rows another worker is
        // claiming this very moment; a row it has already claimed fails the lease test.
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET lease_owner = $1, lease_until = $2
             WHERE id IN (
                SELECT id FROM outbox
                WHERE state = 'queued' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)
                  AND {channel}
                ORDER BY next_attempt_at, id LIMIT $4
                FOR UPDATE SKIP LOCKED)
             RETURNING id, message_id, kind, recipient, sender, message_id_header, payload, link_nonce, link_expires_at,
                       created_at, attempts, give_up_at",
            channel = channel.sql_filter()
        ))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let (items, unreadable) = rows::claimed_items(&rows);
        if !unreadable.is_empty() {
            rows::log_unreadable(&unreadable);
            // The claim is committed: a failure here must not keep the readable mails from going
            // out (the unreadable rows' leases hold them back from an immediate re-claim anyway).
            if let Err(e) = self.set_aside(&unreadable, now).await {
                tracing::error!(error = %e, "outbox: cannot record why mails were set aside");
            }
        }
        Ok(items)
    }

    async fn finish_outbox(&self, owner: &str, now: i64, results: &[(i64, SendOutcome)]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        // The whole batch in one statement: one round trip and one commit instead of one per mail.
        let mut ids = Vec::with_capacity(results.len());
        let mut states = Vec::with_capacity(results.len());
        let mut nexts = Vec::with_capacity(results.len());
        let mut errors = Vec::with_capacity(results.len());
        let mut sent_ats = Vec::with_capacity(results.len());
        for (id, outcome) in results {
            let (state, next, error, sent_at): (&str, Option<i64>, Option<&str>, Option<i64>) = match outcome {
                SendOutcome::Sent => ("sent", None, None, Some(now)),
                SendOutcome::Retry { at, error } => ("queued", Some(*at), Some(error), None),
                SendOutcome::Dead { error } => ("dead", None, Some(error), None),
            };
            ids.push(*id);
            states.push(state);
            nexts.push(next);
            errors.push(error);
            sent_ats.push(sent_at);
        }
        sqlx::query(
            "UPDATE outbox AS o SET state = r.state, next_attempt_at = COALESCE(r.next_attempt_at, o.next_attempt_at),
                last_error = COALESCE(r.error, o.last_error), sent_at = r.sent_at, attempts = o.attempts + 1,
                last_attempt_at = $6, lease_owner = NULL, lease_until = NULL
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::BIGINT[])
                AS r (id, state, next_attempt_at, error, sent_at)
             WHERE o.id = r.id AND o.lease_owner = $7",
        )
        .bind(&ids)
        .bind(&states)
        .bind(&nexts)
        .bind(&errors)
        .bind(&sent_ats)
        .bind(now)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        // Mail states show on the dashboard; one signal per batch, not per mail.
        sqlx::query(NOTIFY_CHANGES).execute(&self.pool).await?;
        Ok(())
    }

    async fn list(&self, q: &ListQuery) -> Result<Vec<MessageSummary>, StoreError> {
        let mut qb = search::list_query::<Postgres>(q, search::TextMatch::Ilike);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(rows::summary).collect()
    }

    async fn changes(&self) -> Option<Arc<Notify>> {
        let notify = self
            .changes
            .get_or_init(|| async {
                let notify = Arc::new(Notify::new());
                tokio::spawn(listen_for_changes(self.pool.clone(), Arc::downgrade(&notify)));
                notify
            })
            .await;
        Some(notify.clone())
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
        let addresses = batch::mailable_addresses(batch);
        // Round trips are what a batch costs here (each one a wake-up of a backend on a busy
        // machine), so a batch makes as few as it can: with no per-address cap, two statements
        // and no transaction (the second stores everything at once, atomic on its own); with the
        // cap, the lock has to come first and be held to the end: BEGIN, lock, the same two, COMMIT.
        let stored = if guard.per_address.is_some() && !addresses.is_empty() {
            let mut tx = self.pool.begin().await?;
            // The cap per address holds across instances: posts naming one address queue one at a
            // time. Taken in one order (sorted), so two batches cannot deadlock.
            sqlx::query(
                "SELECT pg_advisory_xact_lock(h)
                 FROM (SELECT DISTINCT hashtext(lower(a)) AS h FROM unnest($1::text[]) AS a ORDER BY h) AS x",
            )
            .bind(&addresses)
            .execute(&mut *tx)
            .await?;
            let stored = store_batch(&mut tx, batch, &addresses, first.now, guard, lease).await?;
            tx.commit().await?;
            stored
        } else {
            store_batch(
                &mut *self.pool.acquire().await?,
                batch,
                &addresses,
                first.now,
                guard,
                lease,
            )
            .await?
        };
        batch::inserted(stored.ids, stored.withheld, stored.mails, &stored.outbox_ids, lease)
    }

    fn intake_writers(&self) -> usize {
        // One batch fills while others commit; the rest of the pool stays free for the outbox,
        // verification and moderators.
        INTAKE_WRITERS
    }
}

/// A stored batch: its message ids, why mails were withheld, the mails queued and their rows.
struct StoredBatch {
    ids: Vec<MessageId>,
    withheld: Vec<Option<Withheld>>,
    mails: Vec<(MessageId, i64, OutgoingMail)>,
    outbox_ids: Vec<(MessageId, i64)>,
}

/// Decides a batch and stores it: the guard's lookups and the message ids in one statement, the
/// verdicts, then every row in one more.
async fn store_batch(
    conn: &mut PgConnection,
    batch: &[Submission<'_>],
    addresses: &[String],
    now: i64,
    guard: &MailGuard,
    lease: Option<&Lease>,
) -> Result<StoredBatch, StoreError> {
    let (lookups, last_hour, ids) = lookups_and_ids(&mut *conn, addresses, batch.len(), now, guard).await?;
    let withheld = batch::verdicts(guard, batch, lookups, last_hour);
    // A mail's Message-ID names its message: the ids are taken from the sequence first.
    let mails = batch::batch_mails(batch, &ids, &withheld)?;
    let outbox_ids = insert_rows(&mut *conn, batch, &ids, &withheld, &mails, lease).await?;
    Ok(StoredBatch {
        ids,
        withheld,
        mails,
        outbox_ids,
    })
}

/// A batch's messages, audit lines and mails in ONE statement (and a signal to watchers, sent on
/// commit). The foreign keys from audit and outbox to the new messages are checked at the end of
/// the statement, when the sibling INSERT has run. Returns each mail's (message, outbox row).
async fn insert_rows<'e>(
    db: impl sqlx::PgExecutor<'e>,
    batch: &[Submission<'_>],
    ids: &[MessageId],
    withheld: &[Option<Withheld>],
    mails: &[(MessageId, i64, OutgoingMail)],
    lease: Option<&Lease>,
) -> Result<Vec<(MessageId, i64)>, StoreError> {
    let details = batch::audit_details(batch, withheld);
    let rows: Vec<(Option<i64>, Option<i64>)> = sqlx::query_as(concat!(
        "WITH m AS (
            INSERT INTO messages (id, status, name, email, subject, body, ip, user_agent, created_at, updated_at, nonce,
                                  verify_expires_at, form, fields)
            SELECT id, status, name, email, subject, body, ip, user_agent, created_at, created_at, nonce, verify_expires_at,
                   form, fields
            FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                        $9::int8[], $10::text[], $11::int8[], $25::text[], $26::text[])
                 AS i (id, status, name, email, subject, body, ip, user_agent, created_at, nonce, verify_expires_at, form, fields)
            RETURNING id
         ), a AS (
            INSERT INTO audit (message_id, at, actor, action, from_status, to_status, detail)
            SELECT id, created_at, 'visitor', 'submit', NULL, status, detail
            FROM unnest($1::int8[], $9::int8[], $2::text[], $12::text[]) AS d (id, created_at, status, detail)
         ), o AS (
            INSERT INTO outbox (message_id, kind, recipient, sender, message_id_header, payload, link_nonce, link_expires_at,
                                created_at, next_attempt_at, give_up_at, lease_owner, lease_until)
            SELECT message_id, kind, recipient, sender, header, payload, link_nonce, link_expires_at, created_at, created_at,
                   give_up_at, $23::text, $24::int8
            FROM unnest($13::int8[], $14::text[], $15::text[], $16::text[], $17::text[], $18::bytea[], $19::int8[], $20::int8[],
                        $21::text[], $22::int8[])
                 AS o (message_id, kind, recipient, sender, header, payload, created_at, give_up_at, link_nonce, link_expires_at)
            RETURNING message_id, id
         )
         SELECT message_id, id FROM o
         UNION ALL
         SELECT NULL, NULL FROM (SELECT pg_notify('",
        changes_channel!(),
        "', '')) AS n WHERE (SELECT count(*) FROM m) > 0"
    ))
    .bind(ids.iter().map(|id| id.0).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.status().as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.msg.name.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.msg.email.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.msg.subject.as_ref().map(|x| x.as_str())).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.msg.body.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.msg.ip.as_deref()).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.msg.user_agent.as_deref()).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.now).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.nonce).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| s.verify_expires_at).collect::<Vec<_>>())
    .bind(&details)
    .bind(mails.iter().map(|(id, _, _)| id.0).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, _, m)| m.kind.as_str()).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, _, m)| m.recipient.as_str()).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, _, m)| m.sender.as_str()).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, _, m)| m.message_id_header.as_str()).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, _, m)| rows::body_columns(&m.body).0).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, now, _)| *now).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, _, m)| m.give_up_at).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, _, m)| rows::body_columns(&m.body).1).collect::<Vec<_>>())
    .bind(mails.iter().map(|(_, _, m)| rows::body_columns(&m.body).2).collect::<Vec<_>>())
    .bind(lease.map(|l| l.owner.as_str()))
    .bind(lease.map(|l| l.until))
    .bind(batch.iter().map(|s| s.msg.form.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|s| fields_to_json(&s.msg.fields)).collect::<Vec<_>>())
    .fetch_all(db)
    .await?;
    // The notification's row has no ids.
    Ok(rows
        .into_iter()
        .filter_map(|(message, id): (Option<i64>, Option<i64>)| Some((MessageId(message?), id?)))
        .collect())
}

/// Every address of a batch at once: suppressed or not, and (with a per-address cap) how many
/// verification mails it had within the window; with an hourly cap, also the mails queued in the
/// last hour. In the same statement, `n` message ids from the table's sequence (an id taken by a
/// batch that then fails is skipped, as a rolled-back insert would skip it); they come back in
/// order.
async fn lookups_and_ids(
    conn: &mut PgConnection,
    addresses: &[String],
    n: usize,
    now: i64,
    guard: &MailGuard,
) -> Result<(Vec<crate::domain::AddressLookup>, Option<i64>, Vec<MessageId>), StoreError> {
    let (cap_on, since) = batch::per_address_window(guard, now);
    type Row = (
        Option<String>,
        Option<String>,
        Option<bool>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT a, lower(a),
                EXISTS (SELECT 1 FROM suppressed_addresses s WHERE s.address = lower(a)),
                CASE WHEN $2 THEN (SELECT COUNT(*) FROM outbox o
                                   WHERE lower(o.recipient) = lower(a) AND o.created_at > $3 AND o.kind = 'verify')
                     ELSE 0 END,
                CASE WHEN $4 THEN (SELECT COUNT(*) FROM outbox WHERE created_at > $5) ELSE 0 END,
                NULL::int8
         FROM unnest($1::text[]) AS a
         UNION ALL
         SELECT NULL, NULL, NULL, NULL, NULL, nextval(pg_get_serial_sequence('messages', 'id'))
         FROM generate_series(1, $6)",
    )
    .bind(addresses)
    .bind(cap_on)
    .bind(since)
    .bind(guard.per_hour.is_some())
    .bind(now - 3600)
    .bind(i64::try_from(n).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    let mut lookups = Vec::with_capacity(addresses.len());
    let mut ids = Vec::with_capacity(n);
    for row in rows {
        match row {
            (None, None, None, None, None, Some(id)) => ids.push(id),
            (Some(address), Some(key), Some(suppressed), Some(recent), Some(last_hour), None) => {
                lookups.push((address, key, suppressed, recent, last_hour))
            }
            other => return Err(StoreError::Corrupt(format!("an address lookup row {other:?}"))),
        }
    }
    if ids.len() != n {
        return Err(StoreError::Corrupt(format!(
            "asked for {n} message ids, got {}",
            ids.len()
        )));
    }
    ids.sort_unstable();
    let (lookups, last_hour) = batch::lookups_from_rows(lookups, guard);
    Ok((lookups, last_hour, ids.into_iter().map(MessageId).collect()))
}
