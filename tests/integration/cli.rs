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

use crate::support::app::{Backend, on_every_backend};
use crate::support::pg::TestDatabase;
use crate::support::smtp::TestSmtp;

const KEY: &str = "cli-test-key-0123456789-0123456789-0123456789";

struct Fixture {
    _dir: tempfile::TempDir,
    db: String,
    services: Services,
    config: Config,
    /// `--config FILE` for the binary (the `[forms.NAME]` tables have no environment form).
    config_file: Option<std::path::PathBuf>,
    /// A PostgreSQL test database, dropped last.
    _pg: Option<TestDatabase>,
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
            config_file: None,
            _pg: None,
        }
    }

    /// On `backend`, with the configuration `toml` (its forms) for both the in-process services
    /// and the binary. None: PostgreSQL is unreachable and the test skips itself.
    async fn with_config(backend: Backend, toml: &str) -> Option<Fixture> {
        let dir = tempfile::tempdir().unwrap();
        let (db, pg) = backend.fresh_database(dir.path()).await?;
        let file = dir.path().join("formgate.toml");
        std::fs::write(&file, toml).unwrap();
        let mut config = Config::from_toml(toml, &|_| None).unwrap();
        config.database_url = db.clone();
        config.mail = MailTarget::Dir(dir.path().join("mail"));
        config.keys = formgate::config::KeySource::Inline(vec![formgate::config::Secret(KEY.into())]);
        config.verify_mails_per_address = None;
        config.max_mails_per_hour = None;
        let services = Services::open(&config, Arc::new(SystemClock), "http://127.0.0.1:8080")
            .await
            .unwrap();
        Some(Fixture {
            _dir: dir,
            db,
            services,
            config,
            config_file: Some(file),
            _pg: pg,
        })
    }

    /// A post to form `slug` (a JSON object, as the JSON API takes it), accepted by that form's
    /// rules and stored.
    async fn post(&self, slug: &str, json: serde_json::Value) -> MessageId {
        let forms = self.services.actions.forms().clone();
        let form = forms.get(slug).expect("a configured form");
        let posted = formgate::forms::Posted::from_json(json.to_string().as_bytes()).unwrap();
        let accepted = formgate::forms::accept::accept(form, &posted, Some("198.51.100.7".into()), None)
            .unwrap_or_else(|r| panic!("refused: {:?}", r.errors));
        self.services.actions.submit(accepted.msg).await.unwrap().id
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
                mails: Vec::new(),
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
        if let Some(file) = &self.config_file {
            c.arg("--config").arg(file);
        }
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
        None,
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

/// Two forms: the default, open `contact`, and a declared `quote` whose labels are hostile HTML.
const TWO_FORMS: &str = r#"
public_url = "https://forms.example.org"
staff_inbox = "Team <team@example.org>"
default_form = "contact"

[forms.contact]

[forms.quote]
title = "Ask for a quote"
allowed_origins = ["https://www.example.org"]
fields = [
  { name = "name", type = "text", label = "Your name", required = true },
  { name = "email", type = "email", label = "Your email", required = true },
  { name = "company", type = "text", label = "<img src=x onerror=alert(1)> \"Company\"" },
  { name = "budget", type = "select", label = "Budget", options = ["<1k", "1-5k"] },
  { name = "topics", type = "checkboxes", label = "Topics", options = ["Web", "App"] },
  { name = "consent", type = "checkbox", label = "I agree", required = true },
  { name = "message", type = "textarea", label = "Your message", required = true },
]

[[forms.quote.webhooks]]
url = "https://chat.example.org/hooks/T0?token=s3cret"
format = "slack"
events = ["message.verified", "message.released"]
"#;

fn lines(o: &Output) -> Vec<String> {
    stdout(o).split("\r\n").map(str::to_owned).collect()
}

async fn verbs_know_each_message_s_form_and_fields(backend: Backend) {
    let Some(f) = Fixture::with_config(backend, TWO_FORMS).await else {
        return;
    };
    let hello = f
        .post(
            "contact",
            serde_json::json!({"name": "Ada", "email": "ada@example.org", "message": "Hello", "ref": "newsletter"}),
        )
        .await;
    let quote = f
        .post(
            "quote",
            serde_json::json!({
                "name": "Bob", "email": "bob@example.org", "message": "A shop, please",
                "company": "=SUM(A1)", "budget": "1-5k", "topics": ["Web", "App"], "consent": true,
            }),
        )
        .await;

    // list --form
    let out = f.run(&["list", "--form", "quote", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["id"], quote.0);
    assert_eq!(rows[0]["form"], "quote");
    let out = f.run(&["list", "--form", "nope"]);
    assert_eq!(out.status.code(), Some(2), "an unknown form is bad usage");
    assert_eq!(
        stderr(&out).trim(),
        "formgate: there is no form `nope`; the forms are contact, quote"
    );
    let out = f.run(&["list"]);
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    assert!(header.contains(" FORM "), "several forms: a FORM column: {text}");
    assert!(text.lines().any(|l| l.contains("quote") && l.contains("Bob")), "{text}");
    assert!(
        text.lines().any(|l| l.contains("contact") && l.contains("Ada")),
        "{text}"
    );

    // show --json: the fields in the form's order, with its labels, values as stored.
    let out = f.run(&["show", &quote.to_string(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let m = &shown["message"];
    assert_eq!(m["form"], "quote");
    assert_eq!(
        m["fields"],
        serde_json::json!([
            {"name": "company", "label": "<img src=x onerror=alert(1)> \"Company\"", "value": "=SUM(A1)"},
            {"name": "budget", "label": "Budget", "value": "1-5k"},
            {"name": "topics", "label": "Topics", "value": ["Web", "App"]},
            {"name": "consent", "label": "I agree", "value": true},
        ])
    );
    let out = f.run(&["show", &hello.to_string(), "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        shown["message"]["fields"],
        serde_json::json!([{"name": "ref", "label": "ref", "value": "newsletter"}]),
        "an open form's extra field, under its name"
    );

    // show: the form and the labelled fields after the header.
    let out = f.run(&["show", &quote.to_string()]);
    let text = stdout(&out);
    assert!(text.contains("Form:       quote (Ask for a quote)"), "{text}");
    for line in ["Budget:", "1-5k", "Topics:", "Web, App", "I agree:", "yes"] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert!(
        text.find("Fields:").unwrap() < text.find("A shop, please").unwrap(),
        "fields come before the body: {text}"
    );

    // export --form of a declared form: one column per field, defused.
    let out = f.run(&["export", "--form", "quote", "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = lines(&out);
    assert_eq!(
        rows[0],
        "id,status,name,email,subject,message,created_at,verified_at,released_at,ip,user_agent,form,company,budget,topics,consent"
    );
    assert_eq!(rows.len(), 3, "header, one message, and the final line end: {rows:?}");
    assert!(
        rows[1].ends_with(",quote,'=SUM(A1),1-5k,\"Web, App\",yes"),
        "{}",
        rows[1]
    );

    // An open form's (or a mixed) export: the fields as one JSON column.
    let out = f.run(&["export", "--form", "contact", "--format", "csv"]);
    let rows = lines(&out);
    assert!(rows[0].ends_with(",user_agent,form,fields"), "{}", rows[0]);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows[1].ends_with(r#",contact,"{""ref"":""newsletter""}""#),
        "{}",
        rows[1]
    );
    let out = f.run(&["export", "--format", "csv"]);
    let rows = lines(&out);
    assert!(rows[0].ends_with(",form,fields"), "{}", rows[0]);
    assert!(
        rows[1].contains(
            r#",quote,"{""company"":""=SUM(A1)"",""budget"":""1-5k"",""topics"":[""Web"",""App""],""consent"":true}""#
        ),
        "{}",
        rows[1]
    );

    // JSON export: every message with its form and labelled fields.
    let out = f.run(&["export", "--format", "json"]);
    let all: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["form"], "quote", "newest first");
    assert_eq!(all[0]["fields"][1]["label"], "Budget");
    assert_eq!(all[1]["form"], "contact");
    assert_eq!(all[1]["fields"][0]["value"], "newsletter");
    let out = f.run(&["export", "--form", "nope"]);
    assert_eq!(out.status.code(), Some(2));

    // A field's name and value are visitor text: shown on the terminal made safe.
    let evil = f
        .post(
            "contact",
            serde_json::json!({
                "name": "Eve", "email": "eve@example.org", "message": "hi",
                "x": "a\u{1b}]0;pwned\u{7}\u{9b}31m\u{202e}b\nsecond line",
            }),
        )
        .await;
    let out = f.run(&["show", &evil.to_string()]);
    let text = stdout(&out);
    let bad: Vec<char> = text
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c))
        .collect();
    assert!(bad.is_empty(), "show printed raw control characters {bad:?}: {text}");
    assert!(text.contains("second line"), "{text}");
}

async fn forms_lists_the_forms_and_prints_a_snippet_for_a_site_s_page(backend: Backend) {
    let Some(f) = Fixture::with_config(backend, TWO_FORMS).await else {
        return;
    };
    let out = f.run(&["forms"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (contact, quote) = text.split_once("\n\n").expect("one block per form");
    assert!(contact.starts_with("contact (default)  Contact "), "{text}");
    for url in [
        "https://forms.example.org/f/contact",
        "https://forms.example.org/contact",
        "https://forms.example.org/f/contact/schema",
    ] {
        assert!(contact.contains(url), "{url}: {contact}");
    }
    assert!(contact.contains("open:"), "{contact}");
    assert!(
        contact.contains("staff_inbox      Team <team@example.org>"),
        "{contact}"
    );
    assert!(quote.starts_with("quote  Ask for a quote\n"), "{quote}");
    assert!(quote.contains("https://forms.example.org/f/quote/schema"), "{quote}");
    assert!(!quote.contains("/contact"), "{quote}");
    assert!(quote.contains("declared:"), "{quote}");
    assert!(
        quote
            .lines()
            .any(|l| l.trim_start().starts_with("budget") && l.contains("select") && l.contains("optional")),
        "{quote}"
    );
    assert!(
        quote
            .lines()
            .any(|l| l.trim_start().starts_with("email") && l.contains("required, verified")),
        "{quote}"
    );
    assert!(quote.contains("allowed_origins  https://www.example.org"), "{quote}");
    assert!(quote.contains("thank_you_url    "), "{quote}");
    assert!(contact.contains("webhooks         (none)"), "{contact}");
    assert!(
        quote.contains(
            "webhooks         https://chat.example.org/hooks/T0  (slack; message.verified, message.released; 0 secrets)"
        ),
        "{quote}"
    );
    assert!(
        !quote.contains("s3cret"),
        "a webhook's query may hold a token: never printed"
    );

    let out = f.run(&["forms", "snippet", "quote"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = stdout(&out);
    assert!(
        html.contains(r#"<form method="post" action="https://forms.example.org/f/quote""#),
        "{html}"
    );
    for name in [
        "name", "email", "company", "budget", "topics", "consent", "message", "website",
    ] {
        assert!(html.contains(&format!("name=\"{name}\"")), "{name}: {html}");
    }
    assert!(html.contains(r#"type="email""#) && html.contains("<textarea") && html.contains("<select"));
    assert!(html.contains("<option>&lt;1k</option>"), "{html}");
    assert!(
        html.contains(r#"name="name" type="text" maxlength="200""#),
        "the name column's limit, as the form enforces it: {html}"
    );
    assert!(html.contains(r#"type="checkbox" name="topics" value="App""#), "{html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt; &quot;Company&quot;"),
        "the hostile label is escaped: {html}"
    );
    assert!(!html.contains("<img"), "{html}");
    assert!(
        html.contains(r#"aria-hidden="true" style="position:absolute;"#),
        "the honeypot is hidden without formgate's stylesheet: {html}"
    );
    assert!(html.contains(r#"<button type="submit">"#));
    assert_eq!(stderr(&out), "", "the form allows www.example.org: no note");

    let out = f.run(&["forms", "snippet", "contact"]);
    assert!(out.status.success());
    assert!(
        stderr(&out).contains("sets no allowed_origins"),
        "a form no other site may post says so: {}",
        stderr(&out)
    );
    let out = f.run(&["forms", "snippet", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the forms are contact, quote"));
}

const ONE_FORM: &str = r#"
public_url = "https://forms.example.org"
staff_inbox = "Team <team@example.org>"
"#;

/// A released message whose staff mail went out and whose webhook died, as `show` numbers them:
/// 1 the verification mail (queued: nothing sends it here), 2 the staff mail, 3 the webhook.
async fn sent_mail_and_dead_webhook(f: &Fixture) -> MessageId {
    use formgate::mail::queue::{Channel, SendOutcome};
    let id = f.message("Ada", "ada@example.org", "Hello", true).await;
    let store = &f.services.store;
    let now = f.services.actions.now();
    crate::support::store::release_to_staff_and_webhook(
        store,
        id,
        now,
        "https://bot:pw@hooks.example.com/in?token=s3cret",
        "msg_0123456789abcdef",
    )
    .await;
    let hooks = crate::support::store::finish_due(
        store,
        Channel::Webhook,
        now,
        SendOutcome::Dead {
            error: "HTTP 503 Service Unavailable".into(),
        },
    )
    .await;
    assert_eq!(hooks.len(), 1);
    // Only the staff mail: the verification mail is left queued.
    let items = store
        .claim_outbox("test-worker", now, now + 60, 100, Channel::Mail)
        .await
        .unwrap();
    let results: Vec<_> = items
        .iter()
        .map(|i| {
            let outcome = if i.kind == MailKind::Release {
                SendOutcome::Sent
            } else {
                SendOutcome::Retry {
                    at: now + 600,
                    error: "421 try later".into(),
                }
            };
            (i.id, outcome)
        })
        .collect();
    store.finish_outbox("test-worker", now, &results).await.unwrap();
    id
}

async fn show_numbers_each_destination_and_the_list_shows_the_worst(backend: Backend) {
    let Some(f) = Fixture::with_config(backend, ONE_FORM).await else {
        return;
    };
    let id = sent_mail_and_dead_webhook(&f).await;

    let out = f.run(&["show", &id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("Destinations:"), "{text}");
    assert!(
        text.contains("   1  verification  ada@example.org  retrying, next "),
        "{text}"
    );
    assert!(text.contains("   2  staff mail    team@example.org  sent "), "{text}");
    assert!(
        text.contains(
            "   3  webhook       https://hooks.example.com/in  dead after 1 attempt(s); last error: HTTP 503 Service Unavailable"
        ),
        "{text}"
    );
    assert!(
        !text.contains("s3cret") && !text.contains("pw@"),
        "no secret of the URL: {text}"
    );

    let out = f.run(&["show", &id.to_string(), "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let rows = json["outbox"].as_array().unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["number"].as_i64().unwrap(),
                r["destination"].as_str().unwrap().to_string(),
                r["delivery"].as_str().unwrap().to_string(),
                r["attempts"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "verification".into(), "retrying".into(), 1),
            (2, "staff mail".into(), "sent".into(), 1),
            (3, "webhook".into(), "dead".into(), 1),
        ]
    );
    assert_eq!(rows[2]["recipient"], "https://hooks.example.com/in");
    assert_eq!(rows[2]["message_id_header"], "msg_0123456789abcdef");
    assert_eq!(rows[2]["last_error"], "HTTP 503 Service Unavailable");
    assert!(!stdout(&out).contains("s3cret"));

    let out = f.run(&["list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["mail"]["kind"], "webhook", "the worst: {}", list[0]);
    assert_eq!(list[0]["mail"]["state"], "dead");
    let out = f.run(&["list"]);
    assert!(stdout(&out).contains("webhook dead: HTTP 503"), "{}", stdout(&out));
}

async fn redeliver_queues_a_sent_or_dead_delivery_again_with_its_webhook_id(backend: Backend) {
    use formgate::mail::queue::{Channel, OutboxState};
    let Some(f) = Fixture::with_config(backend, ONE_FORM).await else {
        return;
    };
    let id = sent_mail_and_dead_webhook(&f).await;
    let store = &f.services.store;
    let before = f.services.actions.now();

    let out = f.run(&["redeliver", &id.to_string(), "--to", "1"]);
    assert_eq!(out.status.code(), Some(1), "a retrying mail goes by itself");
    assert!(
        stderr(&out).contains(&format!("destination 1 of message {id} is retrying")),
        "{}",
        stderr(&out)
    );
    let out = f.run(&["redeliver", &id.to_string(), "--to", "9"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("message {id} has no destination 9 (it has 3")),
        "{}",
        stderr(&out)
    );

    // Without --to: every dead one.
    let out = f.run(&["redeliver", &id.to_string(), "--as", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("#{id}: queued destination 3 again (webhook to https://hooks.example.com/in)")
    );
    let rows = store.outbox_for_message(id).await.unwrap();
    let hook = &rows[2];
    assert_eq!(hook.state, OutboxState::Queued);
    assert_eq!(hook.attempts, 0, "attempts start again");
    assert_eq!(hook.last_error, None);
    assert!(
        hook.next_attempt_at >= before && hook.next_attempt_at <= before + 60,
        "due now"
    );
    // A worker gets the same delivery: same webhook-id, same body, a new lifetime.
    let again = store
        .claim_outbox("test-worker", before + 1, before + 60, 10, Channel::Webhook)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id_header, "msg_0123456789abcdef");
    assert_eq!(
        again[0].body,
        formgate::mail::queue::MailBody::Rendered(br#"{"type":"message.released"}"#.to_vec())
    );
    let lifetime = formgate::clock::seconds(f.config.webhook_lifetime);
    assert!(again[0].give_up_at >= before + lifetime, "lifetime extended");

    let out = f.run(&["redeliver", &id.to_string()]);
    assert_eq!(out.status.code(), Some(1), "nothing is dead now");
    assert!(
        stderr(&out).contains(&format!("message {id} has no dead delivery")),
        "{}",
        stderr(&out)
    );
    let out = f.run(&["redeliver", &id.to_string(), "--to", "3"]);
    assert_eq!(out.status.code(), Some(1), "being sent right now");
    assert!(stderr(&out).contains("is sending"), "{}", stderr(&out));

    // A sent one may go again too.
    let out = f.run(&["redeliver", &id.to_string(), "--to", "2", "--as", "bob"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = store.outbox_for_message(id).await.unwrap();
    assert_eq!(
        (rows[1].state, rows[1].attempts, rows[1].sent_at),
        (OutboxState::Queued, 0, None)
    );
    assert_eq!(rows[1].message_id_header, "<release@example.org>", "same Message-ID");

    let trail = store.audit_trail(id).await.unwrap();
    let redelivered: Vec<_> = trail
        .iter()
        .filter(|a| a.action == "redeliver")
        .map(|a| (a.actor.as_str(), a.detail.clone().unwrap_or_default()))
        .collect();
    assert_eq!(redelivered.len(), 2, "{trail:?}");
    assert_eq!(redelivered[0].0, "alice");
    assert!(
        redelivered[0].1.contains("webhook") && redelivered[0].1.contains("HTTP 503"),
        "{redelivered:?}"
    );
    assert_eq!(redelivered[1].0, "bob");
    assert!(trail.iter().all(|a| a.action != "redeliver" || a.to_status.is_none()));
}

on_every_backend!(
    verbs_know_each_message_s_form_and_fields,
    forms_lists_the_forms_and_prints_a_snippet_for_a_site_s_page,
    show_numbers_each_destination_and_the_list_shows_the_worst,
    redeliver_queues_a_sent_or_dead_delivery_again_with_its_webhook_id,
);
