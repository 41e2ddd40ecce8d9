//! `[forms.NAME]` tables: each form's own settings over the top-level ones, and its fields.
//!
//! A form's table is one more [`Layers`] (label `[forms.NAME] in formgate.toml`, environment
//! `FORMGATE_FORM_<NAME>_<KEY>`, `-` written `_`). What a form sets is kept as an override
//! ([`FormTable`]); [`super::Config::forms`] lays the overrides over the top-level values when
//! the server starts, so a form that sets nothing follows the top level.

use std::path::PathBuf;

use lettre::message::Mailbox;

use super::layers::{ConfigError, Layers, Source, toml_kind};
use super::table::{
    ALLOWED_ORIGINS, AUTO_RELEASE, CONFIRMATION_MAIL, REQUIRE_FORM_TOKEN, SITE_NAME, STAFF_INBOX, THANK_YOU_URL, TITLE,
    UI_DIR,
};
use crate::forms::accept::{MAX_EXTRA_VALUE, is_field_name, is_reserved};
use crate::forms::{FieldKind, FieldSpec};

/// The keys a `[forms.NAME]` table may hold, in the README's order.
pub const FORM_KEYS: &[&str] = &[
    "title",
    "site_name",
    "staff_inbox",
    "allowed_origins",
    "auto_release",
    "thank_you_url",
    "require_form_token",
    "ui_dir",
    "confirmation_mail",
    "webhooks",
    "fields",
];

const FIELD_KEYS: &[&str] = &[
    "name",
    "type",
    "label",
    "required",
    "max_length",
    "options",
    "min",
    "max",
    "help",
    "verify",
];

/// What one form sets; `None` follows the top level.
#[derive(Clone, Debug, Default)]
pub struct FormTable {
    pub slug: String,
    pub title: Option<String>,
    pub site_name: Option<String>,
    pub staff_inbox: Option<Vec<Mailbox>>,
    pub allowed_origins: Option<Vec<String>>,
    pub auto_release: Option<bool>,
    pub thank_you_url: Option<String>,
    pub require_form_token: Option<bool>,
    pub ui_dir: Option<PathBuf>,
    pub fields: Option<Vec<FieldSpec>>,
    pub confirmation_mail: Option<bool>,
    /// `[[forms.NAME.webhooks]]`; None: the top-level `[[webhooks]]`.
    pub webhooks: Option<Vec<crate::webhook::Webhook>>,
}

/// `[a-z0-9-]{1,40}`: it is part of the form's URL and of every message stored from it.
pub fn is_slug(s: &str) -> bool {
    (1..=40).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn at(key: String, label: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key,
        message: message.into(),
        from: Some(Source::File(label.to_string())),
    }
}

/// Every `[forms.NAME]` table of the file, in the file's order.
pub fn parse_forms(
    value: Option<&toml::Value>,
    label: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<FormTable>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let tables = value.as_table().ok_or_else(|| {
        at(
            "forms".into(),
            label,
            format!("is {}; write one `[forms.NAME]` table per form", toml_kind(value)),
        )
    })?;
    let mut forms = Vec::with_capacity(tables.len());
    for (slug, table) in tables {
        let key = format!("forms.{slug}");
        if !is_slug(slug) {
            return Err(at(
                key,
                label,
                "a form's name is 1–40 lower-case letters, digits or `-` (it is part of the form's URL, /f/NAME)",
            ));
        }
        let table = table.as_table().ok_or_else(|| {
            at(
                key.clone(),
                label,
                format!("is {}; write it as a table, `[forms.{slug}]`", toml_kind(table)),
            )
        })?;
        if let Some(unknown) = table.keys().find(|k| !FORM_KEYS.contains(&k.as_str())) {
            return Err(at(
                format!("{key}.{unknown}"),
                label,
                format!("a form has no such key; its keys are {}", FORM_KEYS.join(", ")),
            ));
        }
        let form_label = format!("[forms.{slug}] in {label}");
        let prefix = format!("FORMGATE_FORM_{}_", slug.replace('-', "_").to_ascii_uppercase());
        let layers = Layers::new(table, form_label.clone(), env, prefix);
        let named = |e: ConfigError| ConfigError {
            key: format!("{key}.{}", e.key),
            ..e
        };
        forms.push(FormTable {
            slug: slug.clone(),
            title: TITLE.resolve(&layers).map_err(named)?.map(|t| t.0),
            site_name: layers
                .lookup(SITE_NAME.key.name)
                .map_err(named)?
                .map(|s: super::values::OneLine| s.0),
            staff_inbox: STAFF_INBOX.resolve(&layers).map_err(named)?.map(|i| i.0),
            allowed_origins: ALLOWED_ORIGINS
                .resolve(&layers)
                .map_err(named)?
                .map(|l| l.0.into_iter().map(|o| o.0).collect()),
            auto_release: layers.lookup(AUTO_RELEASE.key.name).map_err(named)?,
            thank_you_url: THANK_YOU_URL.resolve(&layers).map_err(named)?.map(|u| u.0),
            require_form_token: layers.lookup(REQUIRE_FORM_TOKEN.key.name).map_err(named)?,
            ui_dir: UI_DIR.resolve(&layers).map_err(named)?.map(|d| d.0),
            fields: match table.get("fields") {
                None => None,
                Some(v) => Some(parse_fields(v, &key, &form_label)?),
            },
            confirmation_mail: layers.lookup(CONFIRMATION_MAIL.key.name).map_err(named)?,
            webhooks: super::webhooks::parse_webhooks(table.get("webhooks"), &format!("{key}.webhooks"), &form_label)?,
        });
    }
    Ok(forms)
}

fn parse_fields(value: &toml::Value, form_key: &str, label: &str) -> Result<Vec<FieldSpec>, ConfigError> {
    let key = format!("{form_key}.fields");
    let items = value.as_array().ok_or_else(|| {
        at(
            key.clone(),
            label,
            format!(
                "is {}; write a list of fields, e.g. [{{ name = \"email\", type = \"email\", required = true }}]",
                toml_kind(value)
            ),
        )
    })?;
    let mut fields: Vec<FieldSpec> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let spec = parse_field(item, &format!("{key}[{i}]"), label)?;
        if fields.iter().any(|f| f.name == spec.name) {
            return Err(at(
                format!("{key}[{i}].name"),
                label,
                format!(
                    "the form already has a field `{}`; give each field its own name",
                    spec.name
                ),
            ));
        }
        fields.push(spec);
    }
    let emails: Vec<usize> = (0..fields.len())
        .filter(|&i| fields[i].kind == FieldKind::Email)
        .collect();
    let marked: Vec<usize> = emails.iter().copied().filter(|&i| fields[i].verify).collect();
    let verified = match (emails.len(), marked.len()) {
        (0, _) => {
            return Err(at(
                key,
                label,
                "a form with `fields` needs one field of type `email`: the address that gets verified",
            ));
        }
        (1, _) => emails[0],
        (_, 1) => marked[0],
        (_, 0) => {
            return Err(at(
                key,
                label,
                "the form has several `email` fields; mark the one whose address is verified with `verify = true`",
            ));
        }
        _ => {
            return Err(at(key, label, "only one `email` field may have `verify = true`"));
        }
    };
    for (i, f) in fields.iter_mut().enumerate() {
        f.verify = i == verified;
    }
    // The verified address is required whatever the field says: without it there is no one to ask.
    fields[verified].required = true;
    Ok(fields)
}

fn parse_field(item: &toml::Value, key: &str, label: &str) -> Result<FieldSpec, ConfigError> {
    let e = |sub: &str, message: String| at(format!("{key}{sub}"), label, message);
    let table = item.as_table().ok_or_else(|| {
        e(
            "",
            format!(
                "is {}; write a field as {{ name = \"…\", type = \"…\" }}",
                toml_kind(item)
            ),
        )
    })?;
    if let Some(unknown) = table.keys().find(|k| !FIELD_KEYS.contains(&k.as_str())) {
        return Err(e(
            &format!(".{unknown}"),
            format!("a field has no such key; its keys are {}", FIELD_KEYS.join(", ")),
        ));
    }
    let string = |k: &str| -> Result<Option<String>, ConfigError> {
        match table.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.chars().any(char::is_control) => Ok(Some(s.clone())),
            Some(toml::Value::String(_)) => Err(e(
                &format!(".{k}"),
                "must be one line without control characters".into(),
            )),
            Some(v) => Err(e(
                &format!(".{k}"),
                format!("is {}; write it as a string, in quotes", toml_kind(v)),
            )),
        }
    };
    let flag = |k: &str| -> Result<bool, ConfigError> {
        match table.get(k) {
            None => Ok(false),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(v) => Err(e(&format!(".{k}"), format!("is {}; write true or false", toml_kind(v)))),
        }
    };
    let number = |k: &str| -> Result<Option<f64>, ConfigError> {
        match table.get(k) {
            None => Ok(None),
            Some(toml::Value::Integer(n)) => Ok(Some(*n as f64)),
            Some(toml::Value::Float(n)) if n.is_finite() => Ok(Some(*n)),
            Some(v) => Err(e(&format!(".{k}"), format!("is {}; write a number", toml_kind(v)))),
        }
    };
    let name = string("name")?.ok_or_else(|| e("", "a field needs a `name`".into()))?;
    if !is_field_name(&name) {
        return Err(e(
            ".name",
            format!("`{name}` is not a field name: use 1–64 letters, digits, `_`, `.` or `-`"),
        ));
    }
    if is_reserved(&name) {
        return Err(e(
            ".name",
            format!("`{name}` is reserved (the bot filters' fields and names starting with `_`); choose another name"),
        ));
    }
    let type_name = string("type")?.unwrap_or_else(|| "text".into());
    let kind = FieldKind::parse(&type_name).ok_or_else(|| {
        let known: Vec<&str> = FieldKind::ALL.iter().map(|k| k.as_str()).collect();
        e(
            ".type",
            format!("`{type_name}` is not a field type; the types are {}", known.join(", ")),
        )
    })?;
    let options = match table.get("options") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .iter()
            .map(|o| match o {
                toml::Value::String(s) if !s.trim().is_empty() && !s.chars().any(char::is_control) => Ok(s.clone()),
                _ => Err(e(".options", "write the options as a list of non-empty strings".into())),
            })
            .collect::<Result<_, _>>()?,
        Some(v) => Err(e(".options", format!("is {}; write a list of strings", toml_kind(v))))?,
    };
    if kind.has_options() && options.is_empty() {
        return Err(e(
            ".options",
            format!("a `{type_name}` field needs `options`, e.g. options = [\"A\", \"B\"]"),
        ));
    }
    if !kind.has_options() && !options.is_empty() {
        return Err(e(
            ".options",
            format!("only `select` and `checkboxes` fields take options, not `{type_name}`"),
        ));
    }
    let (min, max) = (number("min")?, number("max")?);
    if kind != FieldKind::Number && (min.is_some() || max.is_some()) {
        return Err(e(".min", "only `number` fields take `min` and `max`".into()));
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo > hi
    {
        return Err(e(".max", format!("`max` ({hi}) is below `min` ({lo})")));
    }
    let max_length = match table.get("max_length") {
        None => None,
        Some(toml::Value::Integer(n))
            if *n >= 1 && usize::try_from(*n).is_ok_and(|n| n <= kind.default_max_length().max(MAX_EXTRA_VALUE)) =>
        {
            usize::try_from(*n).ok()
        }
        Some(v) => {
            return Err(e(
                ".max_length",
                format!(
                    "is {}; write a whole number from 1 to {}",
                    toml_kind(v),
                    kind.default_max_length().max(MAX_EXTRA_VALUE)
                ),
            ));
        }
    };
    let verify = flag("verify")?;
    if verify && kind != FieldKind::Email {
        return Err(e(".verify", "only an `email` field can be the verified address".into()));
    }
    Ok(FieldSpec {
        label: string("label")?.unwrap_or_else(|| name.clone()),
        name,
        kind,
        required: flag("required")?,
        max_length,
        options,
        min,
        max,
        help: string("help")?,
        verify,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::forms::FieldKind;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn forms_inherit_the_top_level_and_override_it() {
        let c = Config::from_toml(
            r#"
            site_name = "Example"
            staff_inbox = "Team <team@example.org>"
            auto_release = true
            [forms.contact]
            [forms.quote]
            title = "Request a quote"
            staff_inbox = ["sales@example.org", "Boss <boss@example.org>"]
            auto_release = false
            fields = [{ name = "email", type = "email" }, { name = "budget", type = "select", options = ["a", "b"] }]
            "#,
            &no_env,
        )
        .unwrap();
        let forms = c.forms();
        assert_eq!(forms.len(), 2);
        let (contact, quote) = (&forms[0], &forms[1]);
        assert_eq!(
            (contact.slug.as_str(), contact.title.as_str()),
            ("contact", "Contact Example")
        );
        assert!(contact.auto_release && contact.is_open());
        assert_eq!(contact.staff_inbox.len(), 1);
        assert_eq!(quote.staff_inbox.len(), 2);
        assert!(!quote.auto_release);
        let fields = quote.fields.as_ref().unwrap();
        assert!(
            fields[0].verify && fields[0].required,
            "the one email field is the verified address"
        );
        assert_eq!(fields[1].kind, FieldKind::Select);
        // No [forms] at all: one open form, `contact`, with the top-level settings.
        let c = Config::from_toml("", &no_env).unwrap();
        let forms = c.forms();
        assert_eq!((forms.len(), forms[0].slug.as_str()), (1, "contact"));
        // A form's environment beats its table.
        let env = |k: &str| (k == "FORMGATE_FORM_QUOTE_TITLE").then(|| "From env".to_string());
        let c = Config::from_toml("[forms.contact]\n[forms.quote]\ntitle = \"File\"", &env).unwrap();
        assert_eq!(c.forms()[1].title, "From env");
    }

    #[test]
    fn each_bad_form_configuration_names_its_key_and_the_fix() {
        for (toml, key, says) in [
            ("[forms.Quote]", "forms.Quote", "lower-case"),
            ("[forms.quote]\ntitel = \"x\"", "forms.quote.titel", "its keys are"),
            ("[forms.quote]", "default_form", "there is no form `contact`"),
            (
                "[forms.contact]\nfields = [{ name = \"email\", type = \"emial\" }]",
                "forms.contact.fields[0].type",
                "the types are",
            ),
            (
                "[forms.contact]\nfields = [{ name = \"email\", type = \"email\" }, { name = \"b\", type = \"select\" }]",
                "forms.contact.fields[1].options",
                "needs `options`",
            ),
            (
                "[forms.contact]\nfields = [{ name = \"email\", type = \"email\" }, { name = \"form_token\" }]",
                "forms.contact.fields[1].name",
                "reserved",
            ),
            (
                "[forms.contact]\nfields = [{ name = \"email\", type = \"email\" }, { name = \"_next\" }]",
                "forms.contact.fields[1].name",
                "reserved",
            ),
            (
                "[forms.contact]\nfields = [{ name = \"name\" }]",
                "forms.contact.fields",
                "needs one field of type `email`",
            ),
            (
                "[forms.contact]\nfields = [{ name = \"a\", type = \"email\" }, { name = \"b\", type = \"email\" }]",
                "forms.contact.fields",
                "verify = true",
            ),
            (
                "[forms.contact]\nfields = [{ name = \"email\", type = \"email\" }, { name = \"email\" }]",
                "forms.contact.fields[1].name",
                "already has a field `email`",
            ),
            (
                "[forms.contact]\nfields = [{ name = \"email\", type = \"email\" }, { name = \"n\", min = 3 }]",
                "forms.contact.fields[1].min",
                "only `number`",
            ),
            (
                "[forms.contact]\nthank_you_url = \"javascript:alert(1)\"",
                "forms.contact.thank_you_url",
                "web address",
            ),
            (
                "[forms.contact]\nstaff_inbox = [\"not a mailbox\"]",
                "forms.contact.staff_inbox",
                "mailbox",
            ),
            (
                "[forms.contact]\nallowed_origins = [\"www.example.org\"]",
                "forms.contact.allowed_origins",
                "origin",
            ),
            ("default_form = \"Contact Us\"", "default_form", "form's name"),
        ] {
            let e = Config::from_toml(toml, &no_env).unwrap_err();
            assert_eq!(e.key, key, "{toml}: {e}");
            assert!(e.to_string().contains(says), "{toml}: {e}");
        }
    }
}
