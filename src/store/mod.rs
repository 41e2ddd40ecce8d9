//! Persistence. ALL SQL lives under this module; the rest of formgate talks to the [`Store`] trait,
//! which knows nothing about either backend. State-machine decisions are made in `domain` and
//! `actions`; the store applies them atomically as compare-and-swap [`Change`]s, so two moderators
//! (or two processes) acting on one message cannot both succeed.
//!
//! - `records.rs`: what goes in and comes back (read models, a change, a submission);
//! - `error.rs`: [`StoreError`];
//! - `engine.rs`: the one `Store` implementation, for any `Engine`; `shared.rs`: the
//!   statements every engine runs as they are; `sqlite.rs` / `postgres.rs`: only what differs
//!   (connection set-up, the batch insert, the claim, the finish, the change feed, the
//!   per-address lock, `next_due`);
//! - `rows.rs`: rows into records, for both; `search.rs`: the dashboard's `list` query;
//! - `batch.rs`: a batch insert's bookkeeping around the mail cap (`domain::mail_cap`);
//! - `backup.rs`: `formgate backup`'s online copy of a SQLite file; `inspect.rs`: what
//!   `formgate doctor` reads (migrations, the outbox's health), without migrating.

mod backup;
mod batch;
mod engine;
mod error;
mod inspect;
mod postgres;
mod records;
mod rows;
mod search;
mod shared;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{MailGuard, Message, MessageId, Status};
use crate::mail::handover::Lease;
use crate::mail::queue::{Channel, OutboxItem, OutboxRecord, SendOutcome};

pub use backup::{BackupSummary, sqlite_backup};
pub use error::StoreError;
pub use inspect::{Inspection, inspect};
pub use postgres::PgStore;
pub use records::{
    Applied, Audit, AuditRecord, Change, Inserted, ListQuery, MailForId, MailSummary, MessageSummary, OutboxGauge,
    Purged, Submission, SuppressedAddress,
};
pub use sqlite::SqliteStore;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// True when the newest migration applied to the database is the newest this binary
    /// carries: not behind (a failed or undone migration), not ahead (a newer formgate migrated it).
    async fn migrations_current(&self) -> Result<bool, StoreError>;

    /// Stores new messages, each with its audit line and (unless `guard` withholds it, or it is
    /// spam) its verification mail, in ONE transaction: group commit (`crate::intake`). The guard
    /// is checked inside that transaction and applied in order, so two posts to one address in one
    /// batch count against its cap like two separate ones, and concurrent posts naming one address
    /// cannot both pass a cap of one. A withheld mail is recorded on the message's audit line. All
    /// or nothing; the answer is in order.
    ///
    /// With a `lease`, the batch's mails are queued already claimed by that worker and come back
    /// in [`Inserted::leased`], to be handed to it in memory (`mail::handover`): no claim later.
    async fn insert_batch(
        &self,
        batch: &[Submission<'_>],
        guard: &MailGuard,
        lease: Option<&Lease>,
    ) -> Result<Vec<Inserted>, StoreError>;

    /// How many write transactions for new submissions may usefully run at once (SQLite: one
    /// writer; PostgreSQL: several, so one batch forms while another commits).
    fn intake_writers(&self) -> usize {
        1
    }

    async fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError>;

    /// Applies `change` if the message is still in `change.from` (and has the expected nonce).
    /// Returns false, changing nothing, when it is not. ([`Store::apply_guarded`] with no guard.)
    async fn apply(&self, change: &Change) -> Result<bool, StoreError> {
        Ok(self.apply_guarded(change, None).await?.done)
    }

    /// The first time a verification link is opened (a GET: no status change).
    async fn record_link_opened(&self, id: MessageId, now: i64) -> Result<(), StoreError>;

    /// Counts a wrong code against the message's current nonce; returns the count so far.
    async fn record_code_failure(&self, id: MessageId, nonce: &str) -> Result<i64, StoreError>;

    async fn audit_trail(&self, id: MessageId) -> Result<Vec<AuditRecord>, StoreError>;

    async fn outbox_for_message(&self, id: MessageId) -> Result<Vec<OutboxRecord>, StoreError>;

    /// Claims up to `limit` due mails for `owner` until `lease_until`, in a short transaction.
    async fn claim_outbox(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        channel: Channel,
    ) -> Result<Vec<OutboxItem>, StoreError>;

    /// Records how sends ended (only for rows `owner` still holds).
    async fn finish_outbox(&self, owner: &str, now: i64, results: &[(i64, SendOutcome)]) -> Result<(), StoreError>;

    /// Queues a delivery of message `id` that has ended (sent or dead) again: due at `now`, no
    /// attempts, no lease, given up at `give_up_at`, with the same Message-ID (or webhook-id) and
    /// payload; and writes `audit` for the message, in one transaction. False, changing nothing,
    /// when outbox row `outbox_id` is not a sent or dead delivery of that message (any more).
    async fn redeliver(
        &self,
        id: MessageId,
        outbox_id: i64,
        now: i64,
        give_up_at: i64,
        audit: &Audit,
    ) -> Result<bool, StoreError>;

    /// Gives back every lease `owner` holds (clean shutdown), so other workers send them at once.
    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError>;

    /// Extends to `until` the leases `owner` still holds on the queued rows `ids` (a live worker's
    /// heartbeat), and returns those ids: a row missing from the answer is no longer this
    /// owner's to send (its lease lapsed and another worker took it, or it was recorded).
    async fn renew_leases(&self, owner: &str, ids: &[i64], until: i64) -> Result<Vec<i64>, StoreError>;

    /// Who holds leases on queued rows of `channel` (to free those of a worker known dead).
    async fn lease_owners(&self, channel: Channel) -> Result<Vec<String>, StoreError>;

    /// When the earliest queued mail is due (lease expiry counted), if any.
    async fn next_outbox_due(&self, channel: Channel) -> Result<Option<i64>, StoreError>;

    /// The outbox's unsent rows by kind (kinds with none are absent), as of `now`: for metrics.
    async fn outbox_gauges(&self, now: i64) -> Result<Vec<OutboxGauge>, StoreError>;

    /// A page of messages, newest first (see [`ListQuery`]), each with its worst delivery
    /// (`mail::destination::worst`).
    async fn list(&self, query: &ListQuery) -> Result<Vec<MessageSummary>, StoreError>;

    /// How many messages are in each status (statuses with none are absent).
    async fn counts(&self) -> Result<Vec<(Status, i64)>, StoreError> {
        self.counts_for(None).await
    }

    /// [`Store::counts`] of one form's messages (its slug); None: of all.
    async fn counts_for(&self, form: Option<&str>) -> Result<Vec<(Status, i64)>, StoreError>;

    /// A signal that fires soon after anyone (any instance, any moderator) changes messages or
    /// their mail, where the backend can push changes (PostgreSQL: LISTEN/NOTIFY). None means
    /// watchers must poll. Signals can coalesce or drop (a reconnect), so watchers poll too.
    async fn changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// Deletes for good: trashed messages deleted before `trashed_before`, and pending (never
    /// verified) messages created before `unverified_before`. Their outbox rows and audit go too.
    async fn purge(&self, trashed_before: i64, unverified_before: i64) -> Result<Purged, StoreError>;

    /// [`Store::apply`], with the change's mail checked against `guard` (None: always queued, as with no caps).
    /// A withheld mail leaves the nonce and expiry as they were (older links keep working).
    async fn apply_guarded(&self, change: &Change, guard: Option<&MailGuard>) -> Result<Applied, StoreError>;

    /// "I didn't send this": no more mail to `address` (compared lower-cased). False if it was
    /// suppressed already.
    async fn suppress(&self, address: &str, now: i64, reason: &str) -> Result<bool, StoreError>;

    /// A moderator lifts a suppression. False if the address was not suppressed.
    async fn unsuppress(&self, address: &str) -> Result<bool, StoreError>;

    /// Every suppressed address, newest first.
    async fn suppressed(&self) -> Result<Vec<SuppressedAddress>, StoreError>;

    /// Counts one request by `key` in the fixed window `(bucket, key, window_start)` and returns
    /// the window's count so far, this request included. One atomic upsert, so instances sharing
    /// the database share the count. The row may be pruned after `expires_at`.
    async fn count_request(
        &self,
        bucket: &str,
        key: &str,
        window_start: i64,
        expires_at: i64,
    ) -> Result<i64, StoreError>;

    /// Deletes rate-limit windows that ended before `now`; returns how many.
    async fn prune_rate_limits(&self, now: i64) -> Result<u64, StoreError>;
}

pub type SharedStore = Arc<dyn Store>;

/// Opens the store a `database_url` names and brings its schema up to date.
pub async fn connect(database_url: &str) -> Result<SharedStore, StoreError> {
    if database_url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(database_url).await?))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(database_url).await?))
    } else {
        // Only the scheme: the rest of a URL may carry a password.
        let shown = match database_url.split_once(':') {
            Some((scheme, _)) => format!("{scheme}:…"),
            None => database_url.to_string(),
        };
        Err(StoreError::Unsupported(shown))
    }
}
