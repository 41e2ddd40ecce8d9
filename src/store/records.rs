//! What goes into the store and what comes back: the read models (a message's audit trail, a
//! dashboard row), a status change to apply, and a new submission to store.

use serde::Serialize;

use crate::domain::{MessageId, NewMessage, Status, Withheld};
use crate::mail::queue::{MailKind, OutboxItem, OutboxState, OutgoingMail};

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
    /// Queued in the same transaction: a verification mail, or everything a release or a
    /// confirmation sends (the staff mail, each webhook, the visitor's copy). When a guard is
    /// given, it judges the first, and withholding it withholds them all. The visitor's copy
    /// (`MailKind::Confirmation`) is dropped, guard or not, when its address is suppressed.
    pub mails: Vec<OutgoingMail>,
}

/// One row of a dashboard table or `formgate list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageSummary {
    pub id: MessageId,
    pub status: Status,
    /// The slug of the form it was posted to.
    pub form: String,
    pub name: String,
    pub email: String,
    pub subject: Option<String>,
    /// The body's first 200 characters (the table shows the first line).
    pub preview: String,
    pub created_at: i64,
    pub verified_at: Option<i64>,
    pub released_at: Option<i64>,
    pub deleted_at: Option<i64>,
    /// The message's worst delivery, if it has any (`mail::destination::worst`): why a visitor
    /// never confirmed, or which webhook is failing.
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
    /// Only this form's messages (its slug).
    pub form: Option<String>,
    /// Case-insensitive substring of name, email, subject, body or the form's own fields.
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
    pub(super) fn status(&self) -> Status {
        if self.spam.is_some() {
            Status::Spam
        } else {
            Status::Pending
        }
    }

    /// The audit line's detail: why it was not mailed, if it was not.
    pub(super) fn audit_detail(&self, withheld: Option<&Withheld>) -> Option<String> {
        match self.spam {
            Some(why) => Some(format!("caught by a bot filter: {why}; not mailed")),
            None => withheld.map(Withheld::to_string),
        }
    }
}

/// What `Store::insert_batch` did with one submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inserted {
    pub id: MessageId,
    /// Why no verification mail was queued, if none was.
    pub withheld: Option<Withheld>,
    /// The verification mail, when it was queued under a lease (`mail::handover`): what a claim
    /// would return.
    pub leased: Option<OutboxItem>,
}

/// What `Store::apply_guarded` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// False: the message had moved on; nothing changed.
    pub done: bool,
    pub withheld: Option<Withheld>,
    /// The change's copy to the visitor was not queued: the address is suppressed.
    pub copy_withheld: bool,
}

impl Applied {
    /// The message had moved on: nothing was changed (nor withheld).
    pub const NOT_DONE: Applied = Applied {
        done: false,
        withheld: None,
        copy_withheld: false,
    };
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuppressedAddress {
    pub address: String,
    pub created_at: i64,
    pub reason: String,
}

/// The outbox's rows of one kind, as the metrics show them (`Store::outbox_gauges`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxGauge {
    pub kind: MailKind,
    /// Waiting to go (due or not, leased or not).
    pub queued: i64,
    /// Waiting, due now, and nobody holds it.
    pub due: i64,
    /// Held by a worker that is sending it.
    pub leased: i64,
    /// Waiting after at least one failed attempt.
    pub retrying: i64,
    pub dead: i64,
    /// When the longest-waiting due row became due.
    pub oldest_due: Option<i64>,
}
