use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Field, Status, VisitorEmail};

/// A message's number: what moderators type (`formgate release 42`) and what the JSON API returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub i64);

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().trim_start_matches('#').parse::<i64>() {
            Ok(n) if n > 0 => Ok(MessageId(n)),
            _ => Err(format!("{s:?} is not a message id (expected a positive number)")),
        }
    }
}

pub const MAX_NAME: usize = 200;
pub const MAX_SUBJECT: usize = 200;
pub const MAX_BODY: usize = 10_000;

/// The fields exactly as a browser or a script posted them; nothing is trusted yet.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ContactForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub message: String,
    /// The honeypot: hidden from people, filled in by bots. Never stored.
    #[serde(default)]
    pub website: Option<String>,
    /// The form page's signed issue time (the time trap). Never stored.
    #[serde(default)]
    pub form_token: Option<String>,
}

/// Per-field error messages, keyed by the form's field names; serialised as `{"email": "…"}`.
pub type FieldErrors = BTreeMap<String, String>;

/// The form every message belongs to unless configuration says otherwise (and every message
/// stored before there were several forms).
pub const DEFAULT_FORM: &str = "contact";

fn single_line(field: &str, value: &str) -> Result<(), String> {
    if value.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
        return Err(format!("The {field} must be on one line."));
    }
    Ok(())
}

fn within(field: &str, value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max {
        return Err(format!("The {field} is too long ({n} characters; at most {max})."));
    }
    Ok(())
}

/// The visitor's name: one line, 1–200 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisitorName(String);

impl VisitorName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("Please tell us your name.".into());
        }
        single_line("name", s)?;
        within("name", s, MAX_NAME)?;
        Ok(Self(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An optional subject: one line, at most 200 characters; blank means none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, String> {
        let s = raw.unwrap_or("").trim();
        if s.is_empty() {
            return Ok(None);
        }
        single_line("subject", s)?;
        within("subject", s, MAX_SUBJECT)?;
        Ok(Some(Self(s.to_string())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The message itself: 1–10 000 characters, line breaks welcome, NUL not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(raw: &str) -> Result<Self, String> {
        // Browsers send CRLF line breaks; store one convention.
        let s = raw.trim().replace("\r\n", "\n");
        if s.is_empty() {
            return Err("Please write a message.".into());
        }
        if s.contains('\0') {
            return Err("The message contains a NUL character.".into());
        }
        within("message", &s, MAX_BODY)?;
        Ok(Self(s))
    }
    /// No message: a declared form without a `message` field.
    pub fn none() -> Self {
        Self(String::new())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A submission that passed every check; only this can be stored.
#[derive(Clone, Debug)]
pub struct NewMessage {
    /// The slug of the form it was posted to.
    pub form: String,
    pub name: VisitorName,
    pub email: VisitorEmail,
    pub subject: Option<Subject>,
    pub body: MessageBody,
    /// Everything else the visitor sent, in order (the form's own fields).
    pub fields: Vec<Field>,
    /// Consent record: where the submission came from.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl NewMessage {
    /// Checks every field and reports all problems at once, so the visitor fixes them in one go.
    pub fn parse(form: &ContactForm, ip: Option<String>, user_agent: Option<String>) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = VisitorName::parse(&form.name)
            .map_err(|e| errors.insert("name".into(), e))
            .ok();
        let email = VisitorEmail::parse(&form.email)
            .map_err(|e| errors.insert("email".into(), e))
            .ok();
        let subject = Subject::parse(form.subject.as_deref())
            .map_err(|e| errors.insert("subject".into(), e))
            .ok();
        let body = MessageBody::parse(&form.message)
            .map_err(|e| errors.insert("message".into(), e))
            .ok();
        match (name, email, subject, body) {
            (Some(name), Some(email), Some(subject), Some(body)) if errors.is_empty() => {
                Ok(NewMessage {
                    form: DEFAULT_FORM.to_string(),
                    name,
                    email,
                    subject,
                    body,
                    fields: Vec::new(),
                    ip,
                    // A user agent is kept for the consent record only; cap what a client can make us store.
                    user_agent: user_agent.map(|ua| ua.chars().take(512).collect()),
                })
            }
            _ => Err(errors),
        }
    }
}

/// A stored message as the store returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub status: Status,
    /// The slug of the form it was posted to.
    pub form: String,
    pub name: String,
    pub email: String,
    pub subject: Option<String>,
    pub body: String,
    /// The form's own fields as the visitor sent them, in order (see `forms::shown_fields` for
    /// them with their labels).
    pub fields: Vec<Field>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip)]
    pub nonce: String,
    #[serde(skip)]
    pub confirmed_nonce: Option<String>,
    pub verify_expires_at: i64,
    pub verify_mails: i64,
    pub code_failures: i64,
    pub link_opened_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub released_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub status_before_delete: Option<Status>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(name: &str, email: &str, subject: Option<&str>, message: &str) -> ContactForm {
        ContactForm {
            name: name.into(),
            email: email.into(),
            subject: subject.map(Into::into),
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_form_becomes_a_new_message() {
        let m = NewMessage::parse(
            &form(" Ada ", "ada@example.org", Some(""), "Hello\r\nthere"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(m.name.as_str(), "Ada");
        assert!(m.subject.is_none());
        assert_eq!(m.body.as_str(), "Hello\nthere");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = NewMessage::parse(&form("", "nope", Some("a\nb"), ""), None, None).unwrap_err();
        assert_eq!(
            errors.keys().map(String::as_str).collect::<Vec<_>>(),
            ["email", "message", "name", "subject"]
        );
    }

    #[test]
    fn limits_count_characters_not_bytes() {
        let name = "é".repeat(MAX_NAME);
        assert!(NewMessage::parse(&form(&name, "a@example.org", None, "hi"), None, None).is_ok());
        let name = "é".repeat(MAX_NAME + 1);
        let errors = NewMessage::parse(&form(&name, "a@example.org", None, "hi"), None, None).unwrap_err();
        assert!(errors["name"].contains("too long"));
        let body = "x".repeat(MAX_BODY + 1);
        assert!(NewMessage::parse(&form("A", "a@example.org", None, &body), None, None).is_err());
    }

    #[test]
    fn header_injection_in_name_and_subject_is_rejected() {
        let errors =
            NewMessage::parse(&form("A\r\nBcc: x@y.z", "a@example.org", Some("S\0"), "hi"), None, None).unwrap_err();
        assert!(errors.contains_key("name") && errors.contains_key("subject"));
    }

    #[test]
    fn message_ids_parse_from_cli_text() {
        assert_eq!("42".parse::<MessageId>().unwrap(), MessageId(42));
        assert_eq!("#7".parse::<MessageId>().unwrap(), MessageId(7));
        assert!("0".parse::<MessageId>().is_err());
        assert!("x".parse::<MessageId>().is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Text with the characters that matter most often: line breaks, NUL, separators.
        fn hostile() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    Just('\r'),
                    Just('\n'),
                    Just('\0'),
                    Just('\u{2028}'),
                    Just('\u{85}'),
                    Just('@'),
                    Just(' '),
                    any::<char>(),
                    prop::char::range('a', 'z'),
                ],
                0..260,
            )
            .prop_map(|v| v.into_iter().collect())
        }

        proptest! {
            #[test]
            fn parse_never_panics_and_accepted_values_are_safe(
                name in hostile(),
                email in prop_oneof![hostile(), "[a-z]{1,10}@[a-z]{1,10}\\.org"],
                subject in prop::option::of(hostile()),
                message in hostile(),
            ) {
                let form = ContactForm { name, email, subject, message, ..Default::default() };
                if let Ok(m) = NewMessage::parse(&form, None, None) {
                    let one_line = [Some(m.name.as_str()), Some(m.email.as_str()), m.subject.as_ref().map(|s| s.as_str())];
                    for field in one_line.into_iter().flatten() {
                        prop_assert!(!field.contains(['\r', '\n', '\0']), "{:?}", field);
                    }
                    prop_assert!(m.name.as_str().chars().count() <= MAX_NAME);
                    prop_assert!(m.subject.as_ref().is_none_or(|s| s.as_str().chars().count() <= MAX_SUBJECT));
                    prop_assert!(m.body.as_str().chars().count() <= MAX_BODY);
                    prop_assert!(m.email.as_str().len() <= 254);
                }
            }
        }
    }
}
