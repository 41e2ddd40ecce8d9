//! `formgate doctor`: the real binary against a real database and a real (or dead) SMTP port.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use formgate::app::Services;
use formgate::clock::SystemClock;
use formgate::config::{Config, KeySource, MailTarget};
use formgate::domain::{ContactForm, NewMessage};

use crate::support::app::{Backend, on_every_backend};
use crate::support::pg::TestDatabase;
use crate::support::smtp::TestSmtp;
use crate::support::store::execute;

const KEY: &str = "doctor-test-key-0123456789-0123456789-0123456789";

/// A set-up that passes every check: a migrated database, a key file of mode 0600, https links.
struct Site {
    dir: tempfile::TempDir,
    db: String,
    key_file: PathBuf,
    _pg: Option<TestDatabase>,
}

impl Site {
    async fn new(backend: Backend) -> Option<Site> {
        let dir = tempfile::tempdir().unwrap();
        let (db, pg) = backend.fresh_database(dir.path()).await?;
        formgate::store::connect(&db).await.expect("migrates");
        let key_file = dir.path().join("formgate.key");
        std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Some(Site {
            dir,
            db,
            key_file,
            _pg: pg,
        })
    }

    /// Runs `formgate doctor` in the site's folder with `env` on top of its settings. (Blocking
    /// on a thread of its own: the test's SMTP listener runs on the test's runtime meanwhile.)
    async fn doctor(&self, smtp_url: &str, env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_formgate"));
        c.arg("doctor")
            .current_dir(self.dir.path())
            .env("FORMGATE_DATABASE_URL", &self.db)
            .env("FORMGATE_SECRET_KEY_FILE", &self.key_file)
            .env("FORMGATE_SMTP_URL", smtp_url)
            .env("FORMGATE_SMTP_TIMEOUT", "3s")
            .env("FORMGATE_PUBLIC_URL", "https://forms.example.org")
            .env("FORMGATE_LOG", "warn");
        for (k, v) in env {
            c.env(k, v);
        }
        tokio::task::spawn_blocking(move || c.output().expect("formgate runs"))
            .await
            .unwrap()
    }

    /// Queues `n` verification mails, as posts do, with no worker to send them.
    async fn queue_mails(&self, n: usize) {
        let mut config = Config::for_tests(self.db.clone(), MailTarget::Dir(self.dir.path().join("mail")));
        config.keys = KeySource::Inline(vec![formgate::config::Secret(KEY.into())]);
        let services = Services::open(&config, Arc::new(SystemClock), "https://forms.example.org")
            .await
            .unwrap();
        for i in 0..n {
            let form = ContactForm {
                name: "Ada".into(),
                email: format!("ada{i}@example.org"),
                message: "Hello".into(),
                ..Default::default()
            };
            let new = NewMessage::parse(&form, None, None).unwrap();
            services.actions.submit(new).await.unwrap();
        }
    }
}

fn report(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line of check `name`.
fn line<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{report}"))
}

fn level<'a>(report: &'a str, name: &str) -> &'a str {
    line(report, name).split_whitespace().next().unwrap()
}

async fn doctor_passes_a_good_configuration_without_sending_mail(backend: Backend) {
    let Some(site) = Site::new(backend).await else {
        return;
    };
    let smtp = TestSmtp::start().await;
    let out = site.doctor(&smtp.url(), &[]).await;
    let report = report(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "configuration",
        "database",
        "signing keys",
        "smtp",
        "public_url",
        "outbox",
    ] {
        assert_eq!(level(&report, name), "ok", "{report}");
    }
    assert!(line(&report, "database").contains("migrations current"), "{report}");
    assert!(line(&report, "smtp").contains("EHLO, QUIT; no mail sent"), "{report}");
    assert!(smtp.connections() >= 1, "it really connected");
    assert_eq!(smtp.count(), 0, "no mail was sent");
    assert!(!report.contains(KEY), "no secret printed");
}

async fn doctor_fails_on_a_dead_smtp_port(backend: Backend) {
    let Some(site) = Site::new(backend).await else {
        return;
    };
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = site.doctor(&format!("smtp://forms:app-password@{closed}"), &[]).await;
    let report = report(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let smtp = line(&report, "smtp");
    assert!(smtp.starts_with("FAIL"), "{report}");
    assert!(smtp.contains("cannot connect"), "{report}");
    assert!(smtp.contains("check smtp_url"), "says what to do: {report}");
    assert!(!report.contains("app-password"), "{report}");
    assert_eq!(level(&report, "database"), "ok", "{report}");
}

async fn doctor_names_each_broken_part_and_what_to_do(backend: Backend) {
    let Some(site) = Site::new(backend).await else {
        return;
    };
    site.queue_mails(2).await;
    // One delivery given up on; one failing for two hours and due all that time.
    execute(
        &site.db,
        "UPDATE outbox SET state = 'dead' WHERE id = (SELECT MIN(id) FROM outbox);
         UPDATE outbox SET attempts = 3, created_at = created_at - 7200, next_attempt_at = next_attempt_at - 7200
          WHERE state = 'queued';
         DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations);",
    )
    .await;
    std::fs::set_permissions(&site.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A webhook to this machine, which `serve` refuses unless webhook_allow_private is set.
    std::fs::write(
        site.dir.path().join("formgate.toml"),
        "[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n",
    )
    .unwrap();
    let smtp = TestSmtp::start().await;
    let out = site
        .doctor(&smtp.url(), &[("FORMGATE_PUBLIC_URL", "http://forms.example.org")])
        .await;
    let report = report(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let database = line(&report, "database");
    assert!(
        database.starts_with("FAIL") && database.contains("run `formgate migrate`"),
        "{report}"
    );
    let keys = line(&report, "signing keys");
    assert!(keys.starts_with("FAIL") && keys.contains("chmod 600"), "{report}");
    assert_eq!(level(&report, "public_url"), "warn", "{report}");
    let outbox = line(&report, "outbox");
    assert!(outbox.starts_with("FAIL"), "{report}");
    assert!(outbox.contains("is `formgate serve` running"), "{report}");
    assert!(outbox.contains("1 dead"), "{report}");
    assert!(outbox.contains("1 retrying for over 1h"), "{report}");
    let webhooks = line(&report, "webhooks");
    assert!(
        webhooks.starts_with("FAIL") && webhooks.contains("would not start"),
        "{report}"
    );
    assert_eq!(level(&report, "smtp"), "ok", "{report}");
}

on_every_backend!(
    doctor_passes_a_good_configuration_without_sending_mail,
    doctor_fails_on_a_dead_smtp_port,
    doctor_names_each_broken_part_and_what_to_do,
);

#[tokio::test]
async fn doctor_reports_a_configuration_that_does_not_load() {
    let site = Site::new(Backend::Sqlite).await.unwrap();
    let out = site
        .doctor("smtp://127.0.0.1:25", &[("FORMGATE_BODY_TIMEOUT", "soon")])
        .await;
    let report = report(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report.lines().count(), 1, "{report}");
    let config = line(&report, "configuration");
    assert!(
        config.starts_with("FAIL") && config.contains("body_timeout"),
        "{report}"
    );
}

#[tokio::test]
async fn doctor_says_where_mail_goes_without_smtp() {
    let site = Site::new(Backend::Sqlite).await.unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_formgate"));
    c.arg("doctor")
        .current_dir(site.dir.path())
        .env("FORMGATE_DATABASE_URL", &site.db)
        .env("FORMGATE_SECRET_KEY_FILE", &site.key_file)
        .env("FORMGATE_MAIL_DIR", site.dir.path().join("outgoing"))
        .env("FORMGATE_LOG", "warn");
    let out = c.output().unwrap();
    let report = report(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let mail = line(&report, "mail");
    assert!(
        mail.starts_with("warn") && mail.contains(".eml files to") && mail.contains("(writable)"),
        "{report}"
    );
    assert!(
        !Path::new(&site.dir.path().join("outgoing")).exists(),
        "the doctor changes nothing"
    );
}

#[tokio::test]
async fn doctor_checks_the_ssh_dashboards_moderators_and_host_key() {
    let Some(site) = Site::new(Backend::Sqlite).await else {
        return;
    };
    let smtp = TestSmtp::start().await;
    let host_key = site.dir.path().join("host_key");
    let ssh = [
        ("FORMGATE_SSH_LISTEN", "127.0.0.1:0"),
        ("FORMGATE_SSH_HOST_KEY_FILE", host_key.to_str().unwrap()),
    ];
    // Nobody to log in.
    let out = site.doctor(&smtp.url(), &ssh).await;
    let text = report(&out);
    assert!(
        line(&text, "ssh").starts_with("FAIL") && text.contains("no [[moderators]]"),
        "{text}"
    );

    let alice =
        russh::keys::PrivateKey::random(&mut russh::keys::key::safe_rng(), russh::keys::Algorithm::Ed25519).unwrap();
    let line_of_alice = alice.public_key().to_openssh().unwrap();
    std::fs::write(
        site.dir.path().join("formgate.toml"),
        format!("[[moderators]]\nname = \"alice\"\nkeys = [\"{line_of_alice}\"]\n"),
    )
    .unwrap();
    let out = site.doctor(&smtp.url(), &ssh).await;
    let text = report(&out);
    assert_eq!(level(&text, "ssh"), "warn", "no host key yet: serve makes one\n{text}");

    let (key, created) = formgate::ssh::host_key::load_or_create(&host_key).unwrap();
    assert!(created);
    let out = site.doctor(&smtp.url(), &ssh).await;
    let text = report(&out);
    let ok = line(&text, "ssh");
    assert!(
        ok.starts_with("ok") && ok.contains(&formgate::ssh::host_key::fingerprint(&key)),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(0), "{text}");

    std::fs::set_permissions(&host_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = site.doctor(&smtp.url(), &ssh).await;
    let text = report(&out);
    let bad = line(&text, "ssh");
    assert!(bad.starts_with("FAIL") && bad.contains("chmod 600"), "{text}");
}
