//! The use-cases. The web handlers, the CLI verbs and the dashboard all call these, so a rule
//! (who may confirm, when a link expires, how many codes may be tried) lives in exactly one place.
//!
//! Every status change is a compare-and-swap in the store: decided here from what was read, and
//! applied only if nobody changed the message in between.

use crate::metrics::{FunnelStep, SubmissionOutcome, metrics};
use std::sync::Arc;

use base64::Engine;

use crate::clock::SharedClock;
use crate::domain::{IllegalTransition, Message, MessageId, NewMessage, Status, Transition, VisitorEmail};
use crate::forms::Catalog;
use crate::forms::accept::BotFields;
use crate::mail::{Composer, SUPPRESS_LINK_TTL, VerificationMails};
use serde::Serialize;

use crate::clock::human_time;
use crate::domain::{MailGuard, Withheld};
use crate::intake::{IntakeQueue, MakeMail, NewSubmission};
use crate::mail::destination::{Delivery, Destination};
use crate::mail::handover::{Handover, WorkerBell};
use crate::mail::queue::{MailKind, OutgoingMail};
use crate::store::{Audit, AuditRecord, Change, Purged, SharedStore, StoreError, SuppressedAddress};
use crate::token::{self, Keys, Purpose, TokenError};
use crate::webhook::{self, Event, body::Happened};

/// Wrong codes allowed before the message needs a new verification mail.
pub const MAX_CODE_FAILURES: i64 = 5;
/// Verification mails a visitor can have sent for one message (the first one included).
pub const MAX_VISITOR_MAILS: i64 = 5;
/// A form posted sooner than this after its page was served was not filled in by a person.
pub const FORM_MIN_SECS: i64 = 3;
/// A form page older than this is stale: its post is suspect.
pub const FORM_MAX_AGE: i64 = 12 * 3600;
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
    /// Someone else did it first (two moderators, one message).
    #[error("message {id} was already {what} by {by} at {at}")]
    AlreadyDone {
        id: MessageId,
        what: &'static str,
        by: String,
        at: String,
    },
    #[error("message {id} has no destination {number} (it has {count}; `formgate show {id}` numbers them)")]
    NoSuchDestination { id: MessageId, number: usize, count: usize },
    /// Only a delivery that has ended can be sent again; one still under way goes by itself.
    #[error("destination {number} of message {id} is {}: it is still under way and goes out by itself", delivery.as_str())]
    StillUnderWay {
        id: MessageId,
        number: usize,
        delivery: Delivery,
    },
    #[error("message {0} has no dead delivery to send again (name one with --to N to repeat a sent one)")]
    NothingDead(MessageId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a visitor's browser gets back after posting.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub id: MessageId,
    pub receipt: String,
}

/// What opening a verification link (GET) shows, and for which form (its pages' title).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkView {
    /// Show the "Confirm my message" button.
    Confirm { form: String },
    /// Already confirmed with this link: show the thank-you page again.
    AlreadyConfirmed { form: String },
}

/// The policy knobs the use-cases need from configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub token_ttl: std::time::Duration,
    /// With no SMTP configured, log verification links so a site owner can try formgate at once.
    pub log_links: bool,
    /// Trash, spam and never-verified messages older than this are purged by `serve`; None: never.
    pub purge_after: Option<std::time::Duration>,
    /// Caps on automatic verification mail (a moderator's resend is exempt; suppression is not).
    pub mail_guard: MailGuard,
    /// How long a webhook delivery is retried (seconds).
    pub webhook_lifetime: i64,
}

/// What a release did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Released {
    pub id: MessageId,
    /// False when no `staff_inbox` is configured: released (for export) but not mailed.
    pub mailed: bool,
    /// Who the staff mail was queued for (the form's `staff_inbox`), as one line.
    pub to: String,
}

/// A visitor confirmed a message: which, and on which form (for its thank-you page).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmed {
    pub id: MessageId,
    pub form: String,
}

/// What a moderator's resend or "not spam" did: the change is recorded either way, but the
/// verification mail may have been withheld (suppressed address, a mail cap).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reverified {
    /// Why no mail was queued, if none was (its `Display` is the audit line's reason).
    pub withheld: Option<Withheld>,
}

impl Reverified {
    pub fn queued(&self) -> bool {
        self.withheld.is_none()
    }

    /// Why no mail went out, in a few words for "…, but no mail: {why}"; None when one was queued.
    pub fn why_no_mail(&self) -> Option<String> {
        match self.withheld? {
            Withheld::Suppressed => Some("the address is suppressed".into()),
            other => Some(other.reason()),
        }
    }
}

/// The moderator's verbs, one per use-case below. The dashboard and the CLI both run them
/// through [`UseCases::perform`], so each says in its own words what the same outcome was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Release,
    Resend,
    Delete,
    Restore,
    /// A message a bot filter caught is not spam: back to pending, verification mailed.
    NotSpam,
}

impl Verb {
    /// Whether the state machine allows this verb on a message in `status` (the use-case checks
    /// again: this only keeps a front end from offering what cannot work).
    pub fn allowed_from(self, status: Status) -> bool {
        let t = match self {
            Verb::Release => Transition::Release,
            Verb::Resend => Transition::Resend,
            Verb::Delete => Transition::Delete,
            // Where it goes back to does not matter for whether it can.
            Verb::Restore => Transition::Restore {
                before_delete: Status::Pending,
            },
            Verb::NotSpam => Transition::NotSpam,
        };
        status.apply(t).is_ok()
    }
}

/// How one verb on one message ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Released {
        mailed: bool,
        /// The staff inbox(es) it was queued for.
        to: String,
    },
    /// `no_mail`: why the mail was withheld (suppressed address, a cap), if it was.
    Resent {
        no_mail: Option<String>,
    },
    Deleted,
    Restored(Status),
    NotSpam {
        no_mail: Option<String>,
    },
}

/// A message with everything a moderator may want to see about it.
#[derive(Clone, Debug, Serialize)]
pub struct Details {
    pub message: Message,
    pub audit: Vec<AuditRecord>,
    /// Every delivery of the message (`show --json` calls them `outbox`), numbered 1, 2, ….
    pub outbox: Vec<Destination>,
}

pub struct UseCases {
    store: SharedStore,
    keys: Keys,
    composer: Arc<Composer>,
    verify_mails: Arc<VerificationMails>,
    clock: SharedClock,
    token_ttl: i64,
    /// Rung for each mail queued in the outbox that the worker does not get in memory.
    outbox_wake: WorkerBell,
    /// Rung when webhook deliveries are queued (the webhook worker has a bell of its own).
    webhook_wake: WorkerBell,
    settings: Settings,
    /// Every form and its settings (staff inbox, auto-release, …).
    forms: Arc<Catalog>,
    /// Started on the first submission (it needs the runtime the web server runs on).
    intake: std::sync::OnceLock<IntakeQueue>,
    /// This process's outbox worker, when it runs one (`serve`): new mails go to it in memory.
    handover: std::sync::OnceLock<Handover>,
}

fn new_nonce() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::token::random_bytes::<16>())
}

impl UseCases {
    pub fn new(
        store: SharedStore,
        keys: Keys,
        composer: Composer,
        clock: SharedClock,
        outbox_wake: WorkerBell,
        settings: Settings,
        forms: Arc<Catalog>,
    ) -> Self {
        let token_ttl = crate::clock::seconds(settings.token_ttl);
        let composer = Arc::new(composer);
        let verify_mails = Arc::new(VerificationMails::new(
            keys.clone(),
            composer.clone(),
            settings.log_links,
        ));
        Self {
            store,
            keys,
            composer,
            verify_mails,
            clock,
            token_ttl,
            outbox_wake,
            webhook_wake: WorkerBell::default(),
            settings,
            forms,
            intake: std::sync::OnceLock::new(),
            handover: std::sync::OnceLock::new(),
        }
    }

    /// What wakes this process's webhook worker.
    pub fn webhook_bell(&self) -> WorkerBell {
        self.webhook_wake.clone()
    }

    /// Wakes whichever workers `mails` are for.
    fn ring_for(&self, mails: &[OutgoingMail]) {
        if mails.iter().any(|m| m.kind != MailKind::Webhook) {
            self.outbox_wake.ring();
        }
        if mails.iter().any(|m| m.kind == MailKind::Webhook) {
            self.webhook_wake.ring();
        }
    }

    /// New submissions' mails go to this worker, leased to it when queued (see [`Handover`]).
    /// Set before the first submission; later calls are ignored.
    pub fn hand_mails_to(&self, handover: Handover) {
        let _ = self.handover.set(handover);
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The site's forms.
    pub fn forms(&self) -> &Arc<Catalog> {
        &self.forms
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// What the outbox worker renders verification mails with.
    pub fn verification_mails(&self) -> Arc<VerificationMails> {
        self.verify_mails.clone()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    fn receipt(&self, id: MessageId, now: i64) -> String {
        self.keys.sign(Purpose::Receipt, id, now + self.token_ttl, "")
    }

    /// A visitor posted a valid form: store it as pending with its verification mail queued, in one
    /// transaction. Returns only after the commit, so success means durable.
    pub async fn submit(&self, msg: NewMessage) -> Result<Submitted, ActionError> {
        self.submit_as(msg, None).await
    }

    /// Like [`UseCases::submit`]; `spam` says why a bot filter caught the post: it is stored as spam
    /// and never mailed. A post over a mail cap, or naming a suppressed address, is stored pending
    /// with no mail (the audit line says why). The visitor's answer is the same in every case.
    #[tracing::instrument(level = "debug", name = "submit", skip_all, fields(spam = spam.is_some(), message_id))]
    pub async fn submit_as(&self, msg: NewMessage, spam: Option<&str>) -> Result<Submitted, ActionError> {
        let now = self.clock.now();
        let nonce = new_nonce();
        let expires_at = now + self.token_ttl;
        let form = msg.form.clone();
        let mail: MakeMail = {
            let (mailer, to, nonce) = (self.verify_mails.clone(), msg.email.clone(), nonce.clone());
            Box::new(move |id| {
                mailer
                    .queue(id, &to, &nonce, expires_at, now)
                    .map_err(|e| e.to_string())
            })
        };
        let intake = self.intake.get_or_init(|| {
            IntakeQueue::start(
                self.store.clone(),
                self.settings.mail_guard,
                self.outbox_wake.clone(),
                self.handover.get().cloned(),
            )
        });
        let inserted = intake
            .store(NewSubmission {
                msg,
                now,
                nonce,
                verify_expires_at: expires_at,
                spam: spam.map(str::to_owned),
                mail,
            })
            .await?;
        let id = inserted.id;
        tracing::Span::current().record("message_id", id.0);
        let m = metrics();
        match (spam, &inserted.withheld) {
            (Some(why), _) => m.submission(&form, SubmissionOutcome::spam, why),
            (None, Some(why)) => m.submission(&form, SubmissionOutcome::held, why.label()),
            (None, None) => m.submission(&form, SubmissionOutcome::accepted, ""),
        }
        if spam.is_none() {
            m.funnel(&form, FunnelStep::submitted);
        }
        match (spam, &inserted.withheld) {
            (Some(why), _) => tracing::info!(message_id = id.0, why, "message caught as spam; not mailed"),
            (None, Some(why)) => {
                tracing::info!(message_id = id.0, %why, "message received; verification withheld")
            }
            // A mail handed over wakes its worker by arriving; the intake rings for the others.
            (None, None) => tracing::info!(message_id = id.0, "message received; verification queued"),
        }
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
    #[tracing::instrument(level = "debug", skip_all, fields(message_id))]
    pub async fn open_link(&self, token: &str) -> Result<LinkView, ActionError> {
        let now = self.clock.now();
        let (t, m) = self.token_message(token).await?;
        tracing::Span::current().record("message_id", m.id.0);
        if self.confirmed_with(&t, &m, now) {
            return Ok(LinkView::AlreadyConfirmed { form: m.form });
        }
        self.check_pending_link(&t, &m, now)?;
        self.store.record_link_opened(m.id, now).await?;
        metrics().funnel(&m.form, FunnelStep::link_opened);
        Ok(LinkView::Confirm { form: m.form })
    }

    /// POST of a verification link: the visitor confirms. Confirming twice is a success both times.
    #[tracing::instrument(level = "debug", skip_all, fields(message_id))]
    pub async fn confirm(&self, token: &str) -> Result<Confirmed, ActionError> {
        let now = self.clock.now();
        let (t, m) = self.token_message(token).await?;
        tracing::Span::current().record("message_id", m.id.0);
        if self.confirmed_with(&t, &m, now) {
            return Ok(Confirmed { id: m.id, form: m.form });
        }
        self.check_pending_link(&t, &m, now)?;
        self.store.record_link_opened(m.id, now).await?;
        self.verify_now(&m, now, "link").await
    }

    async fn verify_now(&self, m: &Message, now: i64, how: &str) -> Result<Confirmed, ActionError> {
        let confirmed = Confirmed {
            id: m.id,
            form: m.form.clone(),
        };
        let to = m.status.apply(Transition::Verify)?;
        let form = self.forms.entry_of(&m.form);
        let happened = Happened {
            event: Event::Verified,
            at: now,
            by: None,
        };
        // The visitor's copy: now safe to send, the address has just proved to be theirs. Verify
        // succeeds once per message (only from pending, compare-and-swap on the nonce), so
        // neither a second confirmation nor a resend can queue another.
        let copy = if form.confirmation_mail {
            Some(
                self.composer
                    .confirmation(m, form, now)
                    .map_err(|e| StoreError::Mail(e.to_string()))?,
            )
        } else {
            None
        };
        let webhooks = webhook::body::deliveries(form, m, &happened, now + self.settings.webhook_lifetime);
        let mails: Vec<OutgoingMail> = copy.into_iter().chain(webhooks).collect();
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
            mails,
        };
        let applied = self.store.apply_guarded(&change, None).await?;
        if applied.done {
            self.ring_for(&change.mails);
            if applied.copy_withheld {
                tracing::info!(
                    message_id = m.id.0,
                    "visitor's copy withheld: the address is suppressed"
                );
            }
            tracing::info!(message_id = m.id.0, how, "message verified");
            metrics().funnel(&m.form, FunnelStep::verified);
            if form.auto_release
                && let Err(e) = self.release(m.id, "auto-release").await
            {
                // The visitor's part is done either way; a moderator can still release by hand.
                tracing::error!(message_id = m.id.0, error = %e, "auto-release failed");
            }
            return Ok(confirmed);
        }
        // Lost a race: fine if the winner was this same confirmation (a double click).
        let again = self.load(m.id).await?;
        if matches!(again.status, Status::Verified | Status::Released)
            && again.confirmed_nonce.as_deref() == Some(m.nonce.as_str())
        {
            Ok(confirmed)
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
    #[tracing::instrument(level = "debug", skip_all, fields(message_id))]
    pub async fn confirm_code(&self, receipt: &str, code: &str) -> Result<Confirmed, ActionError> {
        let now = self.clock.now();
        let m = self.receipt_message(receipt, false).await?;
        tracing::Span::current().record("message_id", m.id.0);
        match m.status {
            Status::Verified | Status::Released => return Ok(Confirmed { id: m.id, form: m.form }),
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
    #[tracing::instrument(level = "debug", skip_all, fields(message_id))]
    pub async fn resend_for_visitor(&self, receipt: &str) -> Result<String, ActionError> {
        let m = self.receipt_message(receipt, true).await?;
        tracing::Span::current().record("message_id", m.id.0);
        if matches!(m.status, Status::Verified | Status::Released) {
            return Err(ActionError::Illegal(IllegalTransition {
                from: m.status,
                transition: Transition::Resend.verb(),
            }));
        }
        if m.verify_mails >= MAX_VISITOR_MAILS {
            return Err(ActionError::TooManyMails(m.verify_mails));
        }
        let guard = self.settings.mail_guard;
        self.new_verification(&m, "visitor", Transition::Resend, Some(&guard), None)
            .await?;
        Ok(self.receipt(m.id, self.clock.now()))
    }

    /// A moderator resends the verification of a pending message.
    /// Exempt from the per-address and hourly caps (a person decided), never from suppression:
    /// the result says whether a mail was queued.
    #[tracing::instrument(skip_all, fields(message_id = id.0, actor = %actor))]
    pub async fn resend(&self, id: MessageId, actor: &str) -> Result<Reverified, ActionError> {
        let m = self.load(id).await?;
        let detail = Some("by a moderator: exempt from the mail caps".to_string());
        self.new_verification(&m, actor, Transition::Resend, Some(&MailGuard::default()), detail)
            .await
    }

    /// "Not spam": a moderator moves a message a bot filter caught back to pending, and its
    /// verification mail goes out (within the caps, and never to a suppressed address).
    #[tracing::instrument(skip_all, fields(message_id = id.0, actor = %actor))]
    pub async fn not_spam(&self, id: MessageId, actor: &str) -> Result<Reverified, ActionError> {
        let m = self.load(id).await?;
        let guard = self.settings.mail_guard;
        self.new_verification(&m, actor, Transition::NotSpam, Some(&guard), None)
            .await
    }

    /// New nonce (older links and codes stop working), new expiry, new mail, one transaction.
    /// If `guard` withholds the mail, only the audit line is written (older links keep working).
    async fn new_verification(
        &self,
        m: &Message,
        actor: &str,
        transition: Transition,
        guard: Option<&MailGuard>,
        detail: Option<String>,
    ) -> Result<Reverified, ActionError> {
        let to = m.status.apply(transition)?;
        let now = self.clock.now();
        let nonce = new_nonce();
        let expires_at = now + self.token_ttl;
        let email = VisitorEmail::from_trusted(m.email.clone());
        let mail = self
            .verify_mails
            .queue(m.id, &email, &nonce, expires_at, now)
            .map_err(|e| StoreError::Mail(e.to_string()))?;
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
                action: if transition == Transition::NotSpam {
                    "not-spam"
                } else {
                    "resend"
                },
                detail,
            },
            mails: vec![mail],
        };
        let applied = self.store.apply_guarded(&change, guard).await?;
        if !applied.done {
            return Err(ActionError::Conflict(m.id));
        }
        match &applied.withheld {
            Some(why) => tracing::info!(message_id = m.id.0, actor, %why, "verification withheld"),
            None => {
                self.outbox_wake.ring();
                tracing::info!(message_id = m.id.0, actor, "verification sent again");
            }
        }
        Ok(Reverified {
            withheld: applied.withheld,
        })
    }

    /// GET of an "I didn't send this" link: checks it and changes nothing (mail scanners fetch
    /// links). Any failure, expiry included, is an invalid link.
    pub async fn open_suppress_link(&self, token: &str) -> Result<String, ActionError> {
        let t = token::parse(token).map_err(|_| ActionError::InvalidLink)?;
        let m = self.store.message(t.id).await?.ok_or(ActionError::InvalidLink)?;
        let address = m.email.to_lowercase();
        t.verify(
            &self.keys,
            Purpose::Suppress,
            &address,
            self.clock.now(),
            SUPPRESS_LINK_TTL,
        )
        .map_err(|_| ActionError::InvalidLink)?;
        Ok(address)
    }

    /// POST of an "I didn't send this" link: no mail to the address, ever, until a moderator
    /// lifts it. Pressing it twice is fine.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn suppress_by_link(&self, token: &str) -> Result<(), ActionError> {
        let address = self.open_suppress_link(token).await?;
        let new = self
            .store
            .suppress(&address, self.clock.now(), "the recipient said \"I didn't send this\"")
            .await?;
        tracing::info!(new, "an address asked for no more mail");
        Ok(())
    }

    /// Every suppressed address (`formgate suppressed`).
    pub async fn suppressed(&self) -> Result<Vec<SuppressedAddress>, ActionError> {
        Ok(self.store.suppressed().await?)
    }

    /// A moderator lifts a suppression. False if the address was not suppressed.
    #[tracing::instrument(skip_all, fields(actor = %actor))]
    pub async fn unsuppress(&self, address: &str, actor: &str) -> Result<bool, ActionError> {
        let lifted = self.store.unsuppress(address.trim()).await?;
        tracing::info!(actor, lifted, "suppression lifted");
        Ok(lifted)
    }

    /// The contact form page's time field: an HMAC over the time the page was served.
    pub fn form_token(&self) -> String {
        let now = self.clock.now();
        // The id is not a message: the form token names no message, only a time.
        self.keys.sign(Purpose::Form, MessageId(1), now + FORM_MAX_AGE, "")
    }

    /// The bot filters: why this post looks automated, if it does. A filled honeypot, or a time
    /// field that is forged, older than [`FORM_MAX_AGE`] or younger than [`FORM_MIN_SECS`], is
    /// always suspect; a missing time field only with `require_form_token` (the JSON API and
    /// sites' own forms do not have one).
    pub fn bot_verdict(&self, bot: &BotFields, require_form_token: bool) -> Option<&'static str> {
        if bot.honeypot.as_deref().is_some_and(|w| !w.trim().is_empty()) {
            return Some("honeypot field filled");
        }
        let token = match bot.form_token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => t,
            _ if require_form_token => return Some("no form token"),
            _ => return None,
        };
        let now = self.clock.now();
        let checked = token::parse(token).and_then(|t| {
            if t.id != MessageId(1) {
                return Err(TokenError::BadSignature);
            }
            t.verify(&self.keys, Purpose::Form, "", now, FORM_MAX_AGE)
        });
        match checked {
            Ok(expires_at) if now - (expires_at - FORM_MAX_AGE) < FORM_MIN_SECS => Some("form posted too fast"),
            Ok(_) => None,
            Err(TokenError::Expired { .. }) => Some("form page too old"),
            Err(_) => Some("bad form token"),
        }
    }

    /// Everything about one message: the message, its audit trail and its mail history.
    #[tracing::instrument(skip_all, fields(message_id = id.0))]
    pub async fn details(&self, id: MessageId) -> Result<Details, ActionError> {
        let message = self.load(id).await?;
        let audit = self.store.audit_trail(id).await?;
        let outbox = Destination::list(self.store.outbox_for_message(id).await?);
        Ok(Details { message, audit, outbox })
    }

    /// A moderator sends a message's delivery again: destination `number` as `details` numbers
    /// them (sent or dead), or with None every dead one. The same outbox row is queued again, due
    /// now, with its attempts reset and a new lifetime (`webhook_lifetime`, or `mail_lifetime`
    /// for a mail), keeping its Message-ID or `webhook-id` and its payload, so a receiver can
    /// tell a repeat. Each gets an audit line, and its worker is woken. Returns what was queued.
    #[tracing::instrument(skip_all, fields(message_id = id.0, actor = %actor))]
    pub async fn redeliver(
        &self,
        id: MessageId,
        number: Option<usize>,
        actor: &str,
    ) -> Result<Vec<Destination>, ActionError> {
        self.load(id).await?;
        let all = Destination::list(self.store.outbox_for_message(id).await?);
        let chosen: Vec<Destination> = match number {
            Some(n) => {
                let d = all
                    .iter()
                    .find(|d| d.number == n)
                    .ok_or(ActionError::NoSuchDestination {
                        id,
                        number: n,
                        count: all.len(),
                    })?;
                if !d.delivery.ended() {
                    return Err(ActionError::StillUnderWay {
                        id,
                        number: n,
                        delivery: d.delivery,
                    });
                }
                vec![d.clone()]
            }
            None => all.into_iter().filter(|d| d.delivery == Delivery::Dead).collect(),
        };
        if chosen.is_empty() {
            return Err(ActionError::NothingDead(id));
        }
        let now = self.clock.now();
        for d in &chosen {
            let lifetime = match d.row.kind {
                MailKind::Webhook => self.settings.webhook_lifetime,
                _ => self.composer.mail_lifetime(),
            };
            let mut detail = format!(
                "destination {} ({} to {}) queued again, was {} after {} attempt(s)",
                d.number,
                d.destination,
                d.row.recipient,
                d.delivery.as_str(),
                d.row.attempts
            );
            if let Some(e) = &d.row.last_error {
                detail.push_str(&format!("; last error: {e}"));
            }
            let audit = Audit {
                actor: actor.to_string(),
                action: "redeliver",
                detail: Some(detail),
            };
            if !self.store.redeliver(id, d.row.id, now, now + lifetime, &audit).await? {
                // A worker or another moderator moved it meanwhile.
                return Err(ActionError::Conflict(id));
            }
            // At once, each: one that loses its race below must not keep this one waiting.
            match d.row.kind {
                MailKind::Webhook => self.webhook_wake.ring(),
                _ => self.outbox_wake.ring(),
            }
            tracing::info!(
                message_id = id.0,
                actor,
                outbox = d.row.id,
                kind = d.row.kind.as_str(),
                "delivery queued again"
            );
        }
        Ok(chosen)
    }

    /// After a lost compare-and-swap: say who won, if the message now is where we wanted it.
    async fn explain_conflict(&self, id: MessageId, wanted: Status, what: &'static str) -> ActionError {
        let now = match self.store.message(id).await {
            Ok(Some(m)) => m,
            Ok(None) => return ActionError::NotFound(id),
            Err(e) => return e.into(),
        };
        if now.status != wanted {
            return ActionError::Conflict(id);
        }
        let trail = self.store.audit_trail(id).await.unwrap_or_default();
        match trail.iter().rev().find(|a| a.to_status == Some(wanted)) {
            Some(a) => ActionError::AlreadyDone {
                id,
                what,
                by: a.actor.clone(),
                at: human_time(a.at),
            },
            None => ActionError::Conflict(id),
        }
    }

    /// Delivers a verified message to the team: queues the staff mail (through the same outbox)
    /// and marks it released, in one transaction. Two moderators releasing at once: exactly one
    /// mail, and the other is told who was first.
    #[tracing::instrument(skip_all, fields(message_id = id.0, actor = %actor))]
    /// Runs one moderator's verb on one message: what the dashboard's keys and the CLI's verbs do.
    pub async fn perform(&self, verb: Verb, id: MessageId, actor: &str) -> Result<Outcome, ActionError> {
        Ok(match verb {
            Verb::Release => {
                let r = self.release(id, actor).await?;
                Outcome::Released {
                    mailed: r.mailed,
                    to: r.to,
                }
            }
            Verb::Resend => Outcome::Resent {
                no_mail: self.resend(id, actor).await?.why_no_mail(),
            },
            Verb::Delete => {
                self.delete(id, actor).await?;
                Outcome::Deleted
            }
            Verb::Restore => Outcome::Restored(self.restore(id, actor).await?),
            Verb::NotSpam => Outcome::NotSpam {
                no_mail: self.not_spam(id, actor).await?.why_no_mail(),
            },
        })
    }

    pub async fn release(&self, id: MessageId, actor: &str) -> Result<Released, ActionError> {
        let m = self.load(id).await?;
        let to = match m.status.apply(Transition::Release) {
            Ok(to) => to,
            // Say who released it and when; fall back to the plain rule if the trail cannot tell.
            Err(e) if m.status == Status::Released => {
                return Err(match self.explain_conflict(id, Status::Released, "released").await {
                    done @ ActionError::AlreadyDone { .. } => done,
                    _ => e.into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let now = self.clock.now();
        let form = self.forms.entry_of(&m.form);
        let recipients = form.inboxes();
        let mail = if form.staff_inbox.is_empty() {
            None
        } else {
            Some(
                self.composer
                    .release(&m, form, now)
                    .map_err(|e| StoreError::Mail(e.to_string()))?,
            )
        };
        let mailed = mail.is_some();
        let happened = Happened {
            event: Event::Released,
            at: now,
            by: Some(actor),
        };
        let webhooks = webhook::body::deliveries(form, &m, &happened, now + self.settings.webhook_lifetime);
        let detail = match (mailed, webhooks.len()) {
            (true, _) => None,
            (false, 0) => Some("no staff_inbox configured: not mailed".to_string()),
            (false, _) => Some("no staff_inbox configured: webhooks only".to_string()),
        };
        let mails: Vec<OutgoingMail> = mail.into_iter().chain(webhooks).collect();
        let change = Change {
            id,
            from: m.status,
            expect_nonce: None,
            to,
            now,
            new_nonce: None,
            confirmed_nonce: None,
            new_verification: None,
            audit: Audit {
                actor: actor.to_string(),
                action: "release",
                detail,
            },
            mails,
        };
        if !self.store.apply(&change).await? {
            return Err(self.explain_conflict(id, Status::Released, "released").await);
        }
        self.ring_for(&change.mails);
        tracing::info!(message_id = id.0, actor, mailed, "message released");
        metrics().funnel(&m.form, FunnelStep::released);
        Ok(Released {
            id,
            mailed,
            to: recipients,
        })
    }

    /// Moves a message to the trash (restorable).
    #[tracing::instrument(skip_all, fields(message_id = id.0, actor = %actor))]
    pub async fn delete(&self, id: MessageId, actor: &str) -> Result<(), ActionError> {
        let m = self.load(id).await?;
        if m.status == Status::Deleted {
            return Err(self.explain_conflict(id, Status::Deleted, "deleted").await);
        }
        let to = m.status.apply(Transition::Delete)?;
        let change = self.simple_change(&m, to, actor, "delete");
        if !self.store.apply(&change).await? {
            return Err(self.explain_conflict(id, Status::Deleted, "deleted").await);
        }
        tracing::info!(message_id = id.0, actor, "message deleted");
        Ok(())
    }

    /// Takes a message out of the trash, back to where it was. Returns that status.
    #[tracing::instrument(skip_all, fields(message_id = id.0, actor = %actor))]
    pub async fn restore(&self, id: MessageId, actor: &str) -> Result<Status, ActionError> {
        let m = self.load(id).await?;
        let before_delete = m.status_before_delete.unwrap_or(Status::Pending);
        let to = m.status.apply(Transition::Restore { before_delete })?;
        let change = self.simple_change(&m, to, actor, "restore");
        if !self.store.apply(&change).await? {
            return Err(ActionError::Conflict(id));
        }
        tracing::info!(message_id = id.0, actor, to = %to, "message restored");
        Ok(to)
    }

    fn simple_change(&self, m: &Message, to: Status, actor: &str, action: &'static str) -> Change {
        Change {
            id: m.id,
            from: m.status,
            expect_nonce: None,
            to,
            now: self.clock.now(),
            new_nonce: None,
            confirmed_nonce: None,
            new_verification: None,
            audit: Audit {
                actor: actor.to_string(),
                action,
                detail: None,
            },
            mails: Vec::new(),
        }
    }

    /// Empties the trash for good (`formgate purge`).
    #[tracing::instrument(skip_all, fields(actor = %actor))]
    pub async fn purge_trash(&self, actor: &str) -> Result<Purged, ActionError> {
        let purged = self.store.purge(i64::MAX, i64::MIN).await?;
        tracing::info!(actor, trashed = purged.trashed, "trash purged");
        Ok(purged)
    }

    /// The retention rule `serve` applies hourly: trash and never-verified messages older than
    /// `purge_after` go for good.
    #[tracing::instrument(skip_all)]
    pub async fn purge_expired(&self) -> Result<Purged, ActionError> {
        let Some(after) = self.settings.purge_after else {
            return Ok(Purged::default());
        };
        let cutoff = self.clock.now() - crate::clock::seconds(after);
        let purged = self.store.purge(cutoff, cutoff).await?;
        if purged.trashed + purged.unverified > 0 {
            tracing::info!(
                trashed = purged.trashed,
                unverified = purged.unverified,
                "retention: purged old messages"
            );
        }
        Ok(purged)
    }
}
