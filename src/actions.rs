//! The use-cases. The web handlers, the CLI verbs and the dashboard all call these, so a rule
//! (who may confirm, when a link expires, how many codes may be tried) lives in exactly one place.
//!
//! Every status change is a compare-and-swap in the store: decided here from what was read, and
//! applied only if nobody changed the message in between.

use std::sync::Arc;

use base64::Engine;
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::domain::{IllegalTransition, Message, MessageId, NewMessage, Status, Transition, VisitorEmail};
use crate::mail::{Composer, VerifyMail};
use crate::store::{Audit, Change, OutgoingMail, SharedStore, StoreError};
use crate::token::{self, Keys, Purpose, TokenError};

/// Wrong codes allowed before the message needs a new verification mail.
pub const MAX_CODE_FAILURES: i64 = 5;
/// Verification mails a visitor can have sent for one message (the first one included).
pub const MAX_VISITOR_MAILS: i64 = 5;
/// How long a receipt (the "check your inbox" page's handle) can still ask for a new mail.
const RECEIPT_RESEND_WINDOW: i64 = 30 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("this link is not valid")]
    InvalidLink,
    #[error("this link has expired")]
    Expired { receipt: Option<String> },
    #[error("message {0} does not exist")]
    NotFound(MessageId),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("message {0} was changed by someone else meanwhile; look again")]
    Conflict(MessageId),
    #[error("that code is not right; {remaining} tries left")]
    WrongCode { remaining: i64 },
    #[error("too many wrong codes; ask for a new email")]
    CodeLocked,
    #[error("we've already sent {0} emails for this message; please use the newest one")]
    TooManyMails(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a visitor's browser gets back after posting.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub id: MessageId,
    pub receipt: String,
}

/// What opening a verification link (GET) shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkView {
    /// Show the "Confirm my message" button.
    Confirm,
    /// Already confirmed with this link: show the thank-you page again.
    AlreadyConfirmed,
}

pub struct Actions {
    store: SharedStore,
    keys: Keys,
    composer: Composer,
    clock: SharedClock,
    token_ttl: i64,
    outbox_wake: Arc<Notify>,
    /// With no SMTP configured, log verification links so a site owner can try formgate at once.
    log_links: bool,
}

fn new_nonce() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl Actions {
    pub fn new(
        store: SharedStore,
        keys: Keys,
        composer: Composer,
        clock: SharedClock,
        token_ttl: std::time::Duration,
        outbox_wake: Arc<Notify>,
        log_links: bool,
    ) -> Self {
        Self {
            store,
            keys,
            composer,
            clock,
            token_ttl: token_ttl.as_secs() as i64,
            outbox_wake,
            log_links,
        }
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    fn verify_mail(
        &self,
        id: MessageId,
        to: &VisitorEmail,
        nonce: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<OutgoingMail, String> {
        let token = self.keys.sign(Purpose::Verify, id, expires_at, nonce);
        let code = self.keys.code(id, nonce);
        if self.log_links {
            tracing::info!(message_id = id.0, link = %self.composer.verify_link(&token), code = %code, "no SMTP configured: the verification mail goes to the mail folder");
        }
        self.composer
            .verify(&VerifyMail {
                id,
                to,
                token: &token,
                code: &code,
                expires_at,
                now,
            })
            .map_err(|e| e.to_string())
    }

    fn receipt(&self, id: MessageId, now: i64) -> String {
        self.keys.sign(Purpose::Receipt, id, now + self.token_ttl, "")
    }

    /// A visitor posted a valid form: store it as pending with its verification mail queued, in one
    /// transaction. Returns only after the commit, so success means durable.
    pub async fn submit(&self, msg: NewMessage) -> Result<Submitted, ActionError> {
        let now = self.clock.now();
        let nonce = new_nonce();
        let expires_at = now + self.token_ttl;
        let render = |id: MessageId| self.verify_mail(id, &msg.email, &nonce, expires_at, now);
        let id = self
            .store
            .insert_message(&msg, now, &nonce, expires_at, &render)
            .await?;
        self.outbox_wake.notify_one();
        tracing::info!(message_id = id.0, "message received; verification queued");
        Ok(Submitted {
            id,
            receipt: self.receipt(id, now),
        })
    }

    async fn load(&self, id: MessageId) -> Result<Message, ActionError> {
        self.store.message(id).await?.ok_or(ActionError::NotFound(id))
    }

    /// Reads a verification token and the message it names.
    async fn token_message(&self, token: &str) -> Result<(token::Unverified, Message), ActionError> {
        let t = token::parse(token).map_err(|_| ActionError::InvalidLink)?;
        match self.store.message(t.id).await? {
            Some(m) => Ok((t, m)),
            None => Err(ActionError::InvalidLink),
        }
    }

    /// Was `t` the link this message was confirmed with? (Expiry does not matter for that.)
    fn confirmed_with(&self, t: &token::Unverified, m: &Message, now: i64) -> bool {
        matches!(m.status, Status::Verified | Status::Released)
            && m.confirmed_nonce.as_deref().is_some_and(|n| {
                matches!(
                    t.verify(&self.keys, Purpose::Verify, n, now, self.token_ttl),
                    Ok(_) | Err(TokenError::Expired { .. })
                )
            })
    }

    fn check_pending_link(&self, t: &token::Unverified, m: &Message, now: i64) -> Result<(), ActionError> {
        if m.status != Status::Pending {
            return Err(ActionError::InvalidLink);
        }
        match t.verify(&self.keys, Purpose::Verify, &m.nonce, now, self.token_ttl) {
            Ok(_) => Ok(()),
            Err(TokenError::Expired { id }) => Err(ActionError::Expired {
                receipt: Some(self.receipt(id, now)),
            }),
            Err(_) => Err(ActionError::InvalidLink),
        }
    }

    /// GET of a verification link: never changes the status (mail scanners fetch links before the
    /// visitor does), only records that the link was opened.
    pub async fn open_link(&self, token: &str) -> Result<LinkView, ActionError> {
        let now = self.clock.now();
        let (t, m) = self.token_message(token).await?;
        if self.confirmed_with(&t, &m, now) {
            return Ok(LinkView::AlreadyConfirmed);
        }
        self.check_pending_link(&t, &m, now)?;
        self.store.record_link_opened(m.id, now).await?;
        Ok(LinkView::Confirm)
    }

    /// POST of a verification link: the visitor confirms. Confirming twice is a success both times.
    pub async fn confirm(&self, token: &str) -> Result<MessageId, ActionError> {
        let now = self.clock.now();
        let (t, m) = self.token_message(token).await?;
        if self.confirmed_with(&t, &m, now) {
            return Ok(m.id);
        }
        self.check_pending_link(&t, &m, now)?;
        self.store.record_link_opened(m.id, now).await?;
        self.verify_now(&m, now, "link").await
    }

    async fn verify_now(&self, m: &Message, now: i64, how: &str) -> Result<MessageId, ActionError> {
        let to = m.status.apply(Transition::Verify)?;
        let change = Change {
            id: m.id,
            from: m.status,
            expect_nonce: Some(m.nonce.clone()),
            to,
            now,
            new_nonce: Some(new_nonce()),
            confirmed_nonce: Some(m.nonce.clone()),
            new_verification: None,
            audit: Audit {
                actor: "visitor".into(),
                action: "verify",
                detail: Some(format!("confirmed by {how}")),
            },
            mail: None,
        };
        if self.store.apply(&change).await? {
            tracing::info!(message_id = m.id.0, how, "message verified");
            return Ok(m.id);
        }
        // Lost a race: fine if the winner was this same confirmation (a double click).
        let again = self.load(m.id).await?;
        if matches!(again.status, Status::Verified | Status::Released)
            && again.confirmed_nonce.as_deref() == Some(m.nonce.as_str())
        {
            Ok(m.id)
        } else {
            Err(ActionError::Conflict(m.id))
        }
    }

    /// Checks a receipt; `allow_expired` lets an old receipt still ask for a new mail.
    async fn receipt_message(&self, receipt: &str, allow_expired: bool) -> Result<Message, ActionError> {
        let now = self.clock.now();
        let t = token::parse(receipt).map_err(|_| ActionError::InvalidLink)?;
        match t.verify(&self.keys, Purpose::Receipt, "", now, self.token_ttl) {
            Ok(_) => {}
            Err(TokenError::Expired { .. }) if allow_expired => {
                let exp = receipt
                    .split('.')
                    .nth(2)
                    .and_then(|e| e.parse::<i64>().ok())
                    .unwrap_or(0);
                if now - exp > RECEIPT_RESEND_WINDOW {
                    return Err(ActionError::InvalidLink);
                }
            }
            Err(TokenError::Expired { .. }) => {
                return Err(ActionError::Expired {
                    receipt: Some(receipt.to_string()),
                });
            }
            Err(_) => return Err(ActionError::InvalidLink),
        }
        self.store.message(t.id).await?.ok_or(ActionError::InvalidLink)
    }

    /// The visitor typed the code from the mail on the "check your inbox" page.
    pub async fn confirm_code(&self, receipt: &str, code: &str) -> Result<MessageId, ActionError> {
        let now = self.clock.now();
        let m = self.receipt_message(receipt, false).await?;
        match m.status {
            Status::Verified | Status::Released => return Ok(m.id),
            Status::Pending => {}
            _ => return Err(ActionError::InvalidLink),
        }
        if m.code_failures >= MAX_CODE_FAILURES {
            return Err(ActionError::CodeLocked);
        }
        if now > m.verify_expires_at {
            return Err(ActionError::Expired {
                receipt: Some(receipt.to_string()),
            });
        }
        if self.keys.check_code(m.id, &m.nonce, code) {
            return self.verify_now(&m, now, "code").await;
        }
        let failures = self.store.record_code_failure(m.id, &m.nonce).await?;
        tracing::info!(message_id = m.id.0, failures, "wrong verification code");
        if failures >= MAX_CODE_FAILURES {
            Err(ActionError::CodeLocked)
        } else {
            Err(ActionError::WrongCode {
                remaining: MAX_CODE_FAILURES - failures,
            })
        }
    }

    /// The visitor asks for a new verification mail (from the "check your inbox" or "expired" page).
    /// Returns a fresh receipt.
    pub async fn resend_for_visitor(&self, receipt: &str) -> Result<String, ActionError> {
        let m = self.receipt_message(receipt, true).await?;
        if matches!(m.status, Status::Verified | Status::Released) {
            return Err(ActionError::Illegal(IllegalTransition {
                from: m.status,
                transition: Transition::Resend.verb(),
            }));
        }
        if m.verify_mails >= MAX_VISITOR_MAILS {
            return Err(ActionError::TooManyMails(m.verify_mails));
        }
        self.new_verification(&m, "visitor").await?;
        Ok(self.receipt(m.id, self.clock.now()))
    }

    /// A moderator resends the verification of a pending message.
    pub async fn resend(&self, id: MessageId, actor: &str) -> Result<(), ActionError> {
        let m = self.load(id).await?;
        self.new_verification(&m, actor).await
    }

    /// New nonce (older links and codes stop working), new expiry, new mail, one transaction.
    async fn new_verification(&self, m: &Message, actor: &str) -> Result<(), ActionError> {
        let to = m.status.apply(Transition::Resend)?;
        let now = self.clock.now();
        let nonce = new_nonce();
        let expires_at = now + self.token_ttl;
        let email = VisitorEmail::from_trusted(m.email.clone());
        let mail = self
            .verify_mail(m.id, &email, &nonce, expires_at, now)
            .map_err(StoreError::Mail)?;
        let change = Change {
            id: m.id,
            from: m.status,
            expect_nonce: Some(m.nonce.clone()),
            to,
            now,
            new_nonce: Some(nonce),
            confirmed_nonce: None,
            new_verification: Some(expires_at),
            audit: Audit {
                actor: actor.to_string(),
                action: "resend",
                detail: None,
            },
            mail: Some(mail),
        };
        if !self.store.apply(&change).await? {
            return Err(ActionError::Conflict(m.id));
        }
        self.outbox_wake.notify_one();
        tracing::info!(message_id = m.id.0, actor, "verification resent");
        Ok(())
    }
}
