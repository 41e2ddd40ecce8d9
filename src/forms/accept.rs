//! A post to a form becomes a [`NewMessage`] or a list of errors, one per field, all at once (the
//! visitor fixes everything in one go). Nothing a visitor sent is dropped: each field is stored,
//! or refused with a message that names it.

use std::collections::BTreeMap;

use super::posted::{Posted, PostedValue};
use super::{Core, FieldKind, FieldSpec, Form};
use crate::domain::{
    ContactForm, Field, FieldErrors, FieldValue, MessageBody, NewMessage, Subject, VisitorEmail, VisitorName,
};

/// At most this many fields beyond name, email, subject and message on an open form.
pub const MAX_EXTRA_FIELDS: usize = 30;
/// The most characters one value may have (unless a declared field says otherwise).
pub const MAX_EXTRA_VALUE: usize = 2_000;
/// A field's name: 1–64 of `[A-Za-z0-9_.-]`.
pub const MAX_FIELD_NAME: usize = 64;

/// The honeypot formgate's own pages carry, and Formspree's.
pub const HONEYPOTS: [&str; 2] = ["website", "_gotcha"];
/// The time trap's signed field on formgate's own pages.
pub const FORM_TOKEN: &str = "form_token";
/// Formspree's redirect field: ignored, because the thank-you page is configuration (an address
/// taken from the request would be an open redirect).
pub const IGNORED: [&str; 1] = ["_next"];

/// Names a declared form may not use for its own fields.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with('_') || name == FORM_TOKEN || HONEYPOTS.contains(&name)
}

/// Whether `name` is fit to be a field's name.
pub fn is_field_name(name: &str) -> bool {
    (1..=MAX_FIELD_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The bot filters' fields: never stored.
#[derive(Clone, Debug, Default)]
pub struct BotFields {
    pub honeypot: Option<String>,
    pub form_token: Option<String>,
}

#[derive(Debug)]
pub struct Accepted {
    pub msg: NewMessage,
    pub bot: BotFields,
}

/// Why a post was refused, with what it held, so the form can be shown again as it was typed.
#[derive(Debug)]
pub struct Rejected {
    pub errors: FieldErrors,
    /// Every posted value as text, by name (for the page's inputs).
    pub values: BTreeMap<String, Vec<String>>,
    pub bot: BotFields,
}

/// Checks `posted` against `form`.
pub fn accept(
    form: &Form,
    posted: &Posted,
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<Accepted, Rejected> {
    let bot = BotFields {
        honeypot: HONEYPOTS.iter().find_map(|h| posted.get(h)).map(|v| v.texts().concat()),
        form_token: posted.one(FORM_TOKEN).ok().flatten().map(str::to_owned),
    };
    let parts = match &form.fields {
        None => open(posted),
        Some(fields) => declared(fields, posted),
    };
    match parts.build(ip, user_agent) {
        Ok(mut msg) => {
            msg.form = form.slug.clone();
            Ok(Accepted { msg, bot })
        }
        Err(errors) => Err(rejected(errors, posted, bot)),
    }
}

fn rejected(errors: FieldErrors, posted: &Posted, bot: BotFields) -> Rejected {
    let values = posted
        .fields
        .iter()
        .map(|(n, v)| (n.clone(), v.texts().into_iter().map(str::to_owned).collect()))
        .collect();
    Rejected { errors, values, bot }
}

/// What the checks found, before the message's own columns are parsed.
#[derive(Default)]
struct Parts {
    contact: ContactForm,
    /// Which field's error a core column's problem is reported under.
    email_field: String,
    /// A declared form without a `name` field: the address stands in.
    name_from_address: bool,
    /// A declared form without a `message` field (or an optional one left empty).
    body_optional: bool,
    fields: Vec<Field>,
    errors: FieldErrors,
}

impl Parts {
    fn build(mut self, ip: Option<String>, user_agent: Option<String>) -> Result<NewMessage, FieldErrors> {
        // A declared field's own limits were checked with it (`check`); these are the columns'.
        let mut errors = std::mem::take(&mut self.errors);
        let mut report = |key: &str, e: String| {
            errors.entry(key.to_string()).or_insert(e);
        };
        let email = VisitorEmail::parse(&self.contact.email)
            .map_err(|e| report(&self.email_field, e))
            .ok();
        let name = if self.name_from_address && self.contact.name.trim().is_empty() {
            email.as_ref().and_then(|e| VisitorName::parse(e.as_str()).ok())
        } else {
            VisitorName::parse(&self.contact.name)
                .map_err(|e| report("name", e))
                .ok()
        };
        let subject = Subject::parse(self.contact.subject.as_deref())
            .map_err(|e| report("subject", e))
            .ok();
        let body = if self.body_optional && self.contact.message.trim().is_empty() {
            Some(MessageBody::none())
        } else {
            MessageBody::parse(&self.contact.message)
                .map_err(|e| report("message", e))
                .ok()
        };
        match (name, email, subject, body) {
            (Some(name), Some(email), Some(subject), Some(body)) if errors.is_empty() => Ok(NewMessage {
                form: String::new(),
                name,
                email,
                subject,
                body,
                fields: self.fields,
                ip,
                user_agent: user_agent.map(|ua| ua.chars().take(512).collect()),
            }),
            _ => Err(errors),
        }
    }
}

fn within(value: &str, max: usize) -> Result<(), String> {
    let n = value.chars().count();
    if n > max {
        return Err(format!("This is too long ({n} characters; at most {max})."));
    }
    Ok(())
}

/// An open form: the four fields as always, Formspree's names understood, every other field kept.
fn open(posted: &Posted) -> Parts {
    let mut parts = Parts {
        email_field: "email".into(),
        ..Parts::default()
    };
    let mut errors = FieldErrors::new();
    let mut extras = 0;
    for (name, value) in &posted.fields {
        let name = name.as_str();
        let single = || match value {
            PostedValue::One(s) => Ok(s.clone()),
            PostedValue::Flag(b) => Ok(if *b { "on".into() } else { String::new() }),
            PostedValue::Many(_) => Err("This field was sent more than once.".to_string()),
        };
        let mut set = |key: &str, slot: &mut String| match single() {
            Ok(s) => *slot = s,
            Err(e) => {
                errors.insert(key.into(), e);
            }
        };
        match name {
            "name" => set("name", &mut parts.contact.name),
            "email" => set("email", &mut parts.contact.email),
            "message" => set("message", &mut parts.contact.message),
            "subject" => {
                let mut s = String::new();
                set("subject", &mut s);
                parts.contact.subject = Some(s);
            }
            // Formspree's reply-to address and subject, when the form has no field of our name.
            "_replyto" if posted.get("email").is_none() => set("email", &mut parts.contact.email),
            "_subject" if posted.get("subject").is_none() => {
                let mut s = String::new();
                set("subject", &mut s);
                parts.contact.subject = Some(s);
            }
            "_replyto" | "_subject" => {
                errors.insert(
                    name.into(),
                    format!(
                        "Send either `{}` or `{name}`, not both.",
                        name.trim_start_matches("_reply").trim_start_matches('_')
                    ),
                );
            }
            n if HONEYPOTS.contains(&n) || n == FORM_TOKEN || IGNORED.contains(&n) => {}
            n if n.starts_with('_') => {
                errors.insert(
                    n.into(),
                    format!(
                        "Field names starting with `_` are reserved: formgate understands _replyto, _subject and _gotcha, and ignores _next; rename `{n}`."
                    ),
                );
            }
            n if !is_field_name(n) => {
                errors.insert(
                    shown_name(n),
                    format!(
                        "A field's name must be 1–{MAX_FIELD_NAME} letters, digits, `_`, `.` or `-`; `{}` is not.",
                        shown_name(n)
                    ),
                );
            }
            n => {
                extras += 1;
                if extras > MAX_EXTRA_FIELDS {
                    errors.insert(
                        n.into(),
                        format!("Too many fields: a form may send at most {MAX_EXTRA_FIELDS} beyond name, email, subject and message."),
                    );
                    continue;
                }
                match extra_value(value) {
                    Ok(v) => parts.fields.push(Field::new(n, v)),
                    Err(e) => {
                        errors.insert(n.into(), e);
                    }
                }
            }
        }
    }
    parts.errors = errors;
    parts
}

/// A field name fit to show in a message (a hostile one is cut and made visible).
fn shown_name(n: &str) -> String {
    n.chars().take(MAX_FIELD_NAME).flat_map(char::escape_default).collect()
}

/// An open form's extra field: text (line breaks kept, NUL refused), at most 2 000 characters per
/// value; a repeated name is a list.
fn extra_value(value: &PostedValue) -> Result<FieldValue, String> {
    let clean = |s: &str| -> Result<String, String> {
        let s = s.trim().replace("\r\n", "\n");
        if s.contains('\0') {
            return Err("This field contains a NUL character.".into());
        }
        within(&s, MAX_EXTRA_VALUE)?;
        Ok(s)
    };
    Ok(match value {
        PostedValue::One(s) => FieldValue::Text(clean(s)?),
        PostedValue::Many(items) => FieldValue::List(items.iter().map(|s| clean(s)).collect::<Result<_, _>>()?),
        PostedValue::Flag(b) => FieldValue::Flag(*b),
    })
}

/// A declared form: exactly its fields, each checked by its type.
fn declared(fields: &[FieldSpec], posted: &Posted) -> Parts {
    let mut parts = Parts {
        name_from_address: true,
        body_optional: true,
        ..Parts::default()
    };
    let mut errors = FieldErrors::new();
    for (name, _) in &posted.fields {
        let n = name.as_str();
        let known =
            fields.iter().any(|f| f.name == n) || HONEYPOTS.contains(&n) || n == FORM_TOKEN || IGNORED.contains(&n);
        if !known {
            errors.insert(shown_name(n), format!("This form has no field `{}`.", shown_name(n)));
        }
    }
    for spec in fields {
        if spec.core() == Some(Core::Email) {
            parts.email_field = spec.name.clone();
        }
        let checked = check(spec, posted.get(&spec.name));
        let value = match checked {
            Ok(v) => v,
            Err(e) => {
                errors.insert(spec.name.clone(), e);
                continue;
            }
        };
        let text = |v: Option<FieldValue>| match v {
            Some(FieldValue::Text(t)) => t,
            _ => String::new(),
        };
        match spec.core() {
            Some(Core::Email) => parts.contact.email = text(value),
            Some(Core::Name) => {
                parts.name_from_address = !spec.required;
                parts.contact.name = text(value);
            }
            Some(Core::Subject) => parts.contact.subject = Some(text(value)),
            Some(Core::Message) => {
                parts.body_optional = !spec.required;
                parts.contact.message = text(value);
            }
            None => {
                if let Some(v) = value {
                    parts.fields.push(Field::new(spec.name.clone(), v));
                }
            }
        }
    }
    parts.errors = errors;
    parts
}

/// One declared field's value: None when left empty (and not required).
fn check(spec: &FieldSpec, posted: Option<&PostedValue>) -> Result<Option<FieldValue>, String> {
    let label = &spec.label;
    match spec.kind {
        FieldKind::Checkbox => {
            let on = match posted {
                None => false,
                Some(PostedValue::Flag(b)) => *b,
                Some(PostedValue::One(s)) => !s.trim().is_empty(),
                Some(PostedValue::Many(_)) => return Err("This field was sent more than once.".into()),
            };
            if spec.required && !on {
                return Err(format!("Please tick “{label}”."));
            }
            Ok(Some(FieldValue::Flag(on)))
        }
        FieldKind::Checkboxes => {
            let chosen: Vec<String> = posted
                .map(|v| v.texts())
                .unwrap_or_default()
                .into_iter()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if let Some(bad) = chosen.iter().find(|c| !spec.options.contains(c)) {
                return Err(format!(
                    "“{}” is not one of the choices for “{label}”.",
                    shown_name(bad)
                ));
            }
            if chosen.is_empty() {
                return if spec.required {
                    Err(format!("Please choose at least one option for “{label}”."))
                } else {
                    Ok(None)
                };
            }
            Ok(Some(FieldValue::List(chosen)))
        }
        kind => {
            let raw = match posted {
                None => "",
                Some(PostedValue::One(s)) => s.as_str(),
                Some(PostedValue::Flag(_)) => return Err(format!("“{label}” takes text, not true or false.")),
                Some(PostedValue::Many(_)) => return Err("This field was sent more than once.".into()),
            };
            let value = if kind == FieldKind::Textarea {
                raw.trim().replace("\r\n", "\n")
            } else {
                raw.trim().to_string()
            };
            if value.is_empty() {
                return if spec.required {
                    Err(format!("Please fill in “{label}”."))
                } else {
                    Ok(None)
                };
            }
            if value.contains('\0') {
                return Err("This field contains a NUL character.".into());
            }
            if kind != FieldKind::Textarea && value.contains(['\r', '\n']) {
                return Err(format!("“{label}” must be on one line."));
            }
            within(&value, spec.max_length())?;
            check_kind(spec, &value)?;
            Ok(Some(FieldValue::Text(value)))
        }
    }
}

fn check_kind(spec: &FieldSpec, value: &str) -> Result<(), String> {
    let label = &spec.label;
    match spec.kind {
        FieldKind::Email => VisitorEmail::parse(value).map(|_| ()),
        FieldKind::Tel => {
            let digits = value.chars().filter(char::is_ascii_digit).count();
            let allowed = value
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.' | '/'));
            if allowed && (3..=20).contains(&digits) {
                Ok(())
            } else {
                Err(format!(
                    "Please enter a phone number for “{label}” (digits, spaces and + - ( ) only)."
                ))
            }
        }
        FieldKind::Url => match url::Url::parse(value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
            _ => Err(format!(
                "Please enter a web address for “{label}” starting with https:// or http://."
            )),
        },
        FieldKind::Number => {
            let n: f64 = value
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| format!("Please enter a number for “{label}”."))?;
            if let Some(min) = spec.min.filter(|min| n < *min) {
                return Err(format!("“{label}” must be at least {min}."));
            }
            if let Some(max) = spec.max.filter(|max| n > *max) {
                return Err(format!("“{label}” must be at most {max}."));
            }
            Ok(())
        }
        FieldKind::Date => {
            if is_date(value) {
                Ok(())
            } else {
                Err(format!("Please enter a date for “{label}” as YYYY-MM-DD."))
            }
        }
        FieldKind::Select => {
            if spec.options.iter().any(|o| o == value) {
                Ok(())
            } else {
                Err(format!("Please choose one of the options for “{label}”."))
            }
        }
        FieldKind::Text | FieldKind::Textarea | FieldKind::Hidden | FieldKind::Checkbox | FieldKind::Checkboxes => {
            Ok(())
        }
    }
}

/// `YYYY-MM-DD`, a day that exists.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        s.get(r)
            .filter(|p| p.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::open_fields;

    fn open_form() -> Form {
        Form::open("contact", "Contact", "S")
    }

    fn field(name: &str, kind: FieldKind, required: bool) -> FieldSpec {
        FieldSpec {
            name: name.into(),
            kind,
            label: name.to_uppercase(),
            required,
            max_length: None,
            options: vec![],
            min: None,
            max: None,
            help: None,
            verify: kind == FieldKind::Email,
        }
    }

    fn quote_form() -> Form {
        let mut budget = field("budget", FieldKind::Select, true);
        budget.options = vec!["< 5k".into(), "> 20k".into()];
        let mut topics = field("topics", FieldKind::Checkboxes, false);
        topics.options = vec!["Web".into(), "App".into()];
        let mut seats = field("seats", FieldKind::Number, false);
        seats.min = Some(1.0);
        seats.max = Some(100.0);
        Form {
            slug: "quote".into(),
            fields: Some(vec![
                field("name", FieldKind::Text, true),
                field("email", FieldKind::Email, true),
                field("phone", FieldKind::Tel, false),
                field("site", FieldKind::Url, false),
                budget,
                topics,
                seats,
                field("start", FieldKind::Date, false),
                field("message", FieldKind::Textarea, true),
                field("consent", FieldKind::Checkbox, true),
            ]),
            ..open_form()
        }
    }

    fn post(form: &Form, body: &str) -> Result<Accepted, Rejected> {
        accept(form, &Posted::from_form(body.as_bytes()), None, None)
    }

    #[test]
    fn an_open_form_keeps_every_extra_field_in_order() {
        let a = post(
            &open_form(),
            "name=Ada&email=ada%40example.org&message=Hi&phone=123&topics=Web&topics=App&company=Acme",
        )
        .unwrap();
        assert_eq!(a.msg.name.as_str(), "Ada");
        assert_eq!(
            a.msg.fields,
            vec![
                Field::new("phone", FieldValue::Text("123".into())),
                Field::new("topics", FieldValue::List(vec!["Web".into(), "App".into()])),
                Field::new("company", FieldValue::Text("Acme".into())),
            ]
        );
        assert_eq!(a.msg.form, "contact");
    }

    #[test]
    fn an_open_form_bounds_what_it_keeps_and_names_the_field() {
        let base = "name=A&email=a%40example.org&message=m";
        let long = "x".repeat(MAX_EXTRA_VALUE + 1);
        let e = post(&open_form(), &format!("{base}&company={long}")).unwrap_err();
        assert!(e.errors["company"].contains("too long"), "{:?}", e.errors);
        let many: String = (0..=MAX_EXTRA_FIELDS).map(|i| format!("&f{i}=v")).collect();
        let e = post(&open_form(), &format!("{base}{many}")).unwrap_err();
        assert!(e.errors.contains_key(&format!("f{MAX_EXTRA_FIELDS}")), "{:?}", e.errors);
        let e = post(&open_form(), &format!("{base}&bad%20name=v")).unwrap_err();
        assert!(e.errors.contains_key("bad name"), "{:?}", e.errors);
        let e = post(&open_form(), &format!("{base}&_cc=x%40y.z")).unwrap_err();
        assert!(e.errors["_cc"].contains("reserved"), "{:?}", e.errors);
        assert_eq!(e.values["name"], vec!["A".to_string()], "input kept for the page");
    }

    #[test]
    fn formspree_names_are_understood_and_next_is_ignored() {
        let a = post(
            &open_form(),
            "name=A&_replyto=a%40example.org&_subject=Hello&message=m&_next=https%3A%2F%2Fevil.example&_gotcha=",
        )
        .unwrap();
        assert_eq!(a.msg.email.as_str(), "a@example.org");
        assert_eq!(a.msg.subject.as_ref().map(|s| s.as_str()), Some("Hello"));
        assert!(a.msg.fields.is_empty());
        assert_eq!(a.bot.honeypot.as_deref(), Some(""));
        let a = post(&open_form(), "name=A&email=a%40example.org&message=m&_gotcha=spam").unwrap();
        assert_eq!(a.bot.honeypot.as_deref(), Some("spam"));
    }

    #[test]
    fn a_declared_form_checks_every_type() {
        let good = "name=Ada&email=ada%40example.org&phone=%2B44+20+7946+0000&site=https%3A%2F%2Fada.example&budget=%3C+5k&topics=Web&topics=App&seats=12&start=2027-02-28&message=Hello&consent=on";
        let a = post(&quote_form(), good).unwrap();
        assert_eq!(a.msg.form, "quote");
        let names: Vec<&str> = a.msg.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["phone", "site", "budget", "topics", "seats", "start", "consent"]
        );
        for (replace, field) in [
            ("phone=%2B44+20+7946+0000", "phone=call+me"),
            ("site=https%3A%2F%2Fada.example", "site=javascript%3Aalert(1)"),
            ("budget=%3C+5k", "budget=lots"),
            ("topics=App", "topics=Hosting"),
            ("seats=12", "seats=101"),
            ("start=2027-02-28", "start=2027-02-29"),
            ("email=ada%40example.org", "email=nope"),
            ("consent=on", "consent="),
            ("message=Hello", "message=+"),
        ] {
            let body = good.replace(replace, field);
            let e = post(&quote_form(), &body).unwrap_err();
            let name = field.split('=').next().unwrap();
            assert!(e.errors.contains_key(name), "{field}: {:?}", e.errors);
            assert_eq!(e.errors.len(), 1, "{field}: {:?}", e.errors);
        }
        let e = post(&quote_form(), &format!("{good}&company=Acme")).unwrap_err();
        assert_eq!(e.errors["company"], "This form has no field `company`.");
    }

    #[test]
    fn a_declared_form_without_name_or_message_uses_the_address() {
        let form = Form {
            fields: Some(vec![
                field("email", FieldKind::Email, true),
                field("newsletter", FieldKind::Checkbox, false),
            ]),
            ..open_form()
        };
        let a = post(&form, "email=ada%40example.org").unwrap();
        assert_eq!(a.msg.name.as_str(), "ada@example.org");
        assert_eq!(a.msg.body.as_str(), "");
        assert_eq!(a.msg.fields, vec![Field::new("newsletter", FieldValue::Flag(false))]);
    }

    #[test]
    fn the_open_fields_are_the_four_of_old() {
        let names: Vec<String> = open_fields().into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["name", "email", "subject", "message"]);
    }

    #[test]
    fn dates() {
        assert!(is_date("2024-02-29") && is_date("2000-02-29") && is_date("1999-12-31"));
        assert!(!is_date("1900-02-29") && !is_date("2024-13-01") && !is_date("2024-1-01") && !is_date("2024-01-00"));
    }
}
