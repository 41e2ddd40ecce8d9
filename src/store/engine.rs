//! One [`Store`] for every engine. What SQLite and PostgreSQL do alike is written here once, on
//! the shared statements of `shared.rs`; an [`Engine`] (`sqlite.rs`, `postgres.rs`) supplies only
//! what it does its own way: its pools and write transaction, the batch insert, the claim and
//! finish of outbox rows, `next_due`, the change feed, the per-address lock.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Database, Pool, Transaction};
use tokio::sync::Notify;

use super::records::{
    Applied, Audit, AuditRecord, Change, Inserted, ListQuery, MailSummary, MessageSummary, OutboxGauge, Purged,
    Submission, SuppressedAddress,
};
use super::shared::{Dialect, newest_migration, withheld_change, without_copy};
use super::{Store, StoreError};
use crate::domain::{MailGuard, Message, MessageId, Status};
use crate::mail::destination::{Delivery, worst};
use crate::mail::handover::Lease;
use crate::mail::queue::{Channel, MailKind, OutboxItem, OutboxRecord, OutgoingMail, SendOutcome};

/// The connection a transaction of engine `E` runs on.
pub type Conn<E> = <<E as Engine>::Db as Database>::Connection;

/// What one engine does its own way. The methods named as on [`Store`] keep its contract.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    type Db: Dialect;

    /// Where reads go (SQLite: a read-only pool beside the one writer).
    fn reads(&self) -> &Pool<Self::Db>;

    /// Where writes of one statement go: where reads go, unless the engine has a writer of its
    /// own (SQLite: the one writer connection).
    fn writes(&self) -> &Pool<Self::Db> {
        self.reads()
    }

    /// A write transaction (SQLite: BEGIN IMMEDIATE, the write lock taken up front).
    async fn write_tx(&self) -> Result<Transaction<'static, Self::Db>, StoreError>;

    /// Inside `tx`, before the mail cap counts what went to `recipient`: keeps concurrent
    /// transactions from mailing it meanwhile. Nothing where a write transaction already excludes
    /// every other writer (SQLite).
    async fn lock_address(&self, _tx: &mut Conn<Self>, _recipient: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Queues one mail for `message_id` inside `tx` (batches have statements of their own).
    async fn queue_mail(
        &self,
        tx: &mut Conn<Self>,
        message_id: MessageId,
        now: i64,
        mail: &OutgoingMail,
    ) -> Result<(), StoreError>;

    /// Tells watchers, inside `tx` (so on commit), that messages or their mail changed. Nothing
    /// where the engine has no change feed.
    async fn announce(&self, _tx: &mut Conn<Self>) -> Result<(), StoreError> {
        Ok(())
    }

    async fn insert_batch(
        &self,
        batch: &[Submission<'_>],
        guard: &MailGuard,
        lease: Option<&Lease>,
    ) -> Result<Vec<Inserted>, StoreError>;

    fn intake_writers(&self) -> usize {
        1
    }

    async fn record_link_opened(&self, id: MessageId, now: i64) -> Result<(), StoreError>;

    async fn claim_outbox(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        channel: Channel,
    ) -> Result<Vec<OutboxItem>, StoreError>;

    async fn finish_outbox(&self, owner: &str, now: i64, results: &[(i64, SendOutcome)]) -> Result<(), StoreError>;

    /// The migrations built into this binary for the engine (`sqlx::migrate!`).
    fn migrator() -> &'static sqlx::migrate::Migrator;

    /// [`Store::ping`]: the database answers a query (SQLite also checks its file is still there).
    async fn ping(&self) -> Result<(), StoreError> {
        Self::Db::ping(self.reads()).await
    }

    /// The one SELECT of [`Store::next_outbox_due`], in the engine's spelling of "the larger of".
    const NEXT_DUE: &'static str;

    /// The row filter of [`Store::renew_leases`]: `id` is one of the JSON array of ids bound as $3.
    const IDS_IN_JSON: &'static str;

    async fn list(&self, query: &ListQuery) -> Result<Vec<MessageSummary>, StoreError>;

    async fn changes(&self) -> Option<Arc<Notify>> {
        None
    }
}

#[async_trait]
impl<E: Engine> Store for E {
    async fn ping(&self) -> Result<(), StoreError> {
        Engine::ping(self).await
    }

    async fn migrations_current(&self) -> Result<bool, StoreError> {
        Ok(E::Db::applied_migration(self.reads()).await? == newest_migration(E::migrator()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(engine = <E::Db as Database>::NAME, posts = batch.len()))]
    async fn insert_batch(
        &self,
        batch: &[Submission<'_>],
        guard: &MailGuard,
        lease: Option<&Lease>,
    ) -> Result<Vec<Inserted>, StoreError> {
        Engine::insert_batch(self, batch, guard, lease).await
    }

    fn intake_writers(&self) -> usize {
        Engine::intake_writers(self)
    }

    async fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        E::Db::message(self.reads(), id).await
    }

    async fn record_link_opened(&self, id: MessageId, now: i64) -> Result<(), StoreError> {
        Engine::record_link_opened(self, id, now).await
    }

    async fn record_code_failure(&self, id: MessageId, nonce: &str) -> Result<i64, StoreError> {
        E::Db::record_code_failure(self.writes(), id, nonce).await
    }

    async fn audit_trail(&self, id: MessageId) -> Result<Vec<AuditRecord>, StoreError> {
        E::Db::audit_trail(self.reads(), id).await
    }

    async fn outbox_for_message(&self, id: MessageId) -> Result<Vec<OutboxRecord>, StoreError> {
        E::Db::outbox_for_message(self.reads(), id).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(engine = <E::Db as Database>::NAME, limit = limit))]
    async fn claim_outbox(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        channel: Channel,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        Engine::claim_outbox(self, owner, now, lease_until, limit, channel).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(engine = <E::Db as Database>::NAME, mails = results.len()))]
    async fn finish_outbox(&self, owner: &str, now: i64, results: &[(i64, SendOutcome)]) -> Result<(), StoreError> {
        Engine::finish_outbox(self, owner, now, results).await
    }

    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        E::Db::release_leases(self.writes(), owner).await
    }

    async fn renew_leases(&self, owner: &str, ids: &[i64], until: i64) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        E::Db::renew_leases(self.writes(), E::IDS_IN_JSON, owner, ids, until).await
    }

    async fn lease_owners(&self, channel: Channel) -> Result<Vec<String>, StoreError> {
        E::Db::lease_owners(self.reads(), channel).await
    }

    async fn next_outbox_due(&self, channel: Channel) -> Result<Option<i64>, StoreError> {
        E::Db::next_outbox_due(self.reads(), E::NEXT_DUE, channel).await
    }

    async fn outbox_gauges(&self, now: i64) -> Result<Vec<OutboxGauge>, StoreError> {
        E::Db::outbox_gauges(self.reads(), now).await
    }

    async fn list(&self, query: &ListQuery) -> Result<Vec<MessageSummary>, StoreError> {
        let mut rows = Engine::list(self, query).await?;
        let ids: Vec<MessageId> = rows.iter().map(|r| r.id).collect();
        // Each message's deliveries, oldest first; the row shows the worst.
        let mut by_message: std::collections::HashMap<MessageId, Vec<(MailSummary, Delivery)>> =
            std::collections::HashMap::new();
        for (id, mail, leased) in E::Db::deliveries_of(self.reads(), &ids).await? {
            let delivery = Delivery::of(mail.state, mail.attempts, leased);
            by_message.entry(id).or_default().push((mail, delivery));
        }
        for row in &mut rows {
            let Some(mut mails) = by_message.remove(&row.id) else {
                continue;
            };
            let kinds: Vec<_> = mails.iter().map(|(m, d)| (m.kind, *d)).collect();
            row.mail = worst(&kinds).map(|i| mails.swap_remove(i).0);
        }
        Ok(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(engine = <E::Db as Database>::NAME, message_id = id.0, outbox = outbox_id))]
    async fn redeliver(
        &self,
        id: MessageId,
        outbox_id: i64,
        now: i64,
        give_up_at: i64,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        if !E::Db::requeue(&mut tx, id, outbox_id, now, give_up_at).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        E::Db::insert_audit(&mut tx, id, now, audit, None, None).await?;
        self.announce(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn counts_for(&self, form: Option<&str>) -> Result<Vec<(Status, i64)>, StoreError> {
        E::Db::counts(self.reads(), form).await
    }

    async fn changes(&self) -> Option<Arc<Notify>> {
        Engine::changes(self).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(engine = <E::Db as Database>::NAME))]
    async fn purge(&self, trashed_before: i64, unverified_before: i64) -> Result<Purged, StoreError> {
        let mut tx = self.write_tx().await?;
        let purged = E::Db::purge(&mut tx, trashed_before, unverified_before).await?;
        self.announce(&mut tx).await?;
        tx.commit().await?;
        Ok(purged)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(engine = <E::Db as Database>::NAME, message_id = change.id.0))]
    async fn apply_guarded(&self, change: &Change, guard: Option<&MailGuard>) -> Result<Applied, StoreError> {
        let mut tx = self.write_tx().await?;
        let withheld = match (guard, change.mails.first()) {
            (Some(guard), Some(mail)) => {
                self.lock_address(&mut tx, &mail.recipient).await?;
                E::Db::verdict(&mut tx, &mail.recipient, change.now, guard).await?
            }
            _ => None,
        };
        let mut held = withheld.as_ref().map(|why| withheld_change(change, why));
        // The visitor's copy never goes to an address that asked for no more mail. Checked in
        // the transaction that queues it, so a suppression committed first always wins.
        let mut copy_withheld = false;
        let copy_to = held
            .as_ref()
            .unwrap_or(change)
            .mails
            .iter()
            .find(|m| m.kind == MailKind::Confirmation);
        if let Some(copy) = copy_to
            && let Some(why) = E::Db::verdict(&mut tx, &copy.recipient, change.now, &MailGuard::default()).await?
        {
            held = Some(without_copy(held.as_ref().unwrap_or(change), &why));
            copy_withheld = true;
        }
        let c = held.as_ref().unwrap_or(change);
        // A concurrent apply on the same row waits for our commit (PostgreSQL: the row lock;
        // SQLite: the one writer), then finds its `status` (or nonce) no longer as it expected.
        if !E::Db::apply_change(&mut tx, c).await? {
            // Someone else got there first (or the caller's view was stale): change nothing.
            tx.rollback().await?;
            return Ok(Applied::NOT_DONE);
        }
        for mail in &c.mails {
            self.queue_mail(&mut tx, c.id, c.now, mail).await?;
        }
        self.announce(&mut tx).await?;
        tx.commit().await?;
        Ok(Applied {
            done: true,
            withheld,
            copy_withheld,
        })
    }

    async fn suppress(&self, address: &str, now: i64, reason: &str) -> Result<bool, StoreError> {
        E::Db::suppress(self.writes(), address, now, reason).await
    }

    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError> {
        E::Db::unsuppress(self.writes(), address).await
    }

    async fn suppressed(&self) -> Result<Vec<SuppressedAddress>, StoreError> {
        E::Db::suppressed(self.reads()).await
    }

    async fn count_request(
        &self,
        bucket: &str,
        key: &str,
        window_start: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError> {
        E::Db::count_request(self.writes(), bucket, key, window_start, expires_at).await
    }

    async fn prune_rate_limits(&self, now: i64) -> Result<u64, StoreError> {
        E::Db::prune_rate_limits(self.writes(), now).await
    }
}
