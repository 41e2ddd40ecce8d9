//! Persistence. ALL SQL lives under this module; the rest of formgate talks to the [`Store`] trait,
//! which knows nothing about either backend. State-machine decisions are made in `domain` and
//! `actions`; the store applies them atomically as compare-and-swap [`Change`]s, so two moderators
//! (or two processes) acting on one message cannot both succeed.

mod intake;
mod postgres;
mod rows;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::domain::{Message, MessageId, NewMessage, Status};

pub use intake::{HandedMail, Handover, HandoverInbox, IntakeQueue, MakeMail, NewSubmission, handover};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    #[error("unsupported database_url `{0}`")]
    Unsupported(String),
    #[error("could not make the mail to queue: {0}")]
    Mail(String),
    /// One failure answered to every submission of a group-committed batch.
    #[error(transparent)]
    Batch(Arc<StoreError>),
    #[error("the intake queue has stopped")]
    IntakeStopped,
}

impl StoreError {
    /// True when the failure is about one submission's data (a render error, a constraint, a value
    /// the database refuses) rather than the database as a whole: the rest of its batch can still
    /// be stored without it.
    pub fn concerns_one_submission(&self) -> bool {
        match self {
            StoreError::Mail(_) => true,
            StoreError::Database(sqlx::Error::Encode(_)) => true,
            StoreError::Database(sqlx::Error::Database(db)) => {
                // A constraint, or PostgreSQL's class 22 (data exception: a NUL byte in text, …).
                !matches!(db.kind(), sqlx::error::ErrorKind::Other)
                    || db.code().is_some_and(|c| c.starts_with("22") && c.len() == 5)
            }
            _ => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailKind {
    /// To the visitor: "confirm your message".
    Verify,
    /// To the staff inbox: the released message.
    Release,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Verify => "verify",
            MailKind::Release => "release",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "verify" => Ok(MailKind::Verify),
            "release" => Ok(MailKind::Release),
            other => Err(StoreError::Corrupt(format!("mail kind {other:?}"))),
        }
    }
}

/// A mail for the outbox: its envelope and Message-ID, and what it says.
#[derive(Clone, Debug)]
pub struct OutgoingMail {
    pub kind: MailKind,
    pub recipient: String,
    pub sender: String,
    pub message_id_header: String,
    pub body: MailBody,
    /// When the outbox stops retrying and dead-letters it.
    pub give_up_at: i64,
}

/// What a queued mail says: the complete message, or what its verification mail is rendered
/// from when it is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailBody {
    /// The complete RFC 5322 message, sent as it is on every attempt (staff mails: they quote a
    /// message that may be purged before they go out).
    Rendered(Vec<u8>),
    /// A verification mail, rendered by the outbox worker. Rendering when queued put ~1 ms of
    /// templating per post inside the intake transaction and ~5 KB per post into the database;
    /// the row keeps what every attempt needs to render the same mail (same Message-ID, same link,
    /// the queue time as its Date).
    Verification(VerificationLink),
}

/// The link a verification mail carries: signed from the message id, this nonce and this expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationLink {
    pub nonce: String,
    pub expires_at: i64,
}

impl MailBody {
    /// The columns a row keeps: `(payload, link_nonce, link_expires_at)`, exactly one side set.
    fn columns(&self) -> (Option<&[u8]>, Option<&str>, Option<i64>) {
        match self {
            MailBody::Rendered(bytes) => (Some(bytes), None, None),
            MailBody::Verification(link) => (None, Some(&link.nonce), Some(link.expires_at)),
        }
    }

    /// Back from those columns.
    fn from_columns(
        payload: Option<Vec<u8>>,
        link_nonce: Option<String>,
        link_expires_at: Option<i64>,
    ) -> Result<Self, StoreError> {
        match (payload, link_nonce, link_expires_at) {
            (None, Some(nonce), Some(expires_at)) => Ok(MailBody::Verification(VerificationLink { nonce, expires_at })),
            (Some(bytes), None, None) => Ok(MailBody::Rendered(bytes)),
            _ => Err(StoreError::Corrupt(
                "an outbox row needs either its rendered message or its link, not both or neither".into(),
            )),
        }
    }
}

/// A mail claimed by an outbox worker (or queued already leased to one: [`Lease`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub message_id: Option<MessageId>,
    pub kind: MailKind,
    pub recipient: String,
    pub sender: String,
    pub message_id_header: String,
    pub body: MailBody,
    /// When it was queued: the Date of a mail rendered when sent.
    pub created_at: i64,
    pub attempts: i64,
    pub give_up_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    Queued,
    Sent,
    Dead,
}

impl OutboxState {
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "queued" => Ok(OutboxState::Queued),
            "sent" => Ok(OutboxState::Sent),
            "dead" => Ok(OutboxState::Dead),
            other => Err(StoreError::Corrupt(format!("outbox state {other:?}"))),
        }
    }
}

/// A status read back from the database; anything unknown means the data is corrupt.
fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

/// `%`, `_` and the escape character `\` match literally in a LIKE pattern built from user text
/// (backslash is the escape character on both backends: SQLite is told so with `ESCAPE`,
/// PostgreSQL uses it by default).
fn like_pattern(needle: &str) -> String {
    let escaped = needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// A GLOB pattern for `needle` anywhere, in any letter case. SQLite's LIKE folds ASCII letters
/// only (without ICU), so a moderator's "élodie" would miss "Élodie"; GLOB is case-sensitive but
/// understands UTF-8 character classes, so each letter becomes the class of its cases (`[éÉ]`).
/// GLOB's own wildcards (`*`, `?`, `[`) in the needle are classes of one, hence literal.
fn glob_anycase_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() * 4 + 2);
    pattern.push('*');
    for c in needle.chars() {
        let mut forms = vec![c];
        // Only one-to-one case mappings: ß → SS has no single-character form.
        for other in [single(c.to_lowercase()), single(c.to_uppercase())]
            .into_iter()
            .flatten()
        {
            if !forms.contains(&other) {
                forms.push(other);
            }
        }
        if forms.len() > 1 || matches!(c, '*' | '?' | '[') {
            pattern.push('[');
            pattern.extend(forms);
            pattern.push(']');
        } else {
            pattern.push(c);
        }
    }
    pattern.push('*');
    pattern
}

fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

/// The longest run of ASCII characters in `needle`.
fn longest_ascii_run(needle: &str) -> &str {
    needle
        .split(|c: char| !c.is_ascii())
        .max_by_key(|run| run.len())
        .unwrap_or("")
}

/// How `list` matches its search text, per engine.
#[derive(Clone, Copy)]
enum TextMatch {
    /// PostgreSQL: `ILIKE`, which folds case by the database's locale.
    Ilike,
    /// SQLite: `LIKE` for ASCII text (it folds ASCII letters, and fast); otherwise `GLOB` with a
    /// pattern of case classes (see `glob_anycase_pattern`), which is correct but ten times
    /// slower, so the text's longest ASCII run, if any, first narrows the rows with `LIKE`.
    SqliteAnyCase,
}

/// Appends "`column` matches `needle`" to `qb`.
fn push_text_match<'a, DB>(qb: &mut sqlx::QueryBuilder<'a, DB>, matching: TextMatch, column: &str, needle: &str)
where
    DB: sqlx::Database,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let like = |qb: &mut sqlx::QueryBuilder<'a, DB>, text: &str| {
        qb.push(column)
            .push(" LIKE ")
            .push_bind(like_pattern(text))
            .push(" ESCAPE '\\'");
    };
    match matching {
        TextMatch::Ilike => {
            qb.push(column).push(" ILIKE ").push_bind(like_pattern(needle));
        }
        TextMatch::SqliteAnyCase if needle.is_ascii() => like(qb, needle),
        TextMatch::SqliteAnyCase => {
            qb.push("(");
            let run = longest_ascii_run(needle);
            if run.len() >= 2 {
                like(qb, run);
                qb.push(" AND ");
            }
            qb.push(column).push(" GLOB ").push_bind(glob_anycase_pattern(needle));
            qb.push(")");
        }
    }
}

/// Builds the `list` query for either backend. The page is cut from `messages` alone first, with
/// only the conditions this query needs (so `messages_by_status` / `messages_by_time` serve the
/// ORDER BY and LIMIT without sorting the table), and the newest mail is joined for that page
/// only. One SQL text per shape: a generic `(? IS NULL OR …)` form keeps the planner off the
/// index, which at 100 000 messages cost ~200 ms a page instead of under a millisecond.
/// `matching` is the engine's case-insensitive match; `newest_mail` joins alias `o` to the message
/// `m`.
fn list_query<'a, DB>(q: &'a ListQuery, matching: TextMatch, newest_mail: &str) -> sqlx::QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::new(
        "SELECT m.id, m.status, m.name, m.email, m.subject, substr(m.body, 1, 200) AS preview, m.created_at,
                m.verified_at, m.released_at, m.deleted_at,
                o.kind AS mail_kind, o.state AS mail_state, o.attempts AS mail_attempts, o.last_error AS mail_error,
                o.next_attempt_at AS mail_next
         FROM (SELECT * FROM messages WHERE TRUE",
    );
    if let Some(status) = q.status {
        qb.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some((at, id)) = q.after {
        // Spelled out rather than a row value: both planners turn this into an index range.
        qb.push(" AND (created_at < ").push_bind(at);
        qb.push(" OR (created_at = ")
            .push_bind(at)
            .push(" AND id < ")
            .push_bind(id.0)
            .push("))");
    }
    if let Some(needle) = q.search.as_deref().filter(|s| !s.is_empty()) {
        qb.push(" AND (");
        for (i, column) in ["name", "email", "subject", "body"].iter().enumerate() {
            if i > 0 {
                qb.push(" OR ");
            }
            push_text_match(&mut qb, matching, column, needle);
        }
        qb.push(")");
    }
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(q.limit.max(1));
    qb.push(") m ")
        .push(newest_mail)
        .push(" ORDER BY m.created_at DESC, m.id DESC");
    qb
}

/// One outbox row as the dashboard and tests see it.
#[derive(Clone, Debug, Serialize)]
pub struct OutboxRecord {
    pub id: i64,
    pub kind: MailKind,
    pub recipient: String,
    pub message_id_header: String,
    pub state: OutboxState,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    pub sent_at: Option<i64>,
    /// The worker sending it right now, if any.
    pub lease_owner: Option<String>,
}

/// How one send attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    Retry { at: i64, error: String },
    Dead { error: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditRecord {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub from_status: Option<Status>,
    pub to_status: Option<Status>,
    pub detail: Option<String>,
}

/// Who did what, written in the same transaction as the change it describes.
#[derive(Clone, Debug)]
pub struct Audit {
    pub actor: String,
    pub action: &'static str,
    pub detail: Option<String>,
}

/// A status change, applied only if the message is still where the caller saw it.
#[derive(Clone, Debug)]
pub struct Change {
    pub id: MessageId,
    /// Compare: the status the caller decided from.
    pub from: Status,
    /// Compare: the nonce the caller's token was signed with, if a token drove this change.
    pub expect_nonce: Option<String>,
    /// Swap: the new status (timestamps such as verified_at follow from it).
    pub to: Status,
    pub now: i64,
    pub new_nonce: Option<String>,
    pub confirmed_nonce: Option<String>,
    /// A new verification went out: new expiry, one more mail counted, code tries reset.
    pub new_verification: Option<i64>,
    pub audit: Audit,
    /// Queued in the same transaction.
    pub mail: Option<OutgoingMail>,
}

/// One row of a dashboard table or `formgate list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    pub id: MessageId,
    pub status: Status,
    pub name: String,
    pub email: String,
    pub subject: Option<String>,
    /// The body's first 200 characters (the table shows the first line).
    pub preview: String,
    pub created_at: i64,
    pub verified_at: Option<i64>,
    pub released_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// The newest outbox row for this message, if any: why a visitor may never have confirmed.
    pub mail: Option<MailSummary>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MailSummary {
    pub kind: MailKind,
    pub state: OutboxState,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
}

/// A page of messages, newest first. `after` is the last row of the previous page (keyset
/// pagination: the cost of a page does not grow with how far down it is).
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub status: Option<Status>,
    /// Case-insensitive substring of name, email, subject or body.
    pub search: Option<String>,
    pub after: Option<(i64, MessageId)>,
    pub limit: i64,
}

/// What `purge` removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub trashed: u64,
    pub unverified: u64,
}

/// Makes the verification mail's outbox entry once the new message's id is known (inside the
/// transaction: cheap, nothing is rendered).
pub type MailForId<'a> = &'a (dyn Fn(MessageId) -> Result<OutgoingMail, String> + Send + Sync);

/// One new message to store, with everything its transaction needs.
pub struct Submission<'a> {
    pub msg: &'a NewMessage,
    pub now: i64,
    /// Random per message: signs its links, and tells the rows of one batch apart.
    pub nonce: &'a str,
    pub verify_expires_at: i64,
    /// Why a bot filter caught it, if one did: stored as spam, never mailed.
    pub spam: Option<&'a str>,
    pub mail: MailForId<'a>,
}

impl Submission<'_> {
    fn status(&self) -> Status {
        if self.spam.is_some() {
            Status::Spam
        } else {
            Status::Pending
        }
    }

    /// The audit line's detail: why it was not mailed, if it was not.
    fn audit_detail(&self, withheld: Option<&str>) -> Option<String> {
        match self.spam {
            Some(why) => Some(format!("caught by a bot filter: {why}; not mailed")),
            None => withheld.map(str::to_owned),
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a new pending message, its audit line and its verification mail in one transaction.
    async fn insert_message(
        &self,
        msg: &NewMessage,
        now: i64,
        nonce: &str,
        verify_expires_at: i64,
        mail: MailForId<'_>,
    ) -> Result<MessageId, StoreError> {
        // The unguarded path is the guarded one with no caps; both backends share it.
        Ok(self
            .insert_guarded(msg, now, nonce, verify_expires_at, mail, &MailGuard::default(), None)
            .await?
            .id)
    }

    /// Stores a new message like [`Store::insert_message`], but queues its verification mail only
    /// if `guard` allows (checked inside the same write transaction, so concurrent posts naming one
    /// address cannot both pass a cap of one). `spam`: caught by a bot filter; stored as spam,
    /// never mailed. A withheld mail is recorded on the message's audit line.
    #[allow(clippy::too_many_arguments)]
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
        let one = Submission {
            msg,
            now,
            nonce,
            verify_expires_at,
            spam,
            mail,
        };
        self.insert_one(&one, guard).await
    }

    /// [`Store::insert_batch`] for a batch of one, its mail not leased.
    async fn insert_one(&self, submission: &Submission<'_>, guard: &MailGuard) -> Result<Inserted, StoreError> {
        let mut inserted = self.insert_batch(std::slice::from_ref(submission), guard, None).await?;
        inserted
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a batch of one stored nothing".into()))
    }

    /// Stores several submissions (each as [`Store::insert_guarded`] would) in ONE transaction:
    /// group commit. The guard is applied in order, so two posts to one address in one batch
    /// count against its cap like two separate ones. All or nothing; the answer is in order.
    ///
    /// With a `lease`, the batch's mails are queued already claimed by that worker and come back
    /// in [`Inserted::leased`], to be handed to it in memory: no claim for them later.
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
    /// Returns false, changing nothing, when it is not.
    async fn apply(&self, change: &Change) -> Result<bool, StoreError>;

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
    ) -> Result<Vec<OutboxItem>, StoreError>;

    /// Records how sends ended (only for rows `owner` still holds).
    async fn finish_outbox(&self, owner: &str, now: i64, results: &[(i64, SendOutcome)]) -> Result<(), StoreError>;

    /// Gives back every lease `owner` holds (clean shutdown), so other workers send them at once.
    async fn release_leases(&self, owner: &str) -> Result<u64, StoreError>;

    /// When the earliest queued mail is due (lease expiry counted), if any.
    async fn next_outbox_due(&self) -> Result<Option<i64>, StoreError>;

    /// A page of messages, newest first (see [`ListQuery`]).
    async fn list(&self, query: &ListQuery) -> Result<Vec<MessageSummary>, StoreError>;

    /// How many messages are in each status (statuses with none are absent).
    async fn counts(&self) -> Result<Vec<(Status, i64)>, StoreError>;

    /// A signal that fires soon after anyone (any instance, any moderator) changes messages or
    /// their mail, where the backend can push changes (PostgreSQL: LISTEN/NOTIFY). None means
    /// watchers must poll. Signals can coalesce or drop (a reconnect), so watchers poll too.
    async fn changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// Deletes for good: trashed messages deleted before `trashed_before`, and pending (never
    /// verified) messages created before `unverified_before`. Their outbox rows and audit go too.
    async fn purge(&self, trashed_before: i64, unverified_before: i64) -> Result<Purged, StoreError>;

    /// [`Store::apply`], with the change's mail checked against `guard` (None: always queued).
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

/// Limits on verification mail, checked in the transaction that would queue one. Suppressed
/// addresses are never mailed, whatever the guard says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MailGuard {
    /// At most `.0` verification mails to one address within `.1` seconds.
    pub per_address: Option<(i64, i64)>,
    /// At most this many mails of any kind queued within the last hour.
    pub per_hour: Option<i64>,
}

/// What [`Store::insert_guarded`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inserted {
    pub id: MessageId,
    /// Why no verification mail was queued, if none was.
    pub withheld: Option<String>,
    /// The verification mail, when it was queued under a [`Lease`]: what a claim would return.
    pub leased: Option<OutboxItem>,
}

/// A claim taken when a mail is queued rather than later: the row is stored leased to `owner`
/// until `until`, exactly as [`Store::claim_outbox`] would leave it. If the owner never reports
/// an outcome (it crashed), the lease runs out and any worker claims the mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

/// What [`Store::apply_guarded`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// False: the message had moved on; nothing changed.
    pub done: bool,
    pub withheld: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuppressedAddress {
    pub address: String,
    pub created_at: i64,
    pub reason: String,
}

/// Counts the backends looked up for a guard; None where the guard did not need it.
struct GuardCounts {
    suppressed: bool,
    to_address: Option<i64>,
    last_hour: Option<i64>,
}

/// The one rule: why a verification mail must not go out, if it must not.
fn withhold_reason(guard: &MailGuard, c: &GuardCounts) -> Option<String> {
    if c.suppressed {
        return Some("verification withheld: the address asked for no more mail (suppressed)".into());
    }
    if let (Some((max, window)), Some(n)) = (guard.per_address, c.to_address)
        && n >= max
    {
        return Some(format!(
            "verification withheld: address already mailed within {}",
            format_window(window)
        ));
    }
    if let (Some(max), Some(n)) = (guard.per_hour, c.last_hour)
        && n >= max
    {
        return Some(format!("verification withheld: hourly mail limit ({max}) reached"));
    }
    None
}

/// What a backend looked up about one address posted in a batch.
struct AddressLookup {
    /// As posted.
    address: String,
    /// As the database lower-cases it (the form suppression and the caps compare).
    key: String,
    suppressed: bool,
    /// Verification mails to it within the per-address window (0 when that cap is off).
    recent: i64,
}

/// The guard's verdict on each submission of a batch, in order. Mails queued earlier in the batch
/// count, so a batch decides exactly as the same posts one transaction each would.
fn batch_verdicts(
    guard: &MailGuard,
    batch: &[Submission<'_>],
    lookups: Vec<AddressLookup>,
    mut last_hour: Option<i64>,
) -> Vec<Option<String>> {
    let by_address: std::collections::HashMap<String, AddressLookup> =
        lookups.into_iter().map(|l| (l.address.clone(), l)).collect();
    // Per key, not per spelling: Ada@x and ada@x share one cap.
    let mut queued_to: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    batch
        .iter()
        .map(|s| {
            if s.spam.is_some() {
                return None;
            }
            let Some(l) = by_address.get(s.msg.email.as_str()) else {
                // Every posted address is looked up; a missing one is a backend bug: mail nothing.
                return Some("verification withheld: the address could not be checked".into());
            };
            let earlier = queued_to.get(&l.key).copied().unwrap_or(0);
            let counts = GuardCounts {
                suppressed: l.suppressed,
                to_address: guard.per_address.map(|_| l.recent + earlier),
                last_hour,
            };
            let reason = withhold_reason(guard, &counts);
            if reason.is_none() {
                *queued_to.entry(l.key.clone()).or_default() += 1;
                if let Some(n) = last_hour.as_mut() {
                    *n += 1;
                }
            }
            reason
        })
        .collect()
}

/// A backend's lookup rows (address as posted, as lower-cased, suppressed, recent mails, mails in
/// the last hour) as lookups and the hourly count.
fn lookups_from_rows(
    rows: Vec<(String, String, bool, i64, i64)>,
    guard: &MailGuard,
) -> (Vec<AddressLookup>, Option<i64>) {
    // The hourly count is the same on every row (and unused with no rows: nothing to mail).
    let last_hour = guard.per_hour.map(|_| rows.first().map_or(0, |r| r.4));
    let lookups = rows
        .into_iter()
        .map(|(address, key, suppressed, recent, _)| AddressLookup {
            address,
            key,
            suppressed,
            recent,
        })
        .collect();
    (lookups, last_hour)
}

/// Each post's verification mail, where one may go out.
pub(super) fn batch_mails(
    batch: &[Submission<'_>],
    ids: &[MessageId],
    withheld: &[Option<String>],
) -> Result<Vec<(MessageId, i64, OutgoingMail)>, StoreError> {
    let mut mails = Vec::new();
    for ((s, id), w) in batch.iter().zip(ids).zip(withheld) {
        if s.spam.is_none() && w.is_none() {
            mails.push((*id, s.now, (s.mail)(*id).map_err(StoreError::Mail)?));
        }
    }
    Ok(mails)
}

/// A batch's answer. `outbox_ids` pairs each stored mail's message with its outbox row; with a
/// lease, the mails come back as the items their worker sends.
pub(super) fn inserted(
    ids: Vec<MessageId>,
    withheld: Vec<Option<String>>,
    mails: Vec<(MessageId, i64, OutgoingMail)>,
    outbox_ids: &[(MessageId, i64)],
    lease: Option<&Lease>,
) -> Result<Vec<Inserted>, StoreError> {
    let mut leased: std::collections::HashMap<MessageId, OutboxItem> = std::collections::HashMap::new();
    if lease.is_some() {
        let rows: std::collections::HashMap<MessageId, i64> = outbox_ids.iter().copied().collect();
        for (message_id, created_at, mail) in mails {
            let id = *rows
                .get(&message_id)
                .ok_or_else(|| StoreError::Corrupt(format!("no outbox row came back for message {}", message_id.0)))?;
            let item = OutboxItem {
                id,
                message_id: Some(message_id),
                kind: mail.kind,
                recipient: mail.recipient,
                sender: mail.sender,
                message_id_header: mail.message_id_header,
                body: mail.body,
                created_at,
                attempts: 0,
                give_up_at: mail.give_up_at,
            };
            leased.insert(message_id, item);
        }
    }
    Ok(ids
        .into_iter()
        .zip(withheld)
        .map(|(id, withheld)| Inserted {
            id,
            withheld,
            leased: leased.remove(&id),
        })
        .collect())
}

/// The distinct addresses of a batch's posts that may be mailed (spam never is).
fn mailable_addresses(batch: &[Submission<'_>]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    batch
        .iter()
        .filter(|s| s.spam.is_none())
        .map(|s| s.msg.email.as_str())
        .filter(|a| seen.insert(*a))
        .map(str::to_owned)
        .collect()
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

/// 86400 → "24 h", 1800 → "30 min".
fn format_window(secs: i64) -> String {
    if secs % 3600 == 0 {
        format!("{} h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::{glob_anycase_pattern, longest_ascii_run};

    #[test]
    fn glob_patterns_fold_case_per_letter_and_keep_wildcards_literal() {
        assert_eq!(glob_anycase_pattern("Él"), "*[Éé][lL]*");
        assert_eq!(glob_anycase_pattern("a*?[]1 "), "*[aA][*][?][[]]1 *");
        // ß has no one-character upper case; ẞ lowers to it.
        assert_eq!(glob_anycase_pattern("ß"), "*ß*");
        assert_eq!(glob_anycase_pattern("ẞ"), "*[ẞß]*");
    }

    #[test]
    fn the_longest_ascii_run_narrows_a_non_ascii_search() {
        assert_eq!(longest_ascii_run("Élodie Ünal"), "lodie ");
        assert_eq!(longest_ascii_run("Σωκράτης"), "");
    }
}
