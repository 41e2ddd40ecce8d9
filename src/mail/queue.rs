//! What the outbox holds: a mail to queue, a mail claimed to send, how its sending ended, and a
//! row as the dashboard shows it. The store keeps these in its `outbox` table; the worker
//! (`outbox.rs`) sends them.

use serde::Serialize;

use crate::domain::MessageId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailKind {
    /// To the visitor: "confirm your message".
    Verify,
    /// To the staff inbox: the released message.
    Release,
    /// To the visitor, once they confirmed: "we have received your message", with a copy.
    Confirmation,
    /// To a webhook of the message's form (JSON over HTTPS, signed): not a mail at all, but it
    /// leaves through the same outbox, with its own attempts and state.
    Webhook,
}

impl MailKind {
    pub const ALL: [MailKind; 4] = [
        MailKind::Verify,
        MailKind::Release,
        MailKind::Confirmation,
        MailKind::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Verify => "verify",
            MailKind::Release => "release",
            MailKind::Confirmation => "confirmation",
            MailKind::Webhook => "webhook",
        }
    }

    /// Which worker sends it: webhooks go over HTTP, everything else over SMTP.
    pub fn channel(self) -> Channel {
        match self {
            MailKind::Webhook => Channel::Webhook,
            MailKind::Verify | MailKind::Release | MailKind::Confirmation => Channel::Mail,
        }
    }
}

/// The outbox's two ways out, each with a worker of its own: a slow webhook receiver must not
/// hold up verification mail, and an SMTP outage must not hold up webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// Every mail: over SMTP (or into `.eml` files).
    Mail,
    /// Webhook deliveries: over HTTP.
    Webhook,
}

impl Channel {
    /// The outbox rows of this channel, as SQL both engines read. A literal, not a bound value:
    /// only a literal `kind = 'webhook'` lets the planners use the small partial index of queued
    /// webhooks (`outbox_webhooks_due`), while the mail claim keeps the due index intake has
    /// always maintained (an expression index on the channel cost intake 4–5%, measured).
    pub fn sql_filter(self) -> &'static str {
        match self {
            Channel::Mail => "kind <> 'webhook'",
            Channel::Webhook => "kind = 'webhook'",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Mail => "mail",
            Channel::Webhook => "webhook",
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

/// A mail claimed by an outbox worker (or queued already leased to one: `mail::handover`).
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

impl OutboxItem {
    /// The item a claim would return for `mail`, just queued as row `id` at `created_at`.
    pub fn queued(id: i64, message_id: MessageId, created_at: i64, mail: OutgoingMail) -> Self {
        OutboxItem {
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
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    Queued,
    Sent,
    Dead,
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
