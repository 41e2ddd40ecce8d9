//! Configuration: defaults, then `formgate.toml` (or `--config PATH`), then `FORMGATE_<KEY>`
//! environment variables. A bad value fails at start with the key's name and how to fix it.
//! Secrets (signing keys, the SMTP password) never print: their `Debug` is redacted.

mod values;

pub use values::{IpNet, RateLimit};

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::token::Keys;

/// The file's shape: every key optional, unknown keys refused (a typo should not pass silently).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    public_url: Option<String>,
    site_name: Option<String>,
    database_url: Option<String>,
    smtp_url: Option<String>,
    smtp_timeout: Option<String>,
    smtp_connections: Option<usize>,
    mail_dir: Option<String>,
    mail_from: Option<String>,
    mail_lifetime: Option<String>,
    staff_inbox: Option<String>,
    secret_keys: Option<Vec<String>>,
    secret_key_file: Option<String>,
    token_ttl: Option<String>,
    ui_dir: Option<String>,
    auto_release: Option<bool>,
    purge_after_days: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    rate_limit_contact: Option<String>,
    rate_limit_verify: Option<String>,
    body_timeout: Option<String>,
    header_timeout: Option<String>,
    verify_mails_per_address: Option<String>,
    max_mails_per_hour: Option<u32>,
    require_form_token: Option<bool>,
}

/// Every key, its default, and what it does. A test checks that README.md documents each one.
pub const KEYS: &[(&str, &str, &str)] = &[
    ("listen", "127.0.0.1:8080", "address and port the web listener binds"),
    (
        "public_url",
        "http://<listen>",
        "base URL of the links in mails (what visitors' browsers reach)",
    ),
    ("site_name", "formgate", "the name visitors see on pages and in mails"),
    (
        "database_url",
        "sqlite://formgate.db",
        "where messages live (SQLite file, created if missing)",
    ),
    (
        "smtp_url",
        "(unset: write .eml files)",
        "smtp://user:pass@host:587?tls=required, smtps://host:465, smtp://host:25",
    ),
    (
        "smtp_timeout",
        "15s",
        "per-command SMTP timeout, so one hung server cannot stall the queue",
    ),
    (
        "smtp_connections",
        "4",
        "SMTP connections the outbox keeps open and sends over in parallel",
    ),
    (
        "mail_dir",
        "./mail-outbox",
        "where mails go as .eml files when smtp_url is unset",
    ),
    (
        "mail_from",
        "formgate <formgate@localhost>",
        "From of every mail formgate sends",
    ),
    (
        "mail_lifetime",
        "3d",
        "how long the outbox retries a mail before it gives up (dead letter)",
    ),
    ("staff_inbox", "(unset)", "where released messages are delivered"),
    (
        "secret_keys",
        "(unset)",
        "signing keys, first signs, all verify; env: comma-separated",
    ),
    (
        "secret_key_file",
        "formgate.key",
        "used when secret_keys is unset; generated (mode 0600) if missing",
    ),
    ("token_ttl", "72h", "how long a verification link and code stay valid"),
    (
        "ui_dir",
        "(unset: built-in)",
        "folder whose pages/ and email/ templates override the built-in ones",
    ),
    (
        "trusted_proxies",
        "(none)",
        "proxies (IPs or CIDR blocks) whose X-Forwarded-For / Forwarded headers are believed; env: comma-separated",
    ),
    (
        "allowed_origins",
        "(none: own pages only)",
        "other sites whose pages may post the form (CORS); env: comma-separated",
    ),
    (
        "rate_limit_contact",
        "5/10m",
        "form posts and resends per client address (IPv6: per /64) and window; 0 turns it off",
    ),
    (
        "rate_limit_verify",
        "30/10m",
        "code and link confirmations per client address and window; 0 turns it off",
    ),
    (
        "body_timeout",
        "10s",
        "how long a client may take to send a request body (then 408)",
    ),
    (
        "header_timeout",
        "10s",
        "how long a client may take to send a request's headers, and an idle kept-alive connection stays open",
    ),
    (
        "verify_mails_per_address",
        "1/24h",
        "automatic verification mails one address may get per window (`N/window`; `0`: no cap)",
    ),
    (
        "max_mails_per_hour",
        "500",
        "verification mails queued per hour, all addresses together (0: no cap)",
    ),
    (
        "require_form_token",
        "false",
        "treat posts without the form page's signed time field as spam",
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}`: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

/// How outgoing mail leaves.
#[derive(Clone, PartialEq, Eq)]
pub enum MailTarget {
    Smtp(SmtpUrl),
    /// No SMTP configured: each mail becomes an `.eml` file in this folder.
    Dir(PathBuf),
}

impl fmt::Debug for MailTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailTarget::Smtp(u) => write!(f, "Smtp({u:?})"),
            MailTarget::Dir(p) => write!(f, "Dir({})", p.display()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a local relay, or tests).
    None,
    /// STARTTLS if the server offers it.
    Opportunistic,
    /// STARTTLS or fail.
    Required,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, Secret)>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .credentials
            .as_ref()
            .map(|(u, _)| format!("{u}:***@"))
            .unwrap_or_default();
        write!(f, "{}{}:{} ({:?})", user, self.host, self.port, self.tls)
    }
}

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl SmtpUrl {
    /// `smtp://[user:pass@]host[:port][?tls=required|opportunistic]` or `smtps://…` (the same
    /// conventions as lettre's `from_url`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(raw).map_err(|e| format!("not a URL ({e}); expected smtp://host:port or smtps://host"))?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => {
                return Err(format!("scheme `{other}` is not supported; use smtp:// or smtps://"));
            }
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let mut tls = if implicit { SmtpTls::Implicit } else { SmtpTls::None };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), implicit) {
                ("tls", "required", false) => tls = SmtpTls::Required,
                ("tls", "opportunistic", false) => tls = SmtpTls::Opportunistic,
                ("tls", "none", false) => tls = SmtpTls::None,
                ("tls", _, true) => {
                    return Err("smtps:// is always TLS; drop the tls= parameter".into());
                }
                _ => {
                    return Err(format!(
                        "unknown parameter `{k}={v}`; use tls=required, tls=opportunistic or tls=none"
                    ));
                }
            }
        }
        let port = url.port().unwrap_or(if implicit { 465 } else { 25 });
        let decode = |s: &str| percent_decode(s);
        let credentials = (!url.username().is_empty())
            .then(|| (decode(url.username()), Secret(decode(url.password().unwrap_or("")))));
        Ok(SmtpUrl {
            host,
            port,
            tls,
            credentials,
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// None: `http://<the address actually bound>`.
    pub public_url: Option<String>,
    pub site_name: String,
    pub database_url: String,
    pub mail: MailTarget,
    pub smtp_timeout: Duration,
    pub smtp_connections: usize,
    pub mail_from: lettre::message::Mailbox,
    pub mail_lifetime: Duration,
    pub staff_inbox: Option<lettre::message::Mailbox>,
    pub keys: KeySource,
    pub token_ttl: Duration,
    pub ui_dir: Option<PathBuf>,
    pub auto_release: bool,
    /// None: keep everything.
    pub purge_after: Option<Duration>,
    pub trusted_proxies: Vec<IpNet>,
    /// ASCII origins (`https://www.example.org`), normalised.
    pub allowed_origins: Vec<String>,
    /// None: no limit.
    pub rate_limit_contact: Option<RateLimit>,
    pub rate_limit_verify: Option<RateLimit>,
    pub body_timeout: Duration,
    /// Request headers not complete within this: the connection is closed.
    pub header_timeout: Duration,
    /// At most N automatic verification mails per address per window; None: no cap.
    pub verify_mails_per_address: Option<(u32, Duration)>,
    /// None: no hourly cap.
    pub max_mails_per_hour: Option<u32>,
    pub require_form_token: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("site_name", &self.site_name)
            .field("database_url", &redact_url(&self.database_url))
            .field("mail", &self.mail)
            .field("smtp_timeout", &self.smtp_timeout)
            .field("smtp_connections", &self.smtp_connections)
            .field("mail_from", &self.mail_from.to_string())
            .field("mail_lifetime", &self.mail_lifetime)
            .field("staff_inbox", &self.staff_inbox.as_ref().map(ToString::to_string))
            .field("keys", &self.keys)
            .field("token_ttl", &self.token_ttl)
            .field("ui_dir", &self.ui_dir)
            .field("auto_release", &self.auto_release)
            .field("purge_after", &self.purge_after)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("allowed_origins", &self.allowed_origins)
            .field("rate_limit_contact", &self.rate_limit_contact)
            .field("rate_limit_verify", &self.rate_limit_verify)
            .field("body_timeout", &self.body_timeout)
            .field("header_timeout", &self.header_timeout)
            .field("verify_mails_per_address", &self.verify_mails_per_address)
            .field("max_mails_per_hour", &self.max_mails_per_hour)
            .field("require_form_token", &self.require_form_token)
            .finish()
    }
}

/// Where the signing keys come from; resolved by [`KeySource::load`] at start.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    Inline(Vec<Secret>),
    File(PathBuf),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Inline(k) => write!(f, "Inline([{} redacted])", k.len()),
            KeySource::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// A database URL fit to print: any password in it replaced by `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => raw.to_string(),
        // Not parseable: print only what cannot hold a secret.
        Err(_) => raw
            .split(':')
            .next()
            .map(|scheme| format!("{scheme}:…"))
            .unwrap_or_default(),
    }
}

/// Parses `15s`, `90m`, `72h`, `3d` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write e.g. 15s, 30m, 72h or 3d"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}` has an unknown unit; use s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

/// `1/24h` → (1, 24 h); `0` or `off` → None (no cap).
pub fn parse_per_window(s: &str) -> Result<Option<(u32, Duration)>, String> {
    let s = s.trim();
    if s == "0" || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (n, window) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not a rate; write e.g. 1/24h (or 0 for no cap)"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a rate; write e.g. 1/24h (or 0 for no cap)"))?;
    let window = parse_duration(window)?;
    if n == 0 || window.is_zero() {
        return Ok(None);
    }
    Ok(Some((n, window)))
}

impl Config {
    /// Reads the file (if any) and the environment. `path` None means `./formgate.toml` when it
    /// exists; a path that was asked for must exist.
    pub fn load(path: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file = match path {
            Some(p) => Some(
                std::fs::read_to_string(p).map_err(|e| err("--config", format!("cannot read {}: {e}", p.display())))?,
            ),
            None => std::fs::read_to_string("formgate.toml").ok(),
        };
        let file: FileConfig = match file {
            Some(text) => toml::from_str(&text).map_err(|e| err("formgate.toml", format!("{e}")))?,
            None => FileConfig::default(),
        };
        Self::resolve(file, env)
    }

    /// Builds a configuration from a TOML string and an environment; used by tests.
    pub fn from_toml(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| err("formgate.toml", format!("{e}")))?;
        Self::resolve(file, env)
    }

    fn resolve(file: FileConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // The environment wins over the file, key by key.
        let pick = |key: &str, from_file: Option<String>| -> Option<String> {
            env(&format!("FORMGATE_{}", key.to_ascii_uppercase()))
                .or(from_file)
                .filter(|v| !v.trim().is_empty())
        };

        let listen_raw = pick("listen", file.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            err(
                "listen",
                format!("`{listen_raw}` is not an address; write host:port, e.g. 127.0.0.1:8080"),
            )
        })?;

        let public_url = match pick("public_url", file.public_url) {
            Some(u) => {
                let parsed = url::Url::parse(&u).map_err(|e| {
                    err(
                        "public_url",
                        format!("`{u}` is not a URL ({e}); write e.g. https://forms.example.org"),
                    )
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(err("public_url", "must start with http:// or https://"));
                }
                Some(u.trim_end_matches('/').to_string())
            }
            None => None,
        };

        let site_name = pick("site_name", file.site_name).unwrap_or_else(|| "formgate".into());
        if site_name.chars().any(char::is_control) {
            return Err(err("site_name", "must be one line without control characters"));
        }

        let database_url = pick("database_url", file.database_url).unwrap_or_else(|| "sqlite://formgate.db".into());
        let supported = ["sqlite:", "postgres://", "postgresql://"];
        if !supported.iter().any(|prefix| database_url.starts_with(prefix)) {
            // Name only the scheme: the rest of a database URL may carry a password.
            let shown = match database_url.split_once(':') {
                Some((scheme, _)) => format!("`{scheme}:` URLs are"),
                None => format!("`{database_url}` is"),
            };
            return Err(err(
                "database_url",
                format!("{shown} not supported; use sqlite://PATH or postgres://USER@HOST/DATABASE"),
            ));
        }

        let mail_dir = PathBuf::from(pick("mail_dir", file.mail_dir).unwrap_or_else(|| "./mail-outbox".into()));
        let mail = match pick("smtp_url", file.smtp_url) {
            Some(u) => MailTarget::Smtp(SmtpUrl::parse(&u).map_err(|m| err("smtp_url", m))?),
            None => MailTarget::Dir(mail_dir),
        };

        let duration = |key: &str, v: Option<String>, default: &str| -> Result<Duration, ConfigError> {
            let d = parse_duration(&v.unwrap_or_else(|| default.into())).map_err(|m| err(key, m))?;
            if d.is_zero() {
                return Err(err(key, "must be more than zero"));
            }
            Ok(d)
        };
        let smtp_timeout = duration("smtp_timeout", pick("smtp_timeout", file.smtp_timeout), "15s")?;
        let mail_lifetime = duration("mail_lifetime", pick("mail_lifetime", file.mail_lifetime), "3d")?;
        let token_ttl = duration("token_ttl", pick("token_ttl", file.token_ttl), "72h")?;

        let smtp_connections = match env("FORMGATE_SMTP_CONNECTIONS") {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| err("smtp_connections", format!("`{v}` is not a number")))?,
            None => file.smtp_connections.unwrap_or(4),
        };
        if !(1..=64).contains(&smtp_connections) {
            return Err(err("smtp_connections", "must be between 1 and 64"));
        }

        let mailbox = |key: &str, v: &str| -> Result<lettre::message::Mailbox, ConfigError> {
            v.parse().map_err(|_| {
                err(
                    key,
                    format!("`{v}` is not a mailbox; write e.g. `Example Forms <forms@example.org>`"),
                )
            })
        };
        let mail_from = mailbox(
            "mail_from",
            &pick("mail_from", file.mail_from).unwrap_or_else(|| "formgate <formgate@localhost>".into()),
        )?;
        let staff_inbox = pick("staff_inbox", file.staff_inbox)
            .map(|v| mailbox("staff_inbox", &v))
            .transpose()?;

        let inline_keys = match env("FORMGATE_SECRET_KEYS") {
            Some(v) => Some(
                v.split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect::<Vec<_>>(),
            ),
            None => file.secret_keys,
        };
        let keys = match inline_keys {
            Some(list) => {
                if list.is_empty() {
                    return Err(err(
                        "secret_keys",
                        "is empty; give at least one key, or unset it to use secret_key_file",
                    ));
                }
                if let Some(short) = list.iter().position(|k| k.len() < 32) {
                    return Err(err(
                        "secret_keys",
                        format!(
                            "key #{} is shorter than 32 characters; generate one with `openssl rand -base64 32`",
                            short + 1
                        ),
                    ));
                }
                KeySource::Inline(list.into_iter().map(Secret).collect())
            }
            None => KeySource::File(PathBuf::from(
                pick("secret_key_file", file.secret_key_file).unwrap_or_else(|| "formgate.key".into()),
            )),
        };

        let ui_dir = pick("ui_dir", file.ui_dir).map(PathBuf::from);
        if let Some(dir) = &ui_dir
            && !dir.is_dir()
        {
            return Err(err("ui_dir", format!("`{}` is not a folder", dir.display())));
        }

        let auto_release = match env("FORMGATE_AUTO_RELEASE") {
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => {
                    return Err(err(
                        "auto_release",
                        format!("`{v}` is not a boolean; write true or false"),
                    ));
                }
            },
            None => file.auto_release.unwrap_or(false),
        };
        let purge_days = match env("FORMGATE_PURGE_AFTER_DAYS") {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| err("purge_after_days", format!("`{v}` is not a whole number of days")))?,
            None => file.purge_after_days.unwrap_or(30),
        };
        let purge_after = (purge_days > 0).then(|| Duration::from_secs(u64::from(purge_days) * 86_400));

        // Lists: a TOML array in the file, comma-separated in the environment.
        let list = |key: &str, from_file: Option<Vec<String>>| -> Vec<String> {
            match env(&format!("FORMGATE_{}", key.to_ascii_uppercase())) {
                Some(v) => v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
                None => from_file.unwrap_or_default(),
            }
        };
        let trusted_proxies = list("trusted_proxies", file.trusted_proxies)
            .iter()
            .map(|p| IpNet::parse(p).map_err(|m| err("trusted_proxies", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let allowed_origins = list("allowed_origins", file.allowed_origins)
            .iter()
            .map(|o| {
                let origin = crate::web::edge::origin_of(o).ok_or_else(|| {
                    err(
                        "allowed_origins",
                        format!("`{o}` is not an origin; write e.g. https://www.example.org"),
                    )
                })?;
                if origin != o.trim_end_matches('/') {
                    return Err(err(
                        "allowed_origins",
                        format!("`{o}` has a path; an origin is only scheme://host[:port], e.g. {origin}"),
                    ));
                }
                Ok(origin)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rate_limit = |key: &str, v: Option<String>, default: &str| {
            RateLimit::parse(&v.unwrap_or_else(|| default.into())).map_err(|m| err(key, m))
        };
        let rate_limit_contact = rate_limit(
            "rate_limit_contact",
            pick("rate_limit_contact", file.rate_limit_contact),
            "5/10m",
        )?;
        let rate_limit_verify = rate_limit(
            "rate_limit_verify",
            pick("rate_limit_verify", file.rate_limit_verify),
            "30/10m",
        )?;
        let body_timeout = duration("body_timeout", pick("body_timeout", file.body_timeout), "10s")?;
        let header_timeout = duration("header_timeout", pick("header_timeout", file.header_timeout), "10s")?;

        let per_address_raw =
            pick("verify_mails_per_address", file.verify_mails_per_address).unwrap_or_else(|| "1/24h".into());
        let verify_mails_per_address =
            parse_per_window(&per_address_raw).map_err(|m| err("verify_mails_per_address", m))?;
        let max_mails_per_hour = match env("FORMGATE_MAX_MAILS_PER_HOUR") {
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| err("max_mails_per_hour", format!("`{v}` is not a whole number")))?,
            None => file.max_mails_per_hour.unwrap_or(500),
        };
        let max_mails_per_hour = (max_mails_per_hour > 0).then_some(max_mails_per_hour);
        let require_form_token = match env("FORMGATE_REQUIRE_FORM_TOKEN") {
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => {
                    return Err(err(
                        "require_form_token",
                        format!("`{v}` is not a boolean; write true or false"),
                    ));
                }
            },
            None => file.require_form_token.unwrap_or(false),
        };

        Ok(Config {
            trusted_proxies,
            allowed_origins,
            rate_limit_contact,
            rate_limit_verify,
            body_timeout,
            header_timeout,
            verify_mails_per_address,
            max_mails_per_hour,
            require_form_token,
            auto_release,
            purge_after,
            listen,
            public_url,
            site_name,
            database_url,
            mail,
            smtp_timeout,
            smtp_connections,
            mail_from,
            mail_lifetime,
            staff_inbox,
            keys,
            token_ttl,
            ui_dir,
        })
    }

    /// A configuration for tests and embedding: everything default except what the caller sets.
    pub fn for_tests(database_url: String, mail: MailTarget) -> Config {
        let mut c = Self::resolve(FileConfig::default(), &|_| None).expect("defaults are valid");
        c.listen = "127.0.0.1:0".parse().expect("valid address");
        c.database_url = database_url;
        c.mail = mail;
        c.keys = KeySource::Inline(vec![Secret("test-key-0123456789-0123456789-0123456789".into())]);
        // Every test client is 127.0.0.1: tests that are about rate limits turn them back on.
        c.rate_limit_contact = None;
        c.rate_limit_verify = None;
        // Tests mail one address many times; the abuse tests turn the caps on themselves.
        c.verify_mails_per_address = None;
        c.max_mails_per_hour = None;
        c
    }
}

impl KeySource {
    /// The signing keys; with a key file that does not exist yet, one is generated (mode 0600).
    /// Returns the keys and, when a file was created, its path (so `serve` can say so).
    pub fn load(&self) -> Result<(Keys, Option<PathBuf>), ConfigError> {
        match self {
            KeySource::Inline(list) => {
                let keys = Keys::new(list.iter().map(|s| s.0.as_bytes().to_vec()).collect())
                    .map_err(|m| err("secret_keys", m))?;
                Ok((keys, None))
            }
            KeySource::File(path) => {
                let created = if path.exists() {
                    None
                } else {
                    write_new_key_file(path)
                        .map_err(|e| err("secret_key_file", format!("cannot create {}: {e}", path.display())))?;
                    Some(path.clone())
                };
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err("secret_key_file", format!("cannot read {}: {e}", path.display())))?;
                let lines: Vec<Vec<u8>> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| l.as_bytes().to_vec())
                    .collect();
                let keys = Keys::new(lines).map_err(|m| {
                    err(
                        "secret_key_file",
                        format!("{}: {m} (one key per line, first signs)", path.display()),
                    )
                })?;
                Ok((keys, created))
            }
        }
    }
}

fn write_new_key_file(path: &Path) -> std::io::Result<()> {
    use base64::Engine;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // create_new: never overwrite a key another instance wrote a moment ago.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(
        f,
        "# formgate signing keys: one per line, the first signs, all verify. Keep this file secret."
    )?;
    writeln!(f, "{key}")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::from_toml("", &no_env).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, None);
        assert_eq!(c.database_url, "sqlite://formgate.db");
        assert_eq!(c.mail, MailTarget::Dir(PathBuf::from("./mail-outbox")));
        assert_eq!(c.token_ttl, Duration::from_secs(72 * 3600));
        assert_eq!(c.mail_lifetime, Duration::from_secs(3 * 86_400));
        assert_eq!(c.keys, KeySource::File(PathBuf::from("formgate.key")));
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = |k: &str| (k == "FORMGATE_LISTEN").then(|| "0.0.0.0:9000".to_string());
        let c = Config::from_toml("listen = \"127.0.0.1:1\"\ntoken_ttl = \"2h\"", &env).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.token_ttl, Duration::from_secs(7200));
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let e = Config::from_toml("listen = \"nowhere\"", &no_env).unwrap_err();
        assert_eq!(e.key, "listen");
        assert!(e.to_string().contains("host:port"), "{e}");
        let e = Config::from_toml("token_ttl = \"3 weeks\"", &no_env).unwrap_err();
        assert_eq!(e.key, "token_ttl");
        let e = Config::from_toml("smtp_url = \"http://x\"", &no_env).unwrap_err();
        assert!(e.to_string().contains("smtp://"), "{e}");
        let e = Config::from_toml("secret_keys = [\"short\"]", &no_env).unwrap_err();
        assert!(e.to_string().contains("32"), "{e}");
        let e = Config::from_toml("lisen = \"x\"", &no_env).unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
    }

    #[test]
    fn database_urls_are_sqlite_or_postgres_and_errors_hide_the_password() {
        for ok in [
            "sqlite://x.db",
            "postgres://u@db/formgate",
            "postgresql://u:pw@db:5432/formgate",
        ] {
            let c = Config::from_toml(&format!("database_url = \"{ok}\""), &no_env).unwrap();
            assert_eq!(c.database_url, ok);
        }
        let e = Config::from_toml("database_url = \"mysql://u:hunter2@db/x\"", &no_env).unwrap_err();
        assert_eq!(e.key, "database_url");
        assert!(
            e.to_string().contains("mysql:") && e.to_string().contains("postgres://"),
            "{e}"
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn smtp_urls_follow_lettre_conventions_and_hide_the_password() {
        let u = SmtpUrl::parse("smtp://me%40x.org:p%2Fw@mail.example.org:587?tls=required").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("mail.example.org", 587, SmtpTls::Required)
        );
        let (user, pass) = u.credentials.clone().unwrap();
        assert_eq!((user.as_str(), pass.0.as_str()), ("me@x.org", "p/w"));
        assert!(!format!("{u:?}").contains("p/w"));
        let s = SmtpUrl::parse("smtps://mail.example.org").unwrap();
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        assert_eq!(SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap().tls, SmtpTls::None);
    }

    #[test]
    fn secrets_never_print() {
        let env =
            |k: &str| (k == "FORMGATE_SECRET_KEYS").then(|| "a-very-secret-key-that-is-long-enough-1234".to_string());
        let c = Config::from_toml("", &env).unwrap();
        assert!(!format!("{c:?}").contains("a-very-secret"));
    }

    #[test]
    fn a_missing_key_file_is_generated_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k").join("formgate.key");
        let (_, created) = KeySource::File(path.clone()).load().unwrap();
        assert_eq!(created.as_deref(), Some(path.as_path()));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // Loading again reuses it.
        let (_, created) = KeySource::File(path).load().unwrap();
        assert!(created.is_none());
    }

    #[test]
    fn database_passwords_never_print() {
        assert_eq!(
            redact_url("postgres://fg:s3cret@db.example.org/formgate"),
            "postgres://fg:***@db.example.org/formgate"
        );
        assert_eq!(redact_url("sqlite://formgate.db"), "sqlite://formgate.db");
        let c = Config::from_toml("database_url = \"postgres://fg:s3cret@db/x\"", &no_env).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn the_readme_documents_every_key() {
        let readme = include_str!("../../README.md");
        for (key, _, _) in KEYS {
            assert!(
                readme.contains(&format!("| `{key}` |")),
                "README's configuration table lacks `{key}`"
            );
        }
    }

    #[test]
    fn edge_keys_have_safe_defaults_and_bad_values_name_the_key() {
        let c = Config::from_toml("", &no_env).unwrap();
        assert!(c.trusted_proxies.is_empty() && c.allowed_origins.is_empty());
        assert_eq!(c.rate_limit_contact.map(|l| (l.max, l.window_secs)), Some((5, 600)));
        assert_eq!(c.rate_limit_verify.map(|l| (l.max, l.window_secs)), Some((30, 600)));
        assert_eq!(c.body_timeout, Duration::from_secs(10));
        assert_eq!(c.header_timeout, Duration::from_secs(10));
        let c = Config::from_toml(
            "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nallowed_origins = [\"https://www.example.org/\"]\nrate_limit_contact = \"0\"",
            &no_env,
        )
        .unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.allowed_origins, vec!["https://www.example.org".to_string()]);
        assert_eq!(c.rate_limit_contact, None);
        let env = |k: &str| (k == "FORMGATE_TRUSTED_PROXIES").then(|| "127.0.0.1, 10.0.0.0/8".to_string());
        assert_eq!(Config::from_toml("", &env).unwrap().trusted_proxies.len(), 2);
        for (toml, key) in [
            ("trusted_proxies = [\"10.0.0.0/40\"]", "trusted_proxies"),
            ("allowed_origins = [\"www.example.org\"]", "allowed_origins"),
            ("allowed_origins = [\"https://x.org/form\"]", "allowed_origins"),
            ("rate_limit_contact = \"lots\"", "rate_limit_contact"),
            ("rate_limit_verify = \"5/10w\"", "rate_limit_verify"),
            ("body_timeout = \"0s\"", "body_timeout"),
            ("header_timeout = \"0s\"", "header_timeout"),
        ] {
            let e = Config::from_toml(toml, &no_env).unwrap_err();
            assert_eq!(e.key, key, "{toml}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("3d").unwrap(), Duration::from_secs(259_200));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("5w").is_err());
    }
}
