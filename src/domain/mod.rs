//! Pure domain types. Everything here is built once at the edge (web form, CLI argument, database row)
//! and trusted afterwards: nothing downstream re-checks an email address or a length.

mod email;
mod fields;
mod mail_cap;
pub mod message;
mod status;

pub use email::VisitorEmail;
pub use fields::{Field, FieldValue, fields_from_json, fields_to_json};
pub use mail_cap::{AddressLookup, GuardCounts, MailGuard, Withheld, batch_verdicts, format_window, withhold};
pub use message::{
    ContactForm, DEFAULT_FORM, FieldErrors, Message, MessageBody, MessageId, NewMessage, Subject, VisitorName,
};
pub use status::{IllegalTransition, Status, Transition};
