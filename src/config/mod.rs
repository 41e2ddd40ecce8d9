//! Configuration: defaults, then `formgate.toml` (or `--config PATH`), then `FORMGATE_<KEY>`
//! environment variables. A bad value fails at start with the key's name, where the value came
//! from and how to fix it. Secrets (signing keys, the SMTP password) never print: their `Debug`
//! is redacted.
//!
//! - `table.rs`: every setting, its type, default and meaning (the one place a default is written;
//!   the README's table follows it).
//! - `values.rs`: the value types, one parse function each (`Value`).
//! - `layers.rs`: the one layering step, default → file → environment, and how a per-form table
//!   will inherit the top-level values.
//! - `smtp.rs`: `smtp_url`.

pub mod forms;
mod layers;
mod moderators;
mod smtp;
pub mod table;
mod values;
pub mod webhooks;

pub use layers::{ConfigError, Key, KeyDefault, Layers, Optional, Setting, Source, Value};
pub use smtp::{SmtpTls, SmtpUrl};
pub use table::KEYS;
pub use values::{IpNet, LogFormat, Origin, RateLimit, Secret, parse_duration, parse_per_window};

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use layers::err;
use table::*;

use crate::token::Keys;

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
    /// None: mails go out unsigned.
    pub dkim: Option<DkimSettings>,
    /// Resolved even without `dkim`: `dkim-record --generate` names a new key with it.
    pub dkim_selector: String,
    /// Where released messages go (every form's unless it sets its own); empty: not mailed.
    pub staff_inbox: Vec<lettre::message::Mailbox>,
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
    pub log_format: LogFormat,
    /// None: the listener closes as soon as shutdown begins.
    pub shutdown_grace: Option<Duration>,
    /// None: no metrics listener.
    pub metrics_listen: Option<SocketAddr>,
    /// None: no SSH dashboard.
    pub ssh_listen: Option<SocketAddr>,
    pub ssh_host_key_file: PathBuf,
    pub ssh_max_sessions: usize,
    pub ssh_idle_timeout: Duration,
    /// `[[moderators]]`: who may log in over SSH.
    pub moderators: Vec<crate::ssh::Moderator>,
    /// At most N automatic verification mails per address per window; None: no cap.
    pub verify_mails_per_address: Option<(u32, Duration)>,
    /// None: no hourly cap.
    pub max_mails_per_hour: Option<u32>,
    pub require_form_token: bool,
    /// The form at `/` and `/contact`.
    pub default_form: String,
    /// The default form's title when it sets none (None: `Contact <site_name>`).
    pub title: Option<String>,
    pub thank_you_url: Option<String>,
    /// What each `[forms.NAME]` table sets; empty: one open form, `default_form`.
    pub forms: Vec<forms::FormTable>,
    /// `[[webhooks]]`: every form's unless it lists its own.
    pub webhooks: Vec<crate::webhook::Webhook>,
    pub confirmation_mail: bool,
    pub webhook_lifetime: Duration,
    pub webhook_allow_private: bool,
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
            .field("dkim", &self.dkim)
            .field("dkim_selector", &self.dkim_selector)
            .field(
                "staff_inbox",
                &self.staff_inbox.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
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
            .field("log_format", &self.log_format)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("metrics_listen", &self.metrics_listen)
            .field("ssh_listen", &self.ssh_listen)
            .field("ssh_host_key_file", &self.ssh_host_key_file)
            .field("ssh_max_sessions", &self.ssh_max_sessions)
            .field("ssh_idle_timeout", &self.ssh_idle_timeout)
            .field("moderators", &self.moderators)
            .field("verify_mails_per_address", &self.verify_mails_per_address)
            .field("max_mails_per_hour", &self.max_mails_per_hour)
            .field("require_form_token", &self.require_form_token)
            .field("default_form", &self.default_form)
            .field("title", &self.title)
            .field("thank_you_url", &self.thank_you_url)
            .field("confirmation_mail", &self.confirmation_mail)
            .field("webhooks", &self.webhooks)
            .field("webhook_lifetime", &self.webhook_lifetime)
            .field("webhook_allow_private", &self.webhook_allow_private)
            .field("forms", &self.forms)
            .finish()
    }
}

/// How mails are DKIM-signed (`dkim_domain`, `dkim_key_file`, with `dkim_selector`); the key is
/// read by `mail::DkimSigner::load` at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkimSettings {
    pub domain: String,
    pub key_file: PathBuf,
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

/// What the file holds, checked against the table: a key it does not know is refused (a typo
/// should not pass silently).
fn parse_file(text: &str, label: &str) -> Result<toml::Table, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| err("formgate.toml", format!("{e}")))?;
    if let Some(unknown) = table.keys().find(|k| {
        !matches!(k.as_str(), "forms" | "webhooks" | "moderators") && !KEYS.iter().any(|key| key.name == k.as_str())
    }) {
        let known: Vec<&str> = KEYS.iter().map(|key| key.name).collect();
        return Err(ConfigError {
            key: unknown.clone(),
            message: format!("formgate has no such key; the keys are {}", known.join(", ")),
            from: Some(Source::File(label.to_string())),
        });
    }
    Ok(table)
}

impl Config {
    /// Reads the file (if any) and the environment. `path` None means `./formgate.toml` when it
    /// exists; a path that was asked for must exist.
    pub fn load(path: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let (text, label) = match path {
            Some(p) => (
                Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| err("--config", format!("cannot read {}: {e}", p.display())))?,
                ),
                p.display().to_string(),
            ),
            None => (
                std::fs::read_to_string("formgate.toml").ok(),
                "formgate.toml".to_string(),
            ),
        };
        let table = match text {
            Some(text) => parse_file(&text, &label)?,
            None => toml::Table::new(),
        };
        Self::resolve(&Layers::new(&table, label, env, "FORMGATE_"))
    }

    /// Builds a configuration from a TOML string and an environment; used by tests.
    pub fn from_toml(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let table = parse_file(text, "formgate.toml")?;
        Self::resolve(&Layers::new(&table, "formgate.toml", env, "FORMGATE_"))
    }

    /// Each field from its setting in the table; only the fields several keys decide (`mail`,
    /// `keys`, `dkim`) are put together here.
    fn resolve(l: &Layers) -> Result<Config, ConfigError> {
        let mail = match SMTP_URL.resolve(l)? {
            Some(url) => MailTarget::Smtp(url),
            None => MailTarget::Dir(MAIL_DIR.resolve(l)?),
        };
        let keys = match SECRET_KEYS.resolve(l)? {
            Some(inline) => KeySource::Inline(inline.0),
            None => KeySource::File(SECRET_KEY_FILE.resolve(l)?),
        };
        // Both or neither: a domain without a key (or a key without a domain) signs nothing, and
        // saying so at start beats mail that silently goes out unsigned.
        let dkim = match (DKIM_DOMAIN.resolve(l)?, DKIM_KEY_FILE.resolve(l)?) {
            (Some(domain), Some(key_file)) => Some(DkimSettings {
                domain: domain.0,
                key_file,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(err(
                    "dkim_key_file",
                    "is unset but dkim_domain is set: set both to sign mail (see DKIM in the README), or neither",
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "dkim_domain",
                    "is unset but dkim_key_file is set: set both to sign mail (see DKIM in the README), or neither",
                ));
            }
        };
        Config {
            listen: LISTEN.resolve(l)?,
            public_url: PUBLIC_URL.resolve(l)?.map(|u| u.0),
            site_name: SITE_NAME.resolve(l)?.0,
            database_url: DATABASE_URL.resolve(l)?.0,
            mail,
            smtp_timeout: SMTP_TIMEOUT.resolve(l)?,
            smtp_connections: SMTP_CONNECTIONS.resolve(l)?.0,
            mail_from: MAIL_FROM.resolve(l)?,
            mail_lifetime: MAIL_LIFETIME.resolve(l)?,
            dkim,
            dkim_selector: DKIM_SELECTOR.resolve(l)?.0,
            staff_inbox: STAFF_INBOX.resolve(l)?.map(|i| i.0).unwrap_or_default(),
            keys,
            token_ttl: TOKEN_TTL.resolve(l)?,
            ui_dir: UI_DIR.resolve(l)?.map(|d| d.0),
            auto_release: AUTO_RELEASE.resolve(l)?,
            purge_after: PURGE_AFTER_DAYS.resolve(l)?.0,
            trusted_proxies: TRUSTED_PROXIES.resolve(l)?.map(|l| l.0).unwrap_or_default(),
            allowed_origins: ALLOWED_ORIGINS
                .resolve(l)?
                .map(|l| l.0.into_iter().map(|o| o.0).collect())
                .unwrap_or_default(),
            rate_limit_contact: RATE_LIMIT_CONTACT.resolve(l)?,
            rate_limit_verify: RATE_LIMIT_VERIFY.resolve(l)?,
            body_timeout: BODY_TIMEOUT.resolve(l)?,
            header_timeout: HEADER_TIMEOUT.resolve(l)?,
            log_format: LOG_FORMAT.resolve(l)?,
            shutdown_grace: SHUTDOWN_GRACE.resolve(l)?,
            metrics_listen: METRICS_LISTEN.resolve(l)?,
            ssh_listen: SSH_LISTEN.resolve(l)?,
            ssh_host_key_file: SSH_HOST_KEY_FILE.resolve(l)?,
            ssh_max_sessions: SSH_MAX_SESSIONS.resolve(l)?.0,
            ssh_idle_timeout: SSH_IDLE_TIMEOUT.resolve(l)?,
            moderators: moderators::parse_moderators(l.raw("moderators"), l.label())?,
            verify_mails_per_address: VERIFY_MAILS_PER_ADDRESS.resolve(l)?.0,
            max_mails_per_hour: MAX_MAILS_PER_HOUR.resolve(l)?.0,
            require_form_token: REQUIRE_FORM_TOKEN.resolve(l)?,
            default_form: DEFAULT_FORM.resolve(l)?.0,
            title: TITLE.resolve(l)?.map(|t| t.0),
            thank_you_url: THANK_YOU_URL.resolve(l)?.map(|u| u.0),
            forms: forms::parse_forms(l.raw("forms"), l.label(), l.env())?,
            webhooks: webhooks::parse_webhooks(l.raw("webhooks"), "webhooks", l.label())?.unwrap_or_default(),
            confirmation_mail: CONFIRMATION_MAIL.resolve(l)?,
            webhook_lifetime: WEBHOOK_LIFETIME.resolve(l)?,
            webhook_allow_private: WEBHOOK_ALLOW_PRIVATE.resolve(l)?,
        }
        .checked_forms()
    }

    /// `default_form` must name a form when there are `[forms.NAME]` tables.
    fn checked_forms(self) -> Result<Config, ConfigError> {
        if !self.forms.is_empty() && !self.forms.iter().any(|f| f.slug == self.default_form) {
            let names: Vec<&str> = self.forms.iter().map(|f| f.slug.as_str()).collect();
            return Err(ConfigError {
                key: "default_form".into(),
                message: format!(
                    "there is no form `{}`; the forms are {} (set `default_form` to one of them, or add `[forms.{}]`)",
                    self.default_form,
                    names.join(", "),
                    self.default_form
                ),
                from: None,
            });
        }
        Ok(self)
    }

    /// The base of links for commands that run without the listener (the verbs, `formgate forms`):
    /// `public_url`, else `http://<listen>`.
    pub fn link_base(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// Every form with its settings resolved: what the form's table sets, else the top-level
    /// value. With no `[forms.NAME]` table, one open form, `default_form`, as formgate always had.
    pub fn forms(&self) -> Vec<crate::forms::Form> {
        let top = forms::FormTable {
            slug: self.default_form.clone(),
            ..forms::FormTable::default()
        };
        let tables = if self.forms.is_empty() {
            std::slice::from_ref(&top)
        } else {
            &self.forms[..]
        };
        tables
            .iter()
            .map(|t| {
                let site_name = t.site_name.clone().unwrap_or_else(|| self.site_name.clone());
                let title = t
                    .title
                    .clone()
                    .or_else(|| self.title.clone())
                    .unwrap_or_else(|| format!("Contact {site_name}"));
                crate::forms::Form {
                    slug: t.slug.clone(),
                    title,
                    site_name,
                    staff_inbox: t.staff_inbox.clone().unwrap_or_else(|| self.staff_inbox.clone()),
                    allowed_origins: t
                        .allowed_origins
                        .clone()
                        .unwrap_or_else(|| self.allowed_origins.clone()),
                    auto_release: t.auto_release.unwrap_or(self.auto_release),
                    thank_you_url: t.thank_you_url.clone().or_else(|| self.thank_you_url.clone()),
                    require_form_token: t.require_form_token.unwrap_or(self.require_form_token),
                    ui_dir: t.ui_dir.clone().or_else(|| self.ui_dir.clone()),
                    fields: t.fields.clone(),
                    webhooks: t.webhooks.clone().unwrap_or_else(|| self.webhooks.clone()),
                    confirmation_mail: t.confirmation_mail.unwrap_or(self.confirmation_mail),
                }
            })
            .collect()
    }

    /// A configuration for tests and embedding: everything default except what the caller sets.
    ///
    /// # Panics
    /// If the table's defaults do not parse (a unit test of the table fails first).
    pub fn for_tests(database_url: String, mail: MailTarget) -> Config {
        let no_env = |_: &str| None;
        let table = toml::Table::new();
        let mut c = Self::resolve(&Layers::new(&table, "formgate.toml", &no_env, "FORMGATE_"))
            .unwrap_or_else(|e| panic!("the built-in defaults are invalid: {e}"));
        c.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
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
                // Two instances started at once may both find no file: the one whose key lands
                // first wins, and the other reads that key instead of failing.
                let created = if path.exists() {
                    None
                } else {
                    match write_new_key_file(path) {
                        Ok(()) => Some(path.clone()),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => None,
                        Err(e) => {
                            return Err(err("secret_key_file", format!("cannot create {}: {e}", path.display())));
                        }
                    }
                };
                let keys = read_key_file(path)?;
                Ok((keys, created))
            }
        }
    }
}

/// The keys in `path`. A file with no key yet is read again for up to a second: it may be one
/// that something other than formgate (an older version, the operator) is still writing;
/// formgate's own appear whole (`write_secret_file`).
fn read_key_file(path: &Path) -> Result<Keys, ConfigError> {
    let mut tries = 0;
    loop {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("secret_key_file", format!("cannot read {}: {e}", path.display())))?;
        let lines: Vec<Vec<u8>> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        if lines.is_empty() && tries < 20 {
            tries += 1;
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        return Keys::new(lines).map_err(|m| {
            err(
                "secret_key_file",
                format!("{}: {m} (one key per line, first signs)", path.display()),
            )
        });
    }
}

fn write_new_key_file(path: &Path) -> std::io::Result<()> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    write_secret_file(
        path,
        &format!("# formgate signing keys: one per line, the first signs, all verify. Keep this file secret.\n{key}\n"),
    )
}

/// Creates `path` (and its folder) with mode 0600 holding `text`, synced to disk. Never
/// overwrites (`AlreadyExists`), so a key another instance (or the operator) wrote a moment ago
/// stays. Atomic: the text is written to a temporary file that is then hard-linked to `path`,
/// so whoever opens `path` reads all of it, never a part.
pub fn write_secret_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let name = path.file_name().map_or_else(|| "key".into(), |n| n.to_string_lossy());
    let rand = crate::token::random_bytes::<6>();
    let suffix: String = rand.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_file_name(format!(".{name}.{suffix}.tmp"));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // `link`, unlike `rename`, fails when `path` exists: first writer wins.
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        // A file system without hard links: create in place, as before (not atomic).
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        }
        other => other,
    }
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

    /// Two instances started at once in one folder: every one starts, on the one key the first
    /// wrote, and no temporary file is left behind.
    #[test]
    fn instances_started_at_once_share_the_key_the_first_one_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("formgate.key");
        for round in 0..20 {
            let _ = std::fs::remove_file(&path);
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let loads: Vec<_> = (0..8)
                .map(|_| {
                    let (start, path) = (start.clone(), path.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        KeySource::File(path).load().map(|(_, created)| created.is_some())
                    })
                })
                .collect();
            let created: Vec<bool> = loads
                .into_iter()
                .map(|t| t.join().unwrap().unwrap_or_else(|e| panic!("round {round}: {e}")))
                .collect();
            assert_eq!(created.iter().filter(|c| **c).count(), 1, "round {round}: one wrote it");
        }
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, ["formgate.key"]);
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
        for key in KEYS.iter().map(|k| k.name) {
            assert!(
                readme.contains(&format!("| `{key}` |")),
                "README's configuration table lacks `{key}`"
            );
        }
    }

    /// The README's configuration table is this table: each row word for word, no row more.
    #[test]
    fn the_readme_table_follows_the_key_table() {
        let readme = include_str!("../../README.md");
        let rows: Vec<&str> = readme
            .lines()
            .skip_while(|l| *l != "| key | default | meaning |")
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .collect();
        for key in KEYS {
            let row = format!("| `{}` | {} | {} |", key.name, key.default.readme(), key.doc);
            assert!(
                rows.contains(&row.as_str()),
                "README's row for `{}` should read\n{row}",
                key.name
            );
        }
        assert_eq!(
            rows.len(),
            KEYS.len(),
            "README's configuration table has rows the key table lacks"
        );
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused_by_name() {
        let e = Config::from_toml("lisen = \"x\"", &no_env).unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.from.clone()),
            ("lisen", Some(Source::File("formgate.toml".into())))
        );
        assert!(e.message.contains("the keys are listen, public_url"), "{e}");
    }

    #[test]
    fn values_of_the_wrong_toml_type_name_the_key() {
        for (toml, key, says) in [
            ("auto_release = \"yes\"", "auto_release", "write true or false"),
            ("smtp_connections = \"4\"", "smtp_connections", "write a whole number"),
            (
                "trusted_proxies = \"10.0.0.0/8\"",
                "trusted_proxies",
                "write a list of strings",
            ),
            ("token_ttl = 3600", "token_ttl", "write it as a string"),
        ] {
            let e = Config::from_toml(toml, &no_env).unwrap_err();
            assert_eq!(e.key, key, "{toml}: {e}");
            assert!(e.to_string().contains(says), "{toml}: {e}");
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
    fn dkim_is_all_or_nothing() {
        let c = Config::from_toml("", &no_env).unwrap();
        assert_eq!(c.dkim, None);
        let c = Config::from_toml("dkim_domain = \"Example.org.\"\ndkim_key_file = \"dkim.pem\"", &no_env).unwrap();
        assert_eq!(
            c.dkim,
            Some(DkimSettings {
                domain: "example.org".into(),
                key_file: PathBuf::from("dkim.pem"),
            })
        );
        assert_eq!(c.dkim_selector, "formgate");
        let e = Config::from_toml("dkim_domain = \"example.org\"", &no_env).unwrap_err();
        assert_eq!(e.key, "dkim_key_file", "{e}");
        let e = Config::from_toml("dkim_key_file = \"dkim.pem\"", &no_env).unwrap_err();
        assert_eq!(e.key, "dkim_domain", "{e}");
        let e = Config::from_toml("dkim_domain = \"not a domain\"", &no_env).unwrap_err();
        assert_eq!(e.key, "dkim_domain", "{e}");
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
