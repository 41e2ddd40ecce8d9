//! DKIM: the mails `serve` sends (over SMTP and into `.eml` files) are checked by an independent
//! verifier, mail-auth, given as its DNS answer the record `formgate dkim-record` prints; keys
//! that cannot sign stop `serve` at start; `dkim-record --generate` makes a private key.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use formgate::app::Server;
use formgate::clock::SystemClock;
use formgate::config::{Config, DkimSettings, MailTarget, SmtpUrl};
use formgate::mail::{DkimSigner, OutboxConfig};
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt};

use crate::support::app::{Options, TestApp, verify_path};
use crate::support::smtp::TestSmtp;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dkim")
        .join(name)
}

/// The one DNS answer the verifier gets: the test's record. (Its resolver has no servers.)
#[derive(Default)]
struct Dns(Mutex<HashMap<String, Txt>>);

impl ResolverCache<String, Txt> for Dns {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }

    fn insert(&self, key: String, value: Txt, _: Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

/// What mail-auth says of each signature on `raw`, with `record` (a zone-file line's TXT value,
/// its strings joined as a resolver joins them) published for `formgate._domainkey.example.org`.
async fn verify(raw: &[u8], record: &str) -> Vec<DkimResult> {
    let dns = Dns::default();
    dns.insert(
        "formgate._domainkey.example.org.".into(),
        Txt::from(DomainKey::parse(record.as_bytes())),
        Instant::now() + Duration::from_secs(3600),
    );
    let authenticator = MessageAuthenticator::new(ResolverConfig::new(), ResolverOpts::default()).unwrap();
    let message = AuthenticatedMessage::parse(raw).expect("a parseable mail");
    authenticator
        .verify_dkim(Parameters::new(&message).with_txt_cache(&dns))
        .await
        .iter()
        .map(|r| r.result().clone())
        .collect()
}

fn formgate(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_formgate"))
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .env("FORMGATE_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// The record `formgate dkim-record` prints for `key`, as a resolver hands it over: the zone
/// line's quoted strings (each at most 255 characters) joined.
fn published_record(key: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = formgate(
        dir.path(),
        &["dkim-record"],
        &[
            ("FORMGATE_DKIM_DOMAIN", "example.org"),
            ("FORMGATE_DKIM_KEY_FILE", key.to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text.lines().next().unwrap();
    let strings = line
        .strip_prefix("formgate._domainkey.example.org. IN TXT ")
        .unwrap_or_else(|| panic!("{text}"));
    let parts: Vec<&str> = strings
        .split('"')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s)
        .collect();
    assert!(parts.iter().all(|p| p.len() <= 255), "{line}");
    parts.concat()
}

/// A server signing with `key` for example.org, releasing each message once confirmed; over SMTP,
/// or into `.eml` files.
async fn spawn_signing(key: &Path, smtp: bool) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("formgate.db").display());
    let receiver = if smtp { Some(TestSmtp::start().await) } else { None };
    let mail = match &receiver {
        Some(s) => MailTarget::Smtp(SmtpUrl::parse(&s.url()).unwrap()),
        None => MailTarget::Dir(dir.path().join("mail-outbox")),
    };
    let mut config = Config::for_tests(db, mail);
    config.smtp_timeout = Duration::from_secs(3);
    config.mail_from = "Example Forms <forms@example.org>".parse().unwrap();
    config.staff_inbox = vec!["Team <team@example.org>".parse().unwrap()];
    config.auto_release = true;
    // Behind https: the verification mail carries the one-click List-Unsubscribe headers.
    config.public_url = Some("https://forms.example.org".into());
    config.dkim = Some(DkimSettings {
        domain: "example.org".into(),
        key_file: key.to_path_buf(),
    });
    TestApp::spawn_config(config, dir, receiver, &Options::default()).await
}

/// The visitor's verification mail and, once confirmed, the staff mail: both pass.
async fn both_mails_pass(key: &str, algorithm: &str) {
    let key = fixture(key);
    let record = published_record(&key);
    let app = spawn_signing(&key, true).await;
    assert_eq!(app.submit("ada@example.org").await.status(), 303);
    let verification = app.mail(1).await;
    let confirmed = app
        .client
        .post(app.url(&verify_path(&verification)))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let staff = app.mail(2).await;
    assert_eq!(staff.rcpt_to, ["team@example.org"]);

    for mail in [&verification, &staff] {
        let text = String::from_utf8_lossy(&mail.data);
        assert!(text.starts_with("DKIM-Signature: v=1; "), "{text}");
        assert!(text.contains(&format!("a={algorithm};")), "{text}");
        assert_eq!(verify(&mail.data, &record).await, [DkimResult::Pass], "{text}");
    }
    // The one-click unsubscribe headers are signed: a relay cannot point them elsewhere.
    let header = String::from_utf8_lossy(&verification.data).replace("\r\n\t", "");
    assert!(verification.header("List-Unsubscribe").is_some(), "{header}");
    assert!(header.contains("List-Unsubscribe:List-Unsubscribe"), "{header}");
    assert!(
        header.contains("List-Unsubscribe-Post:List-Unsubscribe-Post"),
        "{header}"
    );
    // The staff mail's Reply-To (the visitor) is signed: a relay cannot point replies elsewhere.
    let header = String::from_utf8_lossy(&staff.data).replace("\r\n\t", "");
    assert!(header.contains("Reply-To:Reply-To"), "{header}");

    // The verifier really checks: a changed subject, or a second From added on the way, fails.
    let tampered = String::from_utf8_lossy(&staff.data).replacen("Subject: ", "Subject: Re: ", 1);
    assert!(matches!(
        verify(tampered.as_bytes(), &record).await[..],
        [DkimResult::Fail(_)]
    ));
    let body_at = staff.data.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let mut added = staff.data[..body_at + 2].to_vec();
    added.extend_from_slice(b"From: Mallory <ceo@example.org>\r\n");
    added.extend_from_slice(&staff.data[body_at + 2..]);
    assert!(matches!(verify(&added, &record).await[..], [DkimResult::Fail(_)]));
    app.stop().await;
}

#[tokio::test]
async fn mails_signed_with_an_rsa_key_pass_an_independent_verifier() {
    both_mails_pass("rsa2048.pem", "rsa-sha256").await;
}

#[tokio::test]
async fn mails_signed_with_an_ed25519_key_pass_an_independent_verifier() {
    both_mails_pass("ed25519.pem", "ed25519-sha256").await;
}

#[tokio::test]
async fn an_eml_file_holds_the_signed_mail_smtp_would_carry() {
    let key = fixture("ed25519.pem");
    let record = published_record(&key);
    let app = spawn_signing(&key, false).await;
    assert_eq!(app.submit("ada@example.org").await.status(), 303);
    let file = app.dir.path().join("mail-outbox").join("00000001-verify.eml");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let raw = std::fs::read(&file).unwrap();
    assert!(raw.starts_with(b"DKIM-Signature: "));
    assert_eq!(verify(&raw, &record).await, [DkimResult::Pass]);
    app.stop().await;
}

#[test]
fn an_rsa_key_reads_the_same_as_pkcs1_and_as_pkcs8() {
    let pkcs1 = std::fs::read(fixture("rsa2048.pem")).unwrap();
    let pkcs8 = std::fs::read(fixture("rsa2048-pkcs8.pem")).unwrap();
    let a = DkimSigner::from_pem("example.org", "formgate", &pkcs1).unwrap();
    let b = DkimSigner::from_pem("example.org", "formgate", &pkcs8).unwrap();
    assert_eq!(a.algorithm(), "rsa-sha256");
    assert_eq!(a.record_value(), b.record_value());
    // What `openssl rsa -pubout` prints for a 2048-bit key starts so.
    assert!(
        a.record_value()
            .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA")
    );
}

/// Builds a server whose DKIM key is `key`: the error it stops with.
async fn start_error(key: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests(
        format!("sqlite://{}", dir.path().join("formgate.db").display()),
        MailTarget::Dir(dir.path().join("mail")),
    );
    config.dkim = Some(DkimSettings {
        domain: "example.org".into(),
        key_file: key.to_path_buf(),
    });
    match Server::build_with(&config, Arc::new(SystemClock), OutboxConfig::default()).await {
        Ok(_) => panic!("a server started with the DKIM key {}", key.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn a_key_that_cannot_sign_stops_the_start_naming_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let short = fixture("rsa1024.pem");
    let e = start_error(&short).await;
    assert!(
        e.contains("dkim_key_file") && e.contains(&short.display().to_string()) && e.contains("2048 bits"),
        "{e}"
    );

    let missing = dir.path().join("missing.pem");
    let e = start_error(&missing).await;
    assert!(
        e.contains("dkim_key_file") && e.contains("missing.pem: cannot read"),
        "{e}"
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 me@host\n").unwrap();
    let e = start_error(&garbage).await;
    assert!(e.contains("garbage.pem: no private key"), "{e}");

    // The real binary: `serve` stops at once with that message and a failing exit code.
    let out = formgate(
        dir.path(),
        &["serve"],
        &[
            ("FORMGATE_LISTEN", "127.0.0.1:0"),
            ("FORMGATE_DATABASE_URL", "sqlite://formgate.db"),
            ("FORMGATE_DKIM_DOMAIN", "example.org"),
            ("FORMGATE_DKIM_KEY_FILE", short.to_str().unwrap()),
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("configuration key `dkim_key_file`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_domain_without_a_key_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = formgate(dir.path(), &["serve"], &[("FORMGATE_DKIM_DOMAIN", "example.org")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`dkim_key_file`"), "{}", stderr(&out));
}

#[test]
fn dkim_record_generates_a_private_key_once_and_prints_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let from = [("FORMGATE_MAIL_FROM", "Example Forms <forms@example.org>")];

    let out = formgate(dir.path(), &["dkim-record"], &from);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--generate FILE"), "{}", stderr(&out));

    let out = formgate(dir.path(), &["dkim-record", "--generate", "keys/dkim.pem"], &from);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let record_line = text
        .lines()
        .find(|l| l.starts_with("formgate._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p="))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    assert!(text.contains("; dkim_domain = \"example.org\""), "{text}");
    assert!(text.contains("; dkim_key_file = \"keys/dkim.pem\""), "{text}");
    assert!(text.contains("openssl genrsa"), "{text}");
    let key = dir.path().join("keys/dkim.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let pem = std::fs::read(&key).unwrap();

    // Never over a key that exists.
    let out = formgate(dir.path(), &["dkim-record", "--generate", "keys/dkim.pem"], &from);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("never overwrites"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&key).unwrap(), pem);

    // Configured, the key gives the same record.
    let out = formgate(
        dir.path(),
        &["dkim-record"],
        &[
            ("FORMGATE_DKIM_DOMAIN", "example.org"),
            ("FORMGATE_DKIM_KEY_FILE", "keys/dkim.pem"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().next().unwrap(), record_line);
}

#[test]
fn an_rsa_record_is_split_into_dns_strings() {
    let dir = tempfile::tempdir().unwrap();
    let key = fixture("rsa2048.pem");
    let out = formgate(
        dir.path(),
        &["dkim-record"],
        &[
            ("FORMGATE_DKIM_DOMAIN", "example.org"),
            ("FORMGATE_DKIM_SELECTOR", "mail2026"),
            ("FORMGATE_DKIM_KEY_FILE", key.to_str().unwrap()),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = text.lines().next().unwrap();
    assert!(
        line.starts_with("mail2026._domainkey.example.org. IN TXT \"v=DKIM1; k=rsa; p=MIIB"),
        "{line}"
    );
    // A 2048-bit key's record is ~400 characters: two strings.
    assert_eq!(line.matches('"').count(), 4, "{line}");
    assert!(text.contains("name `mail2026._domainkey.example.org`"), "{text}");
}
