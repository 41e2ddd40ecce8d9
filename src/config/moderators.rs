//! `[[moderators]]`: who may open the dashboard over SSH (`ssh_listen`), with which keys, as
//! what. Each entry is parsed once here into a [`Moderator`]; a key that does not parse, a name
//! the audit trail could not carry, two moderators sharing a key, all stop the start.

use crate::ssh::{Moderator, Role};

use super::layers::{ConfigError, Source, toml_kind};

const MODERATOR_KEYS: &[&str] = &["name", "keys", "role"];

fn at(key: &str, label: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
        from: Some(Source::File(label.to_string())),
    }
}

pub fn parse_moderators(value: Option<&toml::Value>, label: &str) -> Result<Vec<Moderator>, ConfigError> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let items = value.as_array().ok_or_else(|| {
        at(
            "moderators",
            label,
            format!(
                "is {}; write one `[[moderators]]` table per moderator, each with a `name` and `keys`",
                toml_kind(value)
            ),
        )
    })?;
    let mut all: Vec<Moderator> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("moderators[{i}]");
        let m = parse_moderator(item, &key, label)?;
        if all.iter().any(|o| o.name == m.name) {
            return Err(at(
                &format!("{key}.name"),
                label,
                format!("`{}` is listed twice", m.name),
            ));
        }
        if let Some((other, _)) = all
            .iter()
            .flat_map(|o| o.keys.iter().map(move |k| (o, k)))
            .find(|(_, k)| m.keys.iter().any(|mine| mine.key_data() == k.key_data()))
        {
            return Err(at(
                &format!("{key}.keys"),
                label,
                format!(
                    "a key of `{}` is also `{}`'s: a key must name one moderator",
                    m.name, other.name
                ),
            ));
        }
        all.push(m);
    }
    Ok(all)
}

fn parse_moderator(item: &toml::Value, key: &str, label: &str) -> Result<Moderator, ConfigError> {
    let e = |sub: &str, message: String| at(&format!("{key}{sub}"), label, message);
    let table = item.as_table().ok_or_else(|| {
        e(
            "",
            format!(
                "is {}; write a moderator as a table with a `name` and `keys`",
                toml_kind(item)
            ),
        )
    })?;
    if let Some(unknown) = table.keys().find(|k| !MODERATOR_KEYS.contains(&k.as_str())) {
        return Err(e(
            &format!(".{unknown}"),
            format!(
                "a moderator has no such key; its keys are {}",
                MODERATOR_KEYS.join(", ")
            ),
        ));
    }
    let name = match table.get("name") {
        Some(toml::Value::String(s)) => s.clone(),
        Some(v) => return Err(e(".name", format!("is {}; write it as a string", toml_kind(v)))),
        None => return Err(e("", "a moderator needs a `name` (the audit trail's actor)".into())),
    };
    // The audit trail's actor: plain, short, and never something a terminal would act on.
    if !(1..=64).contains(&name.len()) || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b)) {
        return Err(e(
            ".name",
            format!("`{name}` is not a moderator's name: use 1 to 64 letters, digits and `._@-`"),
        ));
    }
    let lines: Vec<&str> = match table.get("keys") {
        Some(toml::Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().ok_or_else(|| {
                    e(
                        &format!(".keys[{i}]"),
                        format!(
                            "is {}; write a key as a string, \"ssh-ed25519 AAAA… comment\"",
                            toml_kind(v)
                        ),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(toml::Value::String(s)) => vec![s.as_str()],
        Some(v) => {
            return Err(e(
                ".keys",
                format!(
                    "is {}; write a list of public keys, as in authorized_keys",
                    toml_kind(v)
                ),
            ));
        }
        None => {
            return Err(e(
                "",
                format!("moderator `{name}` needs `keys` (their SSH public keys)"),
            ));
        }
    };
    if lines.is_empty() {
        return Err(e(
            ".keys",
            format!("moderator `{name}` has no keys: they could never log in"),
        ));
    }
    let keys = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            russh::keys::PublicKey::from_openssh(line.trim()).map_err(|err| {
                e(
                    &format!(".keys[{i}]"),
                    format!(
                        "is not an OpenSSH public key ({err}); copy the whole line of the .pub file, e.g. \"ssh-ed25519 AAAAC3Nza… alice@laptop\""
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let role = match table.get("role") {
        None => Role::Moderator,
        Some(toml::Value::String(s)) if s == "moderator" => Role::Moderator,
        Some(toml::Value::String(s)) if s == "viewer" => Role::Viewer,
        Some(v) => {
            return Err(e(
                ".role",
                format!(
                    "is {}; write \"moderator\" (acts) or \"viewer\" (reads only)",
                    match v {
                        toml::Value::String(s) => format!("`{s}`"),
                        other => toml_kind(other).to_string(),
                    }
                ),
            ));
        }
    };
    Ok(Moderator { name, keys, role })
}
