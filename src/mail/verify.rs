//! Verification mails: queued by the use-cases as a small outbox entry (who, which link, which
//! Message-ID) and rendered by the outbox worker when it sends them.
//!
//! Rendering when sent keeps templating (~50 µs a mail) and the ~5 KB message out of the intake
//! transaction and out of the database. Every attempt renders the same mail from the row: the
//! same Message-ID (kept in the row), the same link (its nonce and expiry are kept), the queue
//! time as its Date. Only the MIME boundary differs between attempts.

use std::sync::Arc;

use super::compose::{ComposeError, Composer, VerifyMail};
use super::queue::{MailBody, MailKind, OutboxItem, OutgoingMail, VerificationLink};
use crate::domain::{MessageId, VisitorEmail};
use crate::token::{Keys, Purpose};

/// How long the "I didn't send this" link in a verification mail works (a year: long after the
/// verification link, and as long as the message is kept; `purge_after_days` removes it sooner).
pub const SUPPRESS_LINK_TTL: i64 = 365 * 86_400;

pub struct VerificationMails {
    keys: Keys,
    composer: Arc<Composer>,
    /// With no SMTP configured, log verification links so a site owner can try formgate at once.
    log_links: bool,
}

impl VerificationMails {
    pub fn new(keys: Keys, composer: Arc<Composer>, log_links: bool) -> Self {
        Self {
            keys,
            composer,
            log_links,
        }
    }

    /// The outbox entry for message `id`'s verification mail with the link `nonce`/`expires_at`,
    /// queued at `now`. Nothing is rendered yet; an address the mail could never be built for is
    /// refused here, while the visitor can still be told.
    pub fn queue(
        &self,
        id: MessageId,
        to: &VisitorEmail,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<OutgoingMail, ComposeError> {
        let recipient = Composer::mailbox(to.as_str())?;
        Ok(OutgoingMail {
            kind: MailKind::Verify,
            recipient: recipient.email.to_string(),
            sender: self.composer.sender().to_string(),
            message_id_header: self.composer.new_message_id(MailKind::Verify, id),
            body: MailBody::Verification(VerificationLink {
                nonce: nonce.to_string(),
                expires_at,
            }),
            give_up_at: now + self.composer.mail_lifetime(),
        })
    }

    /// The bytes to send for a claimed outbox row: its rendered message, or its verification mail
    /// rendered now.
    pub fn bytes<'a>(&self, item: &'a OutboxItem) -> Result<std::borrow::Cow<'a, [u8]>, ComposeError> {
        let link = match &item.body {
            MailBody::Rendered(bytes) => return Ok(std::borrow::Cow::Borrowed(bytes)),
            MailBody::Verification(link) => link,
        };
        let id = item
            .message_id
            .ok_or_else(|| ComposeError::Build("a verification mail without its message".into()))?;
        self.render(id, item, link).map(std::borrow::Cow::Owned)
    }

    fn render(&self, id: MessageId, item: &OutboxItem, link: &VerificationLink) -> Result<Vec<u8>, ComposeError> {
        let token = self.keys.sign(Purpose::Verify, id, link.expires_at, &link.nonce);
        let code = self.keys.code(id, &link.nonce);
        // The suppress link names the address, lower-cased as the suppression list keeps it; it
        // is good for a year from when the mail was queued.
        let suppress_token = self.keys.sign(
            Purpose::Suppress,
            id,
            item.created_at + SUPPRESS_LINK_TTL,
            &item.recipient.to_lowercase(),
        );
        if self.log_links {
            tracing::info!(message_id = id.0, link = %self.composer.verify_link(&token), code = %code, "no SMTP configured: the verification mail goes to the mail folder");
        }
        self.composer.verify(
            &VerifyMail {
                id,
                to: &item.recipient,
                token: &token,
                code: &code,
                suppress_token: &suppress_token,
                expires_at: link.expires_at,
                now: item.created_at,
            },
            &item.message_id_header,
        )
    }
}
