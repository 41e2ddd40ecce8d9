//! Every setting: its key, type, default and meaning, in the README's order. This table is the one
//! place a default is written, and the source of [`KEYS`] and so of the README's configuration
//! table (a test holds the README to it, row by row).
//!
//! Adding a key: one row here (a [`Setting`] with a default, or an [`Optional`] without), its
//! README row (the same text), the `Config` field it lands in, and the line in `Config::resolve`
//! that fills that field. A new kind of value gets a [`super::layers::Value`] impl in `values.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;

use super::layers::{Key, Optional, Setting};
use super::smtp::SmtpUrl;
use super::values::{
    Cap, Connections, DatabaseUrl, Days, DnsName, Folder, FormSlug, Inboxes, IpNet, List, LogFormat, OneLine, Origin,
    PerWindow, PublicUrl, RateLimit, SecretKeys, SessionCap, WebAddress,
};

/// Declares each row as a `pub const` descriptor and lists them all in `KEYS`.
macro_rules! table {
    ($($name:ident: $type:ty = $descriptor:expr;)*) => {
        $(pub const $name: $type = $descriptor;)*

        /// Every key, its default and what it does, in the README's order.
        pub const KEYS: &[Key] = &[$($name.key),*];
    };
}

table! {
    LISTEN: Setting<SocketAddr> = Setting::new(
        "listen",
        "127.0.0.1:8080",
        "address and port the web listener binds",
    );
    PUBLIC_URL: Optional<PublicUrl> = Optional::new(
        "public_url",
        "`http://<bound address>`",
        "base URL of the links in mails (what visitors' browsers reach)",
    );
    TRUSTED_PROXIES: Optional<List<IpNet>> = Optional::new(
        "trusted_proxies",
        "none",
        "reverse proxies (IPs or CIDR blocks, e.g. `[\"127.0.0.1\", \"10.0.0.0/8\"]`) whose `X-Forwarded-For` / `Forwarded` headers are believed; env: comma-separated. See Security and abuse",
    );
    ALLOWED_ORIGINS: Optional<List<Origin>> = Optional::new(
        "allowed_origins",
        "none: own pages only",
        "other sites whose pages may post the form, e.g. `[\"https://www.example.org\"]` (gets CORS); env: comma-separated",
    );
    RATE_LIMIT_CONTACT: Setting<Option<RateLimit>> = Setting::new(
        "rate_limit_contact",
        "5/10m",
        "form posts and resends per client address (IPv6: per /64) per window; `0` turns it off",
    );
    RATE_LIMIT_VERIFY: Setting<Option<RateLimit>> = Setting::new(
        "rate_limit_verify",
        "30/10m",
        "code and link confirmations per client address per window; `0` turns it off",
    );
    BODY_TIMEOUT: Setting<Duration> = Setting::new(
        "body_timeout",
        "10s",
        "how long a client may take to send a request body before it gets `408`",
    );
    HEADER_TIMEOUT: Setting<Duration> = Setting::new(
        "header_timeout",
        "10s",
        "how long a client may take to send a request's headers (then the connection is closed without an answer); also how long an idle kept-alive connection stays open",
    );
    SHUTDOWN_GRACE: Optional<Duration> = Optional::new(
        "shutdown_grace",
        "unset: none",
        "after SIGTERM, how long to keep serving while `/readyz` answers `503 stopping`, so a load balancer that polls it stops sending traffic before the listener closes (e.g. `5s`)",
    );
    LOG_FORMAT: Setting<LogFormat> = Setting::new(
        "log_format",
        "text",
        "how log lines are written to stderr: `text` for people, `json` for one object per line (time, level, target, message, span fields) for a log collector",
    );
    METRICS_LISTEN: Optional<SocketAddr> = Optional::new(
        "metrics_listen",
        "unset: no metrics",
        "address and port of a listener of its own serving `GET /metrics` in the Prometheus text format, e.g. `127.0.0.1:9464`; never the public `listen` (see Metrics under Operations)",
    );
    SSH_LISTEN: Optional<SocketAddr> = Optional::new(
        "ssh_listen",
        "unset: no SSH",
        "address and port of the SSH dashboard for `[[moderators]]`, e.g. `0.0.0.0:2222` (see SSH dashboard)",
    );
    SSH_HOST_KEY_FILE: Setting<PathBuf> = Setting::new(
        "ssh_host_key_file",
        "formgate_ssh_host_key",
        "the SSH host key (Ed25519, OpenSSH format); generated with mode 0600 on first start when missing; instances behind one name share it",
    );
    SSH_MAX_SESSIONS: Setting<SessionCap> = Setting::new(
        "ssh_max_sessions",
        "20",
        "SSH sessions open at once, all moderators together (each moderator: at most 4)",
    );
    SSH_IDLE_TIMEOUT: Setting<Duration> = Setting::new(
        "ssh_idle_timeout",
        "30m",
        "an SSH connection with no input for this long is closed",
    );
    SITE_NAME: Setting<OneLine> = Setting::new(
        "site_name",
        "formgate",
        "the name visitors see on pages and in mails",
    );
    DEFAULT_FORM: Setting<FormSlug> = Setting::new(
        "default_form",
        "contact",
        "the form served at `/` and `/contact` (see Forms)",
    );
    TITLE: Optional<OneLine> = Optional::new(
        "title",
        "`Contact <site_name>`",
        "a form's heading, page title and the tag in its staff mail's subject",
    );
    THANK_YOU_URL: Optional<WebAddress> = Optional::new(
        "thank_you_url",
        "unset: formgate's own pages",
        "where visitors go after posting (a link) and after confirming (a redirect); never taken from the request",
    );
    DATABASE_URL: Setting<DatabaseUrl> = Setting::new(
        "database_url",
        "sqlite://formgate.db",
        "where messages live: a SQLite file (created if missing) or `postgres://user@host/db` (see Scaling out); a password in it is never printed",
    );
    SMTP_URL: Optional<SmtpUrl> = Optional::new(
        "smtp_url",
        "unset: `.eml` files",
        "`smtp://user:pass@host:587?tls=required`, `smtps://host:465`, `smtp://host:25`",
    );
    SMTP_TIMEOUT: Setting<Duration> = Setting::new(
        "smtp_timeout",
        "15s",
        "per-command SMTP timeout, so one hung server cannot stall the queue",
    );
    SMTP_CONNECTIONS: Setting<Connections> = Setting::new(
        "smtp_connections",
        "4",
        "SMTP connections the outbox keeps open and sends over in parallel",
    );
    MAIL_DIR: Setting<PathBuf> = Setting::new(
        "mail_dir",
        "./mail-outbox",
        "where mails go as `.eml` files when `smtp_url` is unset",
    );
    MAIL_FROM: Setting<Mailbox> = Setting::new(
        "mail_from",
        "formgate <formgate@localhost>",
        "From of every mail formgate sends",
    );
    DKIM_DOMAIN: Optional<DnsName> = Optional::new(
        "dkim_domain",
        "unset: mails are not signed",
        "the domain that signs every mail (DKIM `d=`), usually `mail_from`'s; set it with `dkim_key_file` (see DKIM)",
    );
    DKIM_SELECTOR: Setting<DnsName> = Setting::new(
        "dkim_selector",
        "formgate",
        "names the key: receivers find it in DNS at `<dkim_selector>._domainkey.<dkim_domain>`",
    );
    DKIM_KEY_FILE: Optional<PathBuf> = Optional::new(
        "dkim_key_file",
        "unset",
        "the DKIM private key, PEM: RSA of 2048–4096 bits, or Ed25519; a key that cannot sign stops `serve` at start",
    );
    MAIL_LIFETIME: Setting<Duration> = Setting::new(
        "mail_lifetime",
        "3d",
        "how long the outbox retries a mail before it gives up",
    );
    STAFF_INBOX: Optional<Inboxes> = Optional::new(
        "staff_inbox",
        "unset",
        "where released messages are delivered: one mailbox or a list (`[\"sales@example.org\", \"Boss <boss@example.org>\"]`; env: comma-separated)",
    );
    SECRET_KEYS: Optional<SecretKeys> = Optional::new(
        "secret_keys",
        "unset",
        "signing keys (≥ 32 characters each), first signs, all verify; env: comma-separated",
    );
    SECRET_KEY_FILE: Setting<PathBuf> = Setting::new(
        "secret_key_file",
        "formgate.key",
        "used when `secret_keys` is unset; generated (mode 0600) if missing; one key per line",
    );
    TOKEN_TTL: Setting<Duration> = Setting::new(
        "token_ttl",
        "72h",
        "how long a verification link and code stay valid",
    );
    UI_DIR: Optional<Folder> = Optional::new(
        "ui_dir",
        "unset: built-in",
        "a folder whose `pages/` and `email/` templates override the built-in ones",
    );
    AUTO_RELEASE: Setting<bool> = Setting::new(
        "auto_release",
        "false",
        "release each message the moment its sender confirms it (the plain contact-form flow)",
    );
    PURGE_AFTER_DAYS: Setting<Days> = Setting::new(
        "purge_after_days",
        "30",
        "`serve` purges trash, spam and never-verified messages older than this, hourly; `0` keeps everything",
    );
    VERIFY_MAILS_PER_ADDRESS: Setting<PerWindow> = Setting::new(
        "verify_mails_per_address",
        "1/24h",
        "automatic verification mails one address may get per window (`N/window`, e.g. `3/1h`; `0`: no cap); see Mail and bots",
    );
    MAX_MAILS_PER_HOUR: Setting<Cap> = Setting::new(
        "max_mails_per_hour",
        "500",
        "verification mails queued per hour, all addresses together (`0`: no cap)",
    );
    REQUIRE_FORM_TOKEN: Setting<bool> = Setting::new(
        "require_form_token",
        "false",
        "treat a post without the form page's signed time field as spam (only for forms served by formgate)",
    );
    CONFIRMATION_MAIL: Setting<bool> = Setting::new(
        "confirmation_mail",
        "false",
        "mail visitors a copy of their message once they confirm it (see Destinations)",
    );
    WEBHOOK_LIFETIME: Setting<Duration> = Setting::new(
        "webhook_lifetime",
        "3d",
        "how long the outbox retries a webhook delivery before it gives up (see Destinations)",
    );
    WEBHOOK_ALLOW_PRIVATE: Setting<bool> = Setting::new(
        "webhook_allow_private",
        "false",
        "let webhooks reach loopback, private and link-local addresses (an intranet receiver)",
    );
}
