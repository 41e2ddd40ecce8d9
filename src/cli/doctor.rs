//! `formgate doctor`: looks at everything `serve` depends on, changes nothing and sends no mail.
//! One line per check, `ok`, `warn` or `FAIL`, each failure with what to do; exit 1 if any failed.

use std::fmt;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::{Config, ConfigError, KeySource, MailTarget, SmtpTls};
use crate::mail::Transport;
use crate::store::Inspection;

/// Mail queued this long and still failing is "long-retrying".
const LONG_RETRY: Duration = Duration::from_secs(3600);
/// Due mail waiting longer than this: the outbox is slow (warn) …
const DUE_WARN: Duration = Duration::from_secs(10 * 60);
/// … or nothing is sending it (FAIL).
const DUE_FAIL: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Check {
    level: Level,
    name: &'static str,
    text: String,
}

impl Check {
    fn new(level: Level, name: &'static str, text: impl Into<String>) -> Check {
        Check {
            level,
            name,
            text: text.into(),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        write!(f, "{level:<5} {:<14} {}", self.name, self.text)
    }
}

/// `loaded`: the configuration as `run` loaded it (`source`: where from, for the first line).
pub async fn doctor(loaded: Result<Config, ConfigError>, source: &str) -> ExitCode {
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            println!(
                "{}",
                Check::new(
                    Level::Fail,
                    "configuration",
                    format!("{e} — fix that value (in {source}); nothing else can be checked")
                )
            );
            return ExitCode::FAILURE;
        }
    };
    // Each line as soon as its check is done: the SMTP check can take up to `smtp_timeout`.
    let mut failed = false;
    let mut report = |check: Check| {
        println!("{check}");
        failed |= check.level == Level::Fail;
    };
    report(Check::new(Level::Ok, "configuration", format!("loaded from {source}")));
    let forms = config.forms();
    if forms.iter().any(|f| !f.webhooks.is_empty()) {
        report(
            match crate::webhook::send::check_addresses(forms.iter(), config.webhook_allow_private).await {
                Ok(()) => Check::new(Level::Ok, "webhooks", "every webhook's address may be reached"),
                Err(e) => Check::new(Level::Fail, "webhooks", format!("{e} (`serve` would not start)")),
            },
        );
    }
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let inspected = crate::store::inspect(&config.database_url, now, now - crate::clock::seconds(LONG_RETRY)).await;
    report(database(&config, &inspected));
    report(signing_keys(&config.keys));
    if let Some(dkim) = &config.dkim {
        report(dkim_key(&config, dkim));
    }
    report(mail(&config).await);
    report(public_url(&config));
    if config.ssh_listen.is_some() {
        report(ssh(&config));
    }
    if let Ok(Some(found)) = &inspected {
        report(outbox(found, now));
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn database(config: &Config, inspected: &Result<Option<Inspection>, crate::store::StoreError>) -> Check {
    let shown = crate::config::redact_url(&config.database_url);
    let version = |v: Option<i64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
    match inspected {
        Ok(None) => Check::new(
            Level::Warn,
            "database",
            format!("{shown} does not exist yet: `formgate migrate` or the first `serve` creates it"),
        ),
        Err(e) => Check::new(
            Level::Fail,
            "database",
            format!("{shown}: {e} — check database_url, that the database server runs and that this user may connect"),
        ),
        Ok(Some(found)) if found.migrations_current() => Check::new(
            Level::Ok,
            "database",
            format!("{shown} answers; migrations current ({})", version(found.applied)),
        ),
        Ok(Some(found)) if found.applied.unwrap_or(0) < found.built_in.unwrap_or(0) => Check::new(
            Level::Fail,
            "database",
            format!(
                "{shown}: migrations behind (database at {}, this formgate has {}) — run `formgate migrate`",
                version(found.applied),
                version(found.built_in)
            ),
        ),
        Ok(Some(found)) => Check::new(
            Level::Fail,
            "database",
            format!(
                "{shown}: migrated by a newer formgate (database at {}, this one has {}) — run that version",
                version(found.applied),
                version(found.built_in)
            ),
        ),
    }
}

/// The SSH dashboard: someone who may log in, and a host key that is ours alone.
fn ssh(config: &Config) -> Check {
    let name = "ssh";
    if config.moderators.is_empty() {
        return Check::new(
            Level::Fail,
            name,
            "ssh_listen is set but no [[moderators]] are: nobody could log in (`serve` would not start)",
        );
    }
    let path = &config.ssh_host_key_file;
    if !path.exists() {
        return Check::new(
            Level::Warn,
            name,
            format!(
                "no host key at {} yet: `serve` makes one on its first start; check its fingerprint then",
                path.display()
            ),
        );
    }
    match crate::ssh::host_key::load(path) {
        Err(e) => Check::new(
            Level::Fail,
            name,
            format!("{e:#} — move it away and `serve` makes a new one"),
        ),
        Ok(key) => match private_file(path, "ssh_host_key_file") {
            Some(problem) => Check::new(
                Level::Fail,
                name,
                format!("{problem}: anyone who reads it can pose as this server"),
            ),
            None => Check::new(
                Level::Ok,
                name,
                format!(
                    "host key {} ({}), {} moderator(s)",
                    crate::ssh::host_key::fingerprint(&key),
                    path.display(),
                    config.moderators.len()
                ),
            ),
        },
    }
}

/// A key file anyone but its owner can read lets them forge verification links.
fn private_file(path: &Path, key: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is readable by others (mode {mode:04o}; `{key}`) — run `chmod 600 {}`",
            path.display(),
            path.display()
        )
    })
}

fn signing_keys(keys: &KeySource) -> Check {
    let name = "signing keys";
    if let KeySource::File(path) = keys {
        if !path.exists() {
            return Check::new(
                Level::Warn,
                name,
                format!(
                    "{} does not exist yet: the first `serve` generates it (mode 0600); keep it with the backups",
                    path.display()
                ),
            );
        }
        if let Some(problem) = private_file(path, "secret_key_file") {
            return Check::new(Level::Fail, name, problem);
        }
    }
    // The file exists: `load` only reads it.
    match keys.load() {
        Ok(_) => Check::new(
            Level::Ok,
            name,
            match keys {
                KeySource::Inline(k) => format!("{} from secret_keys, each at least 32 bytes", k.len()),
                KeySource::File(p) => format!("{}: mode 0600, each key at least 32 bytes", p.display()),
            },
        ),
        Err(e) => Check::new(
            Level::Fail,
            name,
            format!("{e} — `head -c 48 /dev/urandom | base64` makes a good key"),
        ),
    }
}

fn dkim_key(config: &Config, dkim: &crate::config::DkimSettings) -> Check {
    if let Some(problem) = private_file(&dkim.key_file, "dkim_key_file") {
        return Check::new(Level::Fail, "DKIM key", problem);
    }
    match crate::mail::DkimSigner::load(dkim, &config.dkim_selector) {
        Ok(_) => Check::new(
            Level::Ok,
            "DKIM key",
            format!(
                "{} signs as {}._domainkey.{} (`formgate dkim-record` prints its DNS record)",
                dkim.key_file.display(),
                config.dkim_selector,
                dkim.domain
            ),
        ),
        Err(e) => Check::new(Level::Fail, "DKIM key", format!("{e} — see DKIM in the README")),
    }
}

async fn mail(config: &Config) -> Check {
    match &config.mail {
        MailTarget::Smtp(url) => {
            let steps = [
                Some("EHLO"),
                match url.tls {
                    SmtpTls::Required => Some("STARTTLS"),
                    SmtpTls::Opportunistic => Some("STARTTLS if offered"),
                    SmtpTls::None | SmtpTls::Implicit => None,
                },
                url.credentials.as_ref().map(|_| "AUTH"),
                Some("QUIT"),
            ];
            let steps: Vec<&str> = steps.into_iter().flatten().collect();
            let server = format!("{}:{}", url.host, url.port);
            let transport = Transport::new(&config.mail, config.smtp_timeout, None);
            match transport.check_smtp().await {
                Some(Ok(())) | None => Check::new(
                    Level::Ok,
                    "smtp",
                    format!("{server}: connected, {}; no mail sent", steps.join(", ")),
                ),
                Some(Err(e)) => {
                    // Connection failures name the server already; the server's own replies do not.
                    let said = e.to_string();
                    let said = if said.contains(&server) {
                        said
                    } else {
                        format!("{server}: {said}")
                    };
                    Check::new(
                        Level::Fail,
                        "smtp",
                        format!(
                            "{said} — check smtp_url (host, port, tls=, user and password) and that this machine may reach it"
                        ),
                    )
                }
            }
        }
        MailTarget::Dir(dir) => match writable(dir) {
            Ok(()) => Check::new(
                Level::Warn,
                "mail",
                format!(
                    "no smtp_url: mail is written as .eml files to {} (writable), not sent — set smtp_url to deliver it",
                    dir.display()
                ),
            ),
            Err(e) => Check::new(
                Level::Fail,
                "mail",
                format!(
                    "no smtp_url, and mail_dir {} is not writable: {e} — fix its owner or mode, or set smtp_url",
                    dir.display()
                ),
            ),
        },
    }
}

/// Whether files can be made in `dir`, or in the folder `serve` would create it in.
fn writable(dir: &Path) -> std::io::Result<()> {
    let existing = dir.ancestors().find(|a| a.is_dir()).unwrap_or(Path::new("."));
    let probe = existing.join(format!(".formgate-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

fn public_url(config: &Config) -> Check {
    match &config.public_url {
        None => Check::new(
            Level::Warn,
            "public_url",
            format!(
                "unset: links in mails point at {}, which visitors' browsers may not reach — set public_url = \"https://…\"",
                config.link_base()
            ),
        ),
        Some(url) if url.starts_with("https://") => Check::new(Level::Ok, "public_url", url.clone()),
        Some(url) => Check::new(
            Level::Warn,
            "public_url",
            format!("{url} is not https: verification links travel in clear text — serve it behind TLS"),
        ),
    }
}

fn outbox(found: &Inspection, now: i64) -> Check {
    let waiting = found.oldest_due.map(|due| now.saturating_sub(due));
    let age = |secs: i64| crate::cli::output::age(now, now - secs);
    let mut notes = Vec::new();
    if found.dead > 0 {
        notes.push(format!(
            "{} dead (`formgate list` shows them, `formgate show ID` says why, `formgate redeliver ID` sends again)",
            found.dead
        ));
    }
    if found.retrying_long > 0 {
        notes.push(format!(
            "{} retrying for over {} (`formgate show ID` has the last error)",
            found.retrying_long,
            age(crate::clock::seconds(LONG_RETRY))
        ));
    }
    match waiting {
        Some(w) if w > crate::clock::seconds(DUE_FAIL) => {
            notes.insert(
                0,
                format!(
                    "the oldest due delivery has waited {} — is `formgate serve` running, and can it reach the SMTP server?",
                    age(w)
                ),
            );
            return Check::new(Level::Fail, "outbox", notes.join("; "));
        }
        Some(w) if w > crate::clock::seconds(DUE_WARN) => {
            notes.insert(0, format!("the oldest due delivery has waited {}", age(w)));
        }
        _ => {}
    }
    if notes.is_empty() {
        let text = match waiting {
            Some(w) => format!("no dead or long-retrying deliveries; oldest due waited {}", age(w)),
            None => "no dead or long-retrying deliveries; nothing due".to_string(),
        };
        Check::new(Level::Ok, "outbox", text)
    } else {
        Check::new(Level::Warn, "outbox", notes.join("; "))
    }
}
