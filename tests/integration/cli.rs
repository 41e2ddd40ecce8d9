//! The scriptable verbs, run as a moderator would: the real `formgate` binary against a real
//! SQLite file. The staff mail of a release is received over SMTP.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use formgate::app::Services;
use formgate::clock::SystemClock;
use formgate::config::{Config, MailTarget, SmtpUrl};
use formgate::domain::{ContactForm, MessageId, NewMessage, Status};
use formgate::mail::queue::MailKind;
use formgate::mail::{OutboxConfig, OutboxWorker, Transport};
use formgate::store::{Audit, Change};

use crate::support::smtp::TestSmtp;

const KEY: &str = "cli-test-key-0123456789-0123456789-0123456789";

struct Fixture {
    _dir: tempfile::TempDir,
    db: String,
    services: Services,
    config: Config,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("formgate.db").display());
        let mut config = Config::for_tests(db.clone(), MailTarget::Dir(dir.path().join("mail")));
        config.keys = formgate::config::KeySource::Inline(vec![formgate::config::Secret(KEY.into())]);
        config.staff_inbox = vec!["Team <team@example.org>".parse().unwrap()];
        config.mail_from = "Example Forms <forms@example.org>".parse().unwrap();
        let services = Services::open(&config, Arc::new(SystemClock), "http://127.0.0.1:8080")
            .await
            .unwrap();
        Fixture {
            _dir: dir,
            db,
            services,
            config,
        }
    }

    /// A message from `name`, confirmed by its sender when `verified`.
    async fn message(&self, name: &str, email: &str, body: &str, verified: bool) -> MessageId {
        let form = ContactForm {
            name: name.into(),
            email: email.into(),
            subject: None,
            message: body.into(),
            ..Default::default()
        };
        let new = NewMessage::parse(&form, Some("198.51.100.7".into()), Some("Mozilla/5.0".into())).unwrap();
        let id = self.services.actions.submit(new).await.unwrap().id;
        if verified {
            let m = self.services.store.message(id).await.unwrap().unwrap();
            let change = Change {
                id,
                from: Status::Pending,
                expect_nonce: None,
                to: Status::Verified,
                now: m.created_at + 60,
                new_nonce: Some("n2".into()),
                confirmed_nonce: Some(m.nonce),
                new_verification: None,
                audit: Audit {
                    actor: "visitor".into(),
                    action: "verify",
                    detail: None,
                },
                mail: None,
            };
            assert!(self.services.store.apply(&change).await.unwrap());
        }
        id
    }

    /// How many staff mails were queued for the message.
    async fn release_mails(&self, id: MessageId) -> usize {
        let outbox = self.services.store.outbox_for_message(id).await.unwrap();
        outbox.into_iter().filter(|o| o.kind == MailKind::Release).count()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_formgate"));
        c.args(args)
            .env("FORMGATE_DATABASE_URL", &self.db)
            .env("FORMGATE_SECRET_KEYS", KEY)
            .env("FORMGATE_STAFF_INBOX", "Team <team@example.org>")
            .env("FORMGATE_LOG", "warn")
            .env("USER", "tester");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}
fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[tokio::test]
async fn the_verbs_move_messages_through_their_life_and_say_so() {
    let f = Fixture::new().await;
    let ada = f.message("Ada", "ada@example.org", "Hello from Ada", true).await;
    let bob = f.message("Bob", "bob@example.org", "Hi, Bob here", true).await;
    let cy = f.message("Cy", "cy@example.org", "unconfirmed", false).await;

    let out = f.run(&["list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for key in ["id", "status", "name", "email", "subject", "created_at", "verified_at"] {
        assert!(rows[0].get(key).is_some(), "--json has {key}: {}", rows[0]);
    }
    assert_eq!(rows[0]["id"], cy.0, "newest first");
    assert_eq!(rows[0]["status"], "pending");

    let out = f.run(&["list", "--status", "verified"]);
    let text = stdout(&out);
    assert!(
        text.contains("Ada") && text.contains("Bob") && !text.contains("Cy "),
        "{text}"
    );

    let out = f.run(&["release", &ada.to_string(), "--as", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("released #{ada}: queued for Team <team@example.org>")
    );

    let out = f.run(&["release", &ada.to_string(), "--as", "bob"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("message {ada} was already released by alice at ")),
        "{}",
        stderr(&out)
    );

    let out = f.run(&["release", &cy.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!("formgate: #{cy}: cannot release a pending message")
    );

    let out = f.run(&["resend", &cy.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("resent the verification of #{cy}"));
    assert_eq!(f.services.store.message(cy).await.unwrap().unwrap().verify_mails, 2);

    // A suppressed address: the resend is recorded (exit 0) but says no mail went out.
    f.services.store.suppress("cy@example.org", 0, "test").await.unwrap();
    let out = f.run(&["resend", &cy.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("resend of #{cy} recorded, but no mail: the address is suppressed")
    );
    assert_eq!(f.services.store.message(cy).await.unwrap().unwrap().verify_mails, 2);

    let out = f.run(&["show", &ada.to_string()]);
    let text = stdout(&out);
    assert!(
        text.contains("[released]") && text.contains("alice") && text.contains("Hello from Ada"),
        "{text}"
    );
    assert!(text.contains("198.51.100.7"), "consent record: {text}");

    assert!(f.run(&["delete", &bob.to_string()]).status.success());
    assert_eq!(
        f.services.store.message(bob).await.unwrap().unwrap().status,
        Status::Deleted
    );
    let out = f.run(&["restore", &bob.to_string()]);
    assert_eq!(stdout(&out).trim(), format!("restored #{bob} to verified"));
    assert!(
        f.run(&["delete", &bob.to_string(), &cy.to_string()]).status.success(),
        "several ids at once"
    );
    let out = f.run(&["purge"]);
    assert_eq!(stdout(&out).trim(), "purged 2 message(s) from the trash");
    let out = f.run(&["show", &bob.to_string()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"));

    // Every verb left its actor in the audit trail.
    let trail = f.services.store.audit_trail(ada).await.unwrap();
    let last = trail.last().unwrap();
    assert_eq!((last.actor.as_str(), last.action.as_str()), ("alice", "release"));
    let out = f.run(&["release", "not-a-number"]);
    assert_eq!(out.status.code(), Some(2), "bad usage");
}

#[tokio::test]
async fn two_moderators_releasing_at_once_queue_exactly_one_mail() {
    let f = Fixture::new().await;
    // In-process: truly simultaneous calls.
    let id = f.message("Ada", "ada@example.org", "Hello", true).await;
    let (a, b) = tokio::join!(
        f.services.actions.release(id, "alice"),
        f.services.actions.release(id, "bob")
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{a:?} {b:?}"
    );
    let loser = a.err().or(b.err()).unwrap().to_string();
    assert!(loser.contains("already released by"), "{loser}");
    assert_eq!(f.release_mails(id).await, 1);

    // Two processes, as two moderators over SSH would.
    let id = f.message("Bob", "bob@example.org", "Hello", true).await;
    let mut alice = f
        .command(&["release", &id.to_string(), "--as", "alice"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut bob = f
        .command(&["release", &id.to_string(), "--as", "bob"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (sa, sb) = (alice.wait().unwrap(), bob.wait().unwrap());
    assert_eq!(
        [sa.success(), sb.success()].iter().filter(|ok| **ok).count(),
        1,
        "exactly one wins"
    );
    let mut loser_err = String::new();
    use std::io::Read;
    let loser = if sa.success() { &mut bob } else { &mut alice };
    loser.stderr.take().unwrap().read_to_string(&mut loser_err).unwrap();
    assert!(loser_err.contains("already released by"), "{loser_err}");
    assert_eq!(f.release_mails(id).await, 1);
}

#[tokio::test]
async fn a_released_message_reaches_the_staff_inbox_with_reply_to_the_visitor() {
    let f = Fixture::new().await;
    let id = f
        .message(
            "Ada Lovelace",
            "ada@example.org",
            "Could you send me a quote?\nThanks!",
            true,
        )
        .await;
    f.services.actions.release(id, "alice").await.unwrap();

    let smtp = TestSmtp::start().await;
    let transport = Transport::new(
        &MailTarget::Smtp(SmtpUrl::parse(&smtp.url()).unwrap()),
        Duration::from_secs(3),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = OutboxWorker::new(
        f.services.store.clone(),
        transport,
        f.services.actions.verification_mails(),
        Arc::new(SystemClock),
        OutboxConfig::default(),
        f.services.outbox_wake.clone(),
    );
    let task = tokio::spawn(worker.run(stopped));
    // The verification mail queued at submit goes out too; find the release.
    let mails = smtp.wait_for(2, Duration::from_secs(10)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let staff = mails
        .iter()
        .find(|m| m.rcpt_to == ["team@example.org"])
        .expect("a mail to the staff inbox");
    let reply_to = staff.header("Reply-To").unwrap();
    assert!(
        reply_to.contains("Ada Lovelace") && reply_to.contains("<ada@example.org>"),
        "{reply_to}"
    );
    let from = staff.header("From").unwrap();
    assert!(
        from.contains("<forms@example.org>"),
        "From stays formgate's own: {from}"
    );
    assert_eq!(staff.header("To").unwrap(), "Team <team@example.org>");
    let text = staff.text_body();
    assert!(
        text.contains("Could you send me a quote?\nThanks!") && text.contains("198.51.100.7"),
        "{text}"
    );
    assert!(staff.header("Subject").unwrap().contains("Could you send me a quote?"));
    let _ = f.config;
}

#[tokio::test]
async fn hostile_visitor_text_never_reaches_the_terminal_raw_and_exports_are_defused() {
    let f = Fixture::new().await;
    let evil = "=cmd|' /C calc'!A0 \u{1b}[2J\u{1b}]52;c;aGk=\u{7}\u{1b}]0;pwned\u{7}\u{9b}31m\u{202e}gnp.exe";
    let id = f.message("Mallory\u{1b}[31m", "mallory@example.org", evil, true).await;
    for args in [
        vec!["list".to_string()],
        vec!["show".into(), id.to_string()],
        vec!["list".into(), "--json".into()],
    ] {
        let out = f.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success());
        let text = stdout(&out);
        let bad: Vec<char> = text
            .chars()
            .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
            .collect();
        assert!(bad.is_empty(), "{args:?} printed raw control characters {bad:?}");
    }
    let out = f.run(&["export", "--format", "csv"]);
    let csv = stdout(&out);
    assert!(csv.starts_with("id,status,name,email,subject,message,"));
    assert!(csv.contains(",'=cmd|"), "a formula cell is defused: {csv}");
    let out = f.run(&["export", "--format", "json", "--status", "verified"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows[0]["body"], evil, "the data itself is unchanged");
}

#[tokio::test]
async fn suppressed_addresses_and_spam_are_handled_from_the_command_line() {
    let f = Fixture::new().await;
    let out = f.run(&["suppressed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "no suppressed addresses");

    // An address that asked for no more mail (its reason is visitor-controlled text in part).
    f.services
        .store
        .suppress("Dee@Example.org", 1_700_000_000, "asked by link \u{1b}[31m")
        .await
        .unwrap();
    let out = f.run(&["suppressed"]);
    let text = stdout(&out);
    assert!(text.starts_with("dee@example.org  since "), "{text}");
    assert!(!text.contains('\u{1b}'), "no raw escape reaches the terminal: {text:?}");
    let out = f.run(&["suppressed", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows[0]["address"], "dee@example.org");
    assert_eq!(rows[0]["created_at"], 1_700_000_000);

    let out = f.run(&["unsuppress", "DEE@example.org", "--as", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "DEE@example.org: will be mailed again");
    assert!(f.services.store.suppressed().await.unwrap().is_empty());
    let out = f.run(&["unsuppress", "dee@example.org"]);
    assert_eq!(out.status.code(), Some(1), "not suppressed any more");
    assert_eq!(stderr(&out).trim(), "formgate: dee@example.org was not suppressed");

    // A post a bot filter caught: stored as spam, no mail. `not-spam` makes it pending and mails it.
    let form = ContactForm {
        name: "Eve".into(),
        email: "eve@example.org".into(),
        subject: None,
        message: "a real question".into(),
        ..Default::default()
    };
    let new = NewMessage::parse(&form, None, None).unwrap();
    let spam = f
        .services
        .actions
        .submit_as(new, Some("honeypot filled"))
        .await
        .unwrap()
        .id;
    assert_eq!(
        f.services.store.message(spam).await.unwrap().unwrap().status,
        Status::Spam
    );
    let verify_mails = |f: &Fixture| {
        let store = f.services.store.clone();
        async move {
            store
                .outbox_for_message(spam)
                .await
                .unwrap()
                .into_iter()
                .filter(|o| o.kind == MailKind::Verify)
                .count()
        }
    };
    assert_eq!(verify_mails(&f).await, 0);
    let out = f.run(&["not-spam", &spam.to_string(), "--as", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("#{spam} is not spam: pending, verification mail queued")
    );
    assert_eq!(
        f.services.store.message(spam).await.unwrap().unwrap().status,
        Status::Pending
    );
    assert_eq!(verify_mails(&f).await, 1);
    let trail = f.services.store.audit_trail(spam).await.unwrap();
    assert_eq!(trail.last().unwrap().actor, "alice");
    let out = f.run(&["not-spam", &spam.to_string()]);
    assert_eq!(out.status.code(), Some(1), "only spam can be not spam");
}
