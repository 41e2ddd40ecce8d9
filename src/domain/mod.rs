//! Pure domain types. Everything here is built once at the edge (web form, CLI argument, database row)
//! and trusted afterwards: nothing downstream re-checks an email address or a length.

mod email;
mod mail_cap;
mod message;
mod status;

pub use email::VisitorEmail;
pub use mail_cap::{AddressLookup, GuardCounts, MailGuard, Withheld, batch_verdicts, format_window, withhold};
pub use message::{ContactForm, FieldErrors, Message, MessageBody, MessageId, NewMessage, Subject, VisitorName};
pub use status::{IllegalTransition, Status, Transition};
