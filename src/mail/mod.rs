//! Outgoing mail: composing it from `ui/email/` templates, the transports that carry it (SMTP, or
//! `.eml` files when no SMTP is configured), and the outbox worker that retries until it is out.

mod compose;
pub mod destination;
pub mod dkim;
pub mod handover;
mod outbox;
pub mod queue;
mod transport;
mod verify;

pub use compose::{ComposeError, Composer, VerifyMail};
pub use dkim::DkimSigner;
pub use outbox::{Courier, OutboxConfig, OutboxWorker, retry_delay, this_machine};
pub use transport::{SendError, Transport};
pub use verify::{SUPPRESS_LINK_TTL, VerificationMails};
