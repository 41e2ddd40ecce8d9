//! Rows into store types, for both backends: their schemas name the columns alike and store them
//! as text, 64-bit integers and bytes, so one mapping serves SQLite and PostgreSQL and a column
//! cannot be read differently by one of them.

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::error::StoreError;
use super::records::{AuditRecord, MailSummary, MessageSummary, OutboxGauge};
use crate::domain::{Message, MessageId, Status, fields_from_json};
use crate::mail::queue::{MailBody, MailKind, OutboxItem, OutboxRecord, OutboxState, VerificationLink};

/// A status read back from the database; anything unknown means the data is corrupt.
pub(super) fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

fn parse_kind(s: &str) -> Result<MailKind, StoreError> {
    match s {
        "verify" => Ok(MailKind::Verify),
        "release" => Ok(MailKind::Release),
        "confirmation" => Ok(MailKind::Confirmation),
        "webhook" => Ok(MailKind::Webhook),
        other => Err(StoreError::Corrupt(format!("mail kind {other:?}"))),
    }
}

fn parse_state(s: &str) -> Result<OutboxState, StoreError> {
    match s {
        "queued" => Ok(OutboxState::Queued),
        "sent" => Ok(OutboxState::Sent),
        "dead" => Ok(OutboxState::Dead),
        other => Err(StoreError::Corrupt(format!("outbox state {other:?}"))),
    }
}

/// The columns an outbox row keeps of a body: `(payload, link_nonce, link_expires_at)`, exactly
/// one side set.
pub(super) fn body_columns(body: &MailBody) -> (Option<&[u8]>, Option<&str>, Option<i64>) {
    match body {
        MailBody::Rendered(bytes) => (Some(bytes), None, None),
        MailBody::Verification(link) => (None, Some(&link.nonce), Some(link.expires_at)),
    }
}

/// Back from those columns.
fn body_from_columns(
    payload: Option<Vec<u8>>,
    link_nonce: Option<String>,
    link_expires_at: Option<i64>,
) -> Result<MailBody, StoreError> {
    match (payload, link_nonce, link_expires_at) {
        (None, Some(nonce), Some(expires_at)) => Ok(MailBody::Verification(VerificationLink { nonce, expires_at })),
        (Some(bytes), None, None) => Ok(MailBody::Rendered(bytes)),
        _ => Err(StoreError::Corrupt(
            "an outbox row needs either its rendered message or its link, not both or neither".into(),
        )),
    }
}

fn opt_status(s: Option<String>) -> Result<Option<Status>, StoreError> {
    s.as_deref().map(parse_status).transpose()
}

// Each function below needs the same few facts about a backend's row type: columns can be
// looked up by name and decode as i64, String and (for the payload) bytes. `Option<_>` of
// these comes with sqlx's blanket impls.

pub(super) fn message<'r, R>(r: &'r R) -> Result<Message, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Message {
        id: MessageId(r.try_get("id")?),
        status: parse_status(&r.try_get::<String, _>("status")?)?,
        form: r.try_get("form")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        fields: fields_from_json(&r.try_get::<String, _>("fields")?).map_err(StoreError::Corrupt)?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        nonce: r.try_get("nonce")?,
        confirmed_nonce: r.try_get("confirmed_nonce")?,
        verify_expires_at: r.try_get("verify_expires_at")?,
        verify_mails: r.try_get("verify_mails")?,
        code_failures: r.try_get("code_failures")?,
        link_opened_at: r.try_get("link_opened_at")?,
        verified_at: r.try_get("verified_at")?,
        released_at: r.try_get("released_at")?,
        deleted_at: r.try_get("deleted_at")?,
        status_before_delete: opt_status(r.try_get("status_before_delete")?)?,
    })
}

/// A `list` row: the message's columns (its mail is looked up apart, see [`delivery`]).
pub(super) fn summary<'r, R>(r: &'r R) -> Result<MessageSummary, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(MessageSummary {
        id: MessageId(r.try_get("id")?),
        status: parse_status(&r.try_get::<String, _>("status")?)?,
        form: r.try_get("form")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        subject: r.try_get("subject")?,
        preview: r.try_get("preview")?,
        created_at: r.try_get("created_at")?,
        verified_at: r.try_get("verified_at")?,
        released_at: r.try_get("released_at")?,
        deleted_at: r.try_get("deleted_at")?,
        mail: None,
    })
}

/// One delivery of a list page's messages: its message, the summary, whether a worker holds it.
pub(super) fn delivery<'r, R>(r: &'r R) -> Result<(MessageId, MailSummary, bool), StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let summary = MailSummary {
        kind: parse_kind(&r.try_get::<String, _>("kind")?)?,
        state: parse_state(&r.try_get::<String, _>("state")?)?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
    };
    let leased = r.try_get::<Option<String>, _>("lease_owner")?.is_some();
    Ok((MessageId(r.try_get("message_id")?), summary, leased))
}

pub(super) fn audit<'r, R>(r: &'r R) -> Result<AuditRecord, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(AuditRecord {
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        from_status: opt_status(r.try_get("from_status")?)?,
        to_status: opt_status(r.try_get("to_status")?)?,
        detail: r.try_get("detail")?,
    })
}

pub(super) fn outbox_record<'r, R>(r: &'r R) -> Result<OutboxRecord, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(OutboxRecord {
        id: r.try_get("id")?,
        kind: parse_kind(&r.try_get::<String, _>("kind")?)?,
        recipient: r.try_get("recipient")?,
        message_id_header: r.try_get("message_id_header")?,
        state: parse_state(&r.try_get::<String, _>("state")?)?,
        attempts: r.try_get("attempts")?,
        created_at: r.try_get("created_at")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        last_attempt_at: r.try_get("last_attempt_at")?,
        sent_at: r.try_get("sent_at")?,
        lease_owner: r.try_get("lease_owner")?,
    })
}

pub(super) fn outbox_item<'r, R>(r: &'r R) -> Result<OutboxItem, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(OutboxItem {
        id: r.try_get("id")?,
        message_id: r.try_get::<Option<i64>, _>("message_id")?.map(MessageId),
        kind: parse_kind(&r.try_get::<String, _>("kind")?)?,
        recipient: r.try_get("recipient")?,
        sender: r.try_get("sender")?,
        message_id_header: r.try_get("message_id_header")?,
        body: body_from_columns(
            r.try_get("payload")?,
            r.try_get("link_nonce")?,
            r.try_get("link_expires_at")?,
        )?,
        created_at: r.try_get("created_at")?,
        attempts: r.try_get("attempts")?,
        give_up_at: r.try_get("give_up_at")?,
    })
}

/// Claimed rows as mails, oldest first, apart from those this version cannot read (a row a newer
/// formgate queued, say), each with why: one of those must not stop the rest from going out.
pub(super) fn claimed_items<'r, R>(rows: &'r [R]) -> (Vec<OutboxItem>, Vec<(i64, String)>)
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut items = Vec::with_capacity(rows.len());
    let mut unreadable = Vec::new();
    for row in rows {
        match outbox_item(row) {
            Ok(item) => items.push(item),
            // The id is an integer primary key: always readable.
            Err(e) => unreadable.push((row.try_get("id").unwrap_or_default(), e.to_string())),
        }
    }
    // RETURNING order is unspecified; send oldest first.
    items.sort_by_key(|i| i.id);
    (items, unreadable)
}

/// Logged for each claimed row that cannot be read (see [`claimed_items`]).
pub(super) fn log_unreadable(unreadable: &[(i64, String)]) {
    for (id, error) in unreadable {
        tracing::error!(
            outbox = id,
            %error,
            "outbox: cannot read this mail, sending the others; it stays queued for a worker that can \
             (a newer formgate's?) until its lifetime ends"
        );
    }
}

/// Records on a row that could not be read why, as an attempt; past its lifetime it is dead. The
/// claim's lease stays, so the row is not claimed again at once (by this worker, which would fail
/// again) but is, when the lease runs out, by whoever comes then; a dead row's lease is cleared, as
/// `finish_outbox` clears it. Binds: the error, now, the id (`$N` on both engines: sqlx binds
/// SQLite's `$N` by its number).
pub(super) const SET_ASIDE_UNREADABLE: &str =
    "UPDATE outbox SET last_error = $1, last_attempt_at = $2, attempts = attempts + 1,
        state = CASE WHEN give_up_at <= $2 THEN 'dead' ELSE state END,
        lease_owner = CASE WHEN give_up_at <= $2 THEN NULL ELSE lease_owner END,
        lease_until = CASE WHEN give_up_at <= $2 THEN NULL ELSE lease_until END
     WHERE id = $3";

/// Messages per status (`Store::counts`).
pub(super) const COUNTS: &str = "SELECT status, COUNT(*) AS n FROM messages GROUP BY status";
/// The same for one form (`Store::counts_for`): a scan, as `form` has no index (see migration 0007).
pub(super) const COUNTS_OF_FORM: &str = "SELECT status, COUNT(*) AS n FROM messages WHERE form = $1 GROUP BY status";

/// A `counts` row: `status` and its count `n`.
pub(super) fn status_count<'r, R>(r: &'r R) -> Result<(Status, i64), StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok((parse_status(&r.try_get::<String, _>("status")?)?, r.try_get("n")?))
}

/// The outbox's unsent rows by kind (`Store::outbox_gauges`); `$1` is now. Only queued and dead
/// rows are read: the queued through the `outbox_due` index, the dead through `outbox_dead`
/// (migration 0010), never the sent rows that make up most of the table.
pub(super) const OUTBOX_GAUGES: &str = "
    SELECT kind,
        COUNT(*) FILTER (WHERE state = 'queued') AS queued,
        COUNT(*) FILTER (WHERE state = 'queued' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)) AS due,
        COUNT(*) FILTER (WHERE state = 'queued' AND lease_until > $1) AS leased,
        COUNT(*) FILTER (WHERE state = 'queued' AND attempts > 0) AS retrying,
        COUNT(*) FILTER (WHERE state = 'dead') AS dead,
        MIN(next_attempt_at) FILTER (WHERE state = 'queued' AND next_attempt_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)) AS oldest_due
    FROM (SELECT kind, state, next_attempt_at, lease_until, attempts FROM outbox WHERE state = 'queued'
          UNION ALL
          SELECT kind, state, next_attempt_at, lease_until, attempts FROM outbox WHERE state = 'dead') AS unsent
    GROUP BY kind";

/// An `OUTBOX_GAUGES` row.
pub(super) fn outbox_gauge<'r, R>(r: &'r R) -> Result<OutboxGauge, StoreError>
where
    R: Row,
    for<'c> &'c str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(OutboxGauge {
        kind: parse_kind(&r.try_get::<String, _>("kind")?)?,
        queued: r.try_get("queued")?,
        due: r.try_get("due")?,
        leased: r.try_get("leased")?,
        retrying: r.try_get("retrying")?,
        dead: r.try_get("dead")?,
        oldest_due: r.try_get("oldest_due")?,
    })
}
