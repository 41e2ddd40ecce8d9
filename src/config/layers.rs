//! The one layering step: a setting's value is its default, replaced by the file's, replaced by
//! the environment's `FORMGATE_<KEY>`. A bad value fails with the key, where the value came from
//! and how to fix it.
//!
//! A setting is a typed descriptor ([`Setting`], or [`Optional`] when it has no default) whose
//! type implements [`Value`], the one parse function per value type. The descriptors live in one
//! table (`table.rs`), which is also the source of `KEYS` and so of the README's table.
//!
//! # Per-form settings (the forms issue)
//! A `[forms.NAME]` table is one more [`Layers`]: [`Layers::new`] over that sub-table, with its
//! own label (`[forms.NAME] in formgate.toml`) and environment prefix (e.g. `FORMGATE_FORM_NAME_`).
//! A key a form may override is resolved with [`Setting::resolve_or`] (or
//! [`Optional::resolve_or`]) against the form's layers, with the already resolved top-level value
//! as the fallback: the form's env beats the form's table, which beats the top-level value (itself
//! default → file → env). So adding a per-form key is one line in the form's resolve, reusing the
//! top-level descriptor (e.g. `SITE_NAME.resolve_or(&form, top.site_name.clone())`), plus the field
//! it lands in. The form's table checks its keys against its own list, as the top level does.

use std::fmt;
use std::marker::PhantomData;

/// What a configuration key is, as the README's configuration table shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub name: &'static str,
    pub default: KeyDefault,
    /// What the key does (the README's "meaning" column, word for word).
    pub doc: &'static str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDefault {
    /// Parsed like a value from the file or the environment.
    Text(&'static str),
    /// No default: the setting is `None` unless set; the text says what that means.
    Unset(&'static str),
}

impl KeyDefault {
    /// The README's "default" column.
    pub fn readme(&self) -> String {
        match self {
            KeyDefault::Text(t) => format!("`{t}`"),
            KeyDefault::Unset(what) => (*what).to_string(),
        }
    }
}

/// How one type of setting reads: text from the environment (or a TOML string, or the table's
/// default), and a TOML value from the file.
pub trait Value: Sized {
    /// The one parse function of the type. The message says what is wrong and how to fix it; the
    /// layering step adds the key and where the value came from.
    fn from_text(text: &str) -> Result<Self, String>;

    /// The file's value. Most settings are TOML strings; numbers, booleans and lists override this.
    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value.as_str() {
            Some(text) => Self::from_text(text),
            None => Err(format!("is {}; write it as a string, in quotes", toml_kind(value))),
        }
    }

    /// Whether blank text (`""`, spaces) means "not set", so the default applies. Types for which
    /// blank text is a value (an empty list) or a mistake (a number) say `false`.
    const BLANK_IS_UNSET: bool = true;
}

/// "a string", "an integer", … for messages about a value of the wrong TOML type.
pub(crate) fn toml_kind(value: &toml::Value) -> String {
    let kind = value.type_str();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The table's default (only a broken table gets here).
    Default,
    /// The file, or a table in it: `formgate.toml`, `/etc/formgate.toml`.
    File(String),
    /// The environment variable of that name.
    Env(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("its default"),
            Source::File(label) => write!(f, "in {label}"),
            Source::Env(var) => write!(f, "from {var}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
    /// Where the bad value came from; None for errors about no single value (a file that cannot
    /// be read, a key file).
    pub from: Option<Source>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.from {
            Some(from) => write!(f, "configuration key `{}` ({from}): {}", self.key, self.message),
            None => write!(f, "configuration key `{}`: {}", self.key, self.message),
        }
    }
}

pub(crate) fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
        from: None,
    }
}

/// One scope of values above the defaults: a TOML table and the environment.
pub struct Layers<'a> {
    table: &'a toml::Table,
    /// Names the table in messages: `formgate.toml`, `[forms.contact] in formgate.toml`.
    label: String,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// `FORMGATE_` at the top level.
    env_prefix: String,
}

impl<'a> Layers<'a> {
    pub fn new(
        table: &'a toml::Table,
        label: impl Into<String>,
        env: &'a dyn Fn(&str) -> Option<String>,
        env_prefix: impl Into<String>,
    ) -> Self {
        Layers {
            table,
            label: label.into(),
            env,
            env_prefix: env_prefix.into(),
        }
    }

    /// The raw TOML value of `key` in this scope's table (for what is more than one value: `forms`).
    pub(crate) fn raw(&self, key: &str) -> Option<&'a toml::Value> {
        self.table.get(key)
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    pub(crate) fn env(&self) -> &'a dyn Fn(&str) -> Option<String> {
        self.env
    }

    /// The value this scope sets for `key`, the environment winning over the table; None when
    /// neither sets it. A blank environment variable unsets the key (the file's value is not used
    /// either) for types where blank means unset.
    pub fn lookup<T: Value>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let var = format!("{}{}", self.env_prefix, key.to_ascii_uppercase());
        let named = |from: Source| {
            move |message: String| ConfigError {
                key: key.to_string(),
                message,
                from: Some(from),
            }
        };
        if let Some(text) = (self.env)(&var) {
            if T::BLANK_IS_UNSET && text.trim().is_empty() {
                return Ok(None);
            }
            return T::from_text(&text).map(Some).map_err(named(Source::Env(var)));
        }
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) if T::BLANK_IS_UNSET && s.trim().is_empty() => Ok(None),
            Some(v) => T::from_toml(v)
                .map(Some)
                .map_err(named(Source::File(self.label.clone()))),
        }
    }
}

/// A setting with a default.
pub struct Setting<T> {
    pub key: Key,
    default: &'static str,
    of: PhantomData<fn() -> T>,
}

impl<T: Value> Setting<T> {
    pub const fn new(name: &'static str, default: &'static str, doc: &'static str) -> Self {
        Setting {
            key: Key {
                name,
                default: KeyDefault::Text(default),
                doc,
            },
            default,
            of: PhantomData,
        }
    }

    /// Default → file → environment.
    pub fn resolve(&self, layers: &Layers) -> Result<T, ConfigError> {
        match layers.lookup(self.key.name)? {
            Some(v) => Ok(v),
            None => T::from_text(self.default).map_err(|message| ConfigError {
                key: self.key.name.to_string(),
                message,
                from: Some(Source::Default),
            }),
        }
    }

    /// The scope's value, or `fallback` (the value of the scope above) when it sets none.
    pub fn resolve_or(&self, layers: &Layers, fallback: T) -> Result<T, ConfigError> {
        Ok(layers.lookup(self.key.name)?.unwrap_or(fallback))
    }
}

/// A setting without a default: `None` unless the file or the environment sets it.
pub struct Optional<T> {
    pub key: Key,
    of: PhantomData<fn() -> T>,
}

impl<T: Value> Optional<T> {
    pub const fn new(name: &'static str, when_unset: &'static str, doc: &'static str) -> Self {
        Optional {
            key: Key {
                name,
                default: KeyDefault::Unset(when_unset),
                doc,
            },
            of: PhantomData,
        }
    }

    /// File → environment; None when neither sets it.
    pub fn resolve(&self, layers: &Layers) -> Result<Option<T>, ConfigError> {
        layers.lookup(self.key.name)
    }

    /// The scope's value, or `fallback` (the value of the scope above) when it sets none.
    pub fn resolve_or(&self, layers: &Layers, fallback: Option<T>) -> Result<Option<T>, ConfigError> {
        Ok(layers.lookup(self.key.name)?.or(fallback))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;
    use crate::config::table::{SITE_NAME, STAFF_INBOX};
    use crate::config::values::OneLine;

    const WAIT: Setting<Duration> = Setting::new("wait", "10s", "a key for these tests");

    fn table(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| vars.get(k).cloned()
    }

    #[test]
    fn default_then_file_then_environment() {
        for (file, env, secs) in [
            ("", None, 10),
            ("wait = \"20s\"", None, 20),
            ("", Some("30s"), 30),
            ("wait = \"20s\"", Some("30s"), 30),
            // Blank means unset: the default applies, even over the file's value.
            ("wait = \"20s\"", Some(" "), 10),
            ("wait = \"\"", None, 10),
        ] {
            let vars: Vec<(&str, &str)> = env.map(|v| ("FORMGATE_WAIT", v)).into_iter().collect();
            let env = env_of(&vars);
            let t = table(file);
            let got = WAIT.resolve(&Layers::new(&t, "formgate.toml", &env, "FORMGATE_"));
            assert_eq!(got.unwrap(), Duration::from_secs(secs), "file {file:?}, env {vars:?}");
        }
    }

    #[test]
    fn errors_name_the_key_where_the_value_came_from_and_the_fix() {
        let t = table("wait = \"soon\"");
        let none = env_of(&[]);
        let e = WAIT
            .resolve(&Layers::new(&t, "/etc/formgate.toml", &none, "FORMGATE_"))
            .unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.from.clone()),
            ("wait", Some(Source::File("/etc/formgate.toml".into())))
        );
        assert_eq!(
            e.to_string(),
            "configuration key `wait` (in /etc/formgate.toml): `soon` is not a duration; write e.g. 15s, 30m, 72h or 3d"
        );

        // The environment wins even when the file's value would have been fine.
        let t = table("wait = \"20s\"");
        let env = env_of(&[("FORMGATE_WAIT", "0s")]);
        let e = WAIT
            .resolve(&Layers::new(&t, "formgate.toml", &env, "FORMGATE_"))
            .unwrap_err();
        assert_eq!(e.from, Some(Source::Env("FORMGATE_WAIT".into())));
        assert_eq!(
            e.to_string(),
            "configuration key `wait` (from FORMGATE_WAIT): must be more than zero"
        );

        let e = Setting::<Duration>::new("broken", "soon", "a row with a bad default")
            .resolve(&Layers::new(&t, "formgate.toml", &none, "FORMGATE_"))
            .unwrap_err();
        assert_eq!(e.from, Some(Source::Default));
    }

    /// How a `[forms.NAME]` table will inherit: the same descriptors, resolved against the form's
    /// layers with the top-level value as the fallback.
    #[test]
    fn a_per_form_value_falls_back_to_the_top_level_one() {
        let file = table(
            "site_name = \"Top\"\nstaff_inbox = \"top@example.org\"\n\
             [forms.contact]\n\
             [forms.press]\nsite_name = \"Press\"\n",
        );
        let env = env_of(&[("FORMGATE_FORM_CONTACT_STAFF_INBOX", "contact@example.org")]);
        let top = Layers::new(&file, "formgate.toml", &env, "FORMGATE_");
        let site_name = SITE_NAME.resolve(&top).unwrap();
        let staff_inbox = STAFF_INBOX.resolve(&top).unwrap();

        let form = |name: &str| {
            let t = file["forms"][name].as_table().unwrap();
            let layers = Layers::new(
                t,
                format!("[forms.{name}] in formgate.toml"),
                &env,
                format!("FORMGATE_FORM_{}_", name.to_ascii_uppercase()),
            );
            let site = SITE_NAME.resolve_or(&layers, site_name.clone()).unwrap();
            let inbox = STAFF_INBOX.resolve_or(&layers, staff_inbox.clone()).unwrap();
            (site.0, inbox.map(|m| m.0[0].email.to_string()))
        };
        assert_eq!(form("contact"), ("Top".into(), Some("contact@example.org".into())));
        assert_eq!(form("press"), ("Press".into(), Some("top@example.org".into())));

        let bad = table("site_name = \"a\\nb\"");
        let layers = Layers::new(&bad, "[forms.press] in formgate.toml", &env, "FORMGATE_FORM_PRESS_");
        let e = SITE_NAME.resolve_or(&layers, OneLine("Top".into())).unwrap_err();
        assert_eq!(e.from, Some(Source::File("[forms.press] in formgate.toml".into())));
    }
}
