//! `[[webhooks]]` and `[[forms.NAME.webhooks]]`: where released messages are POSTed. Each entry
//! is parsed once here into a [`Webhook`]: a URL formgate may call, the secrets it signs with, the
//! events it is told about and the body's format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::webhook::{Event, Format, Webhook, WebhookSecret};

use super::layers::{ConfigError, Source, toml_kind};

/// The keys one webhook entry may have.
const WEBHOOK_KEYS: &[&str] = &["url", "secret", "secret_file", "events", "format"];

/// The webhooks listed under `key` (`webhooks`, `forms.quote.webhooks`); None when the key is
/// absent (a form then follows the top level).
pub fn parse_webhooks(
    value: Option<&toml::Value>,
    key: &str,
    label: &str,
) -> Result<Option<Vec<Webhook>>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let items = value.as_array().ok_or_else(|| {
        at(
            key,
            label,
            format!(
                "is {}; write one `[[{key}]]` table per webhook, each with a `url`",
                toml_kind(value)
            ),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_webhook(item, &format!("{key}[{i}]"), label))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn at(key: &str, label: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
        from: Some(Source::File(label.to_string())),
    }
}

fn parse_webhook(item: &toml::Value, key: &str, label: &str) -> Result<Webhook, ConfigError> {
    let e = |sub: &str, message: String| at(&format!("{key}{sub}"), label, message);
    let table = item.as_table().ok_or_else(|| {
        e(
            "",
            format!("is {}; write a webhook as a table with a `url`", toml_kind(item)),
        )
    })?;
    if let Some(unknown) = table.keys().find(|k| !WEBHOOK_KEYS.contains(&k.as_str())) {
        return Err(e(
            &format!(".{unknown}"),
            format!("a webhook has no such key; its keys are {}", WEBHOOK_KEYS.join(", ")),
        ));
    }
    let string = |k: &str| -> Result<Option<&str>, ConfigError> {
        match table.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(e(
                &format!(".{k}"),
                format!("is {}; write it as a string, in quotes", toml_kind(v)),
            )),
        }
    };

    let url =
        parse_url(string("url")?.ok_or_else(|| e("", "a webhook needs a `url`".into()))?).map_err(|m| e(".url", m))?;

    let format = match string("format")? {
        None | Some("standard") => Format::Standard,
        Some("slack") => Format::Slack,
        Some(other) => {
            return Err(e(
                ".format",
                format!("`{other}` is not a format; write \"standard\" (Standard Webhooks) or \"slack\""),
            ));
        }
    };

    let mut written: Vec<String> = Vec::new();
    match table.get("secret") {
        None => {}
        Some(toml::Value::String(s)) => written.push(s.clone()),
        Some(toml::Value::Array(list)) => {
            for (i, v) in list.iter().enumerate() {
                match v {
                    toml::Value::String(s) => written.push(s.clone()),
                    other => {
                        return Err(e(
                            &format!(".secret[{i}]"),
                            format!("is {}; write a secret as a string, \"whsec_…\"", toml_kind(other)),
                        ));
                    }
                }
            }
        }
        Some(v) => {
            return Err(e(
                ".secret",
                format!(
                    "is {}; write one secret, \"whsec_…\", or a list of two while rotating",
                    toml_kind(v)
                ),
            ));
        }
    }
    if let Some(path) = string("secret_file")? {
        if !written.is_empty() {
            return Err(e(".secret_file", "set `secret` or `secret_file`, not both".into()));
        }
        let text =
            std::fs::read_to_string(path).map_err(|err| e(".secret_file", format!("cannot read {path}: {err}")))?;
        written.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
        if written.is_empty() {
            return Err(e(".secret_file", format!("{path} holds no secret")));
        }
    }
    let secrets = written
        .iter()
        .map(|s| parse_secret(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|m| e(".secret", m))?;
    if secrets.is_empty() && format == Format::Standard {
        return Err(e(
            "",
            "a Standard Webhooks endpoint needs a `secret` (\"whsec_\" and base64, as your receiver's library \
             gives you) so it can tell formgate's posts from forgeries; a chat webhook takes format = \"slack\""
                .into(),
        ));
    }

    let events = match table.get("events") {
        None => vec![Event::Released],
        Some(toml::Value::Array(list)) => {
            let mut events = Vec::new();
            for (i, v) in list.iter().enumerate() {
                let event = v.as_str().and_then(Event::parse).ok_or_else(|| {
                    e(
                        &format!(".events[{i}]"),
                        format!(
                            "is not an event; write {}",
                            Event::ALL.map(|e| format!("\"{}\"", e.as_str())).join(" or ")
                        ),
                    )
                })?;
                if !events.contains(&event) {
                    events.push(event);
                }
            }
            if events.is_empty() {
                return Err(e(
                    ".events",
                    "lists no event: remove the webhook, or name an event".into(),
                ));
            }
            events
        }
        Some(v) => {
            return Err(e(
                ".events",
                format!("is {}; write a list, e.g. [\"message.released\"]", toml_kind(v)),
            ));
        }
    };

    Ok(Webhook {
        url,
        secrets,
        events,
        format,
    })
}

/// An `http(s)` URL with a host; no credentials in it (they would be printed in logs and the
/// dashboard), no fragment.
fn parse_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|err| format!("`{s}` is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{s}` is not an http or https URL"));
    }
    if url.host().is_none() {
        return Err(format!("`{s}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a webhook URL must not hold a user name or password; sign with `secret` instead".into());
    }
    if url.fragment().is_some() {
        return Err(format!("`{s}` has a #fragment, which is never sent; remove it"));
    }
    Ok(url)
}

/// `whsec_` and base64 (the prefix optional), as the Standard Webhooks libraries print a secret;
/// at least 24 bytes so it cannot be guessed.
fn parse_secret(s: &str) -> Result<WebhookSecret, String> {
    let b64 = s.trim().strip_prefix("whsec_").unwrap_or(s.trim());
    let bytes = STANDARD.decode(b64).map_err(|_| {
        "a secret is \"whsec_\" followed by base64 (what your receiver's library generates)".to_string()
    })?;
    if bytes.len() < 24 {
        return Err(format!(
            "a secret of {} bytes is too short to sign with; use at least 24 (32 is usual)",
            bytes.len()
        ));
    }
    Ok(WebhookSecret(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Webhook>, String> {
        let table: toml::Table = toml::from_str(text).unwrap();
        parse_webhooks(table.get("webhooks"), "webhooks", "formgate.toml")
            .map(Option::unwrap_or_default)
            .map_err(|e| e.to_string())
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn a_standard_webhook_with_a_secret() {
        let w = parse(&format!(
            "[[webhooks]]\nurl = \"https://crm.example.org/h\"\nsecret = \"{SECRET}\""
        ))
        .unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].format, Format::Standard);
        assert_eq!(w[0].events, vec![Event::Released]);
        assert_eq!(w[0].secrets.len(), 1);
    }

    #[test]
    fn two_secrets_while_rotating_and_both_events() {
        let w = parse(&format!(
            "[[webhooks]]\nurl = \"https://a.example/h\"\nsecret = [\"{SECRET}\", \"{SECRET}\"]\nevents = [\"message.verified\", \"message.released\"]"
        ))
        .unwrap();
        assert_eq!(w[0].secrets.len(), 2);
        assert_eq!(w[0].events, vec![Event::Verified, Event::Released]);
    }

    #[test]
    fn slack_needs_no_secret() {
        let w = parse("[[webhooks]]\nurl = \"https://hooks.slack.com/services/T/B/X\"\nformat = \"slack\"").unwrap();
        assert_eq!(w[0].format, Format::Slack);
        assert!(w[0].secrets.is_empty());
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("[[webhooks]]\nurl = \"https://a.example/h\"", "needs a `secret`"),
            ("[[webhooks]]\nsecret = \"x\"", "needs a `url`"),
            (
                "[[webhooks]]\nurl = \"ftp://a.example/h\"\nformat = \"slack\"",
                "not an http or https URL",
            ),
            (
                "[[webhooks]]\nurl = \"https://u:p@a.example/h\"\nformat = \"slack\"",
                "user name or password",
            ),
            (
                "[[webhooks]]\nurl = \"https://a.example/h\"\nsecret = \"whsec_!!\"",
                "base64",
            ),
            (
                "[[webhooks]]\nurl = \"https://a.example/h\"\nsecret = \"whsec_YWJj\"",
                "too short",
            ),
            (
                "[[webhooks]]\nurl = \"https://a.example/h\"\nformat = \"teams\"",
                "not a format",
            ),
            (
                "[[webhooks]]\nurl = \"https://a.example/h\"\nformat = \"slack\"\nevents = [\"message.sent\"]",
                "not an event",
            ),
            (
                "[[webhooks]]\nurl = \"https://a.example/h\"\nformat = \"slack\"\nurll = 1",
                "no such key",
            ),
            ("webhooks = \"https://a.example/h\"", "one `[[webhooks]]` table"),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err();
            assert!(got.contains(want), "{text:?}: {got}");
            assert!(got.contains("webhooks"), "{got}");
        }
    }

    #[test]
    fn a_secret_prints_nowhere() {
        let w = parse(&format!(
            "[[webhooks]]\nurl = \"https://a.example/h\"\nsecret = \"{SECRET}\""
        ))
        .unwrap();
        assert!(!format!("{w:?}").contains("MfKQ9r8"));
    }
}
