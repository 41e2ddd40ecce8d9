//! Webhooks over real HTTP: a receiver inside the test process, the signature checked by the
//! `standardwebhooks` crate (an independent implementation), retries, dead ends, the guard
//! against internal addresses, chat text that cannot ping, two instances delivering once.

use std::time::Duration;

use formgate::app::Server;
use formgate::clock::ManualClock;
use formgate::config::{Config, MailTarget, SmtpUrl};
use formgate::domain::MessageId;
use formgate::mail::OutboxConfig;
use formgate::mail::queue::{MailKind, OutboxRecord, OutboxState};

use crate::support::app::{Backend, Options, TestApp, on_every_backend, verify_path};
use crate::support::smtp::TestSmtp;
use crate::support::webhook::{Received, Reply, TestReceiver};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The configuration of a site whose messages are released as soon as they are confirmed, with
/// `webhooks` (TOML `[[webhooks]]` tables) as its destinations besides the staff inbox.
fn site(webhooks: &str) -> String {
    format!("staff_inbox = \"Team <team@example.org>\"\nauto_release = true\nwebhook_allow_private = true\n{webhooks}")
}

fn standard(url: &str, events: &str) -> String {
    format!("[[webhooks]]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\nevents = {events}\n")
}

/// The test defaults with the destinations of `toml`.
fn config_for(toml: &str, database: String, smtp: &TestSmtp) -> Config {
    let parsed = Config::from_toml(toml, &|_| None).unwrap();
    let mut config = Config::for_tests(database, MailTarget::Smtp(SmtpUrl::parse(&smtp.url()).unwrap()));
    config.smtp_timeout = Duration::from_secs(3);
    config.mail_from = "Example Forms <forms@example.org>".parse().unwrap();
    config.staff_inbox = parsed.staff_inbox;
    config.auto_release = parsed.auto_release;
    config.webhooks = parsed.webhooks;
    config.webhook_allow_private = parsed.webhook_allow_private;
    config.forms = parsed.forms;
    config
}

async fn spawn(backend: Backend, toml: &str) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let (db, database) = backend.fresh_database(dir.path()).await?;
    let smtp = TestSmtp::start().await;
    let config = config_for(toml, db, &smtp);
    let mut app = TestApp::spawn_config(config, dir, Some(smtp), &Options::default()).await;
    app.database = database;
    Some(app)
}

/// The verification mails received so far, oldest first.
fn verification_mails(app: &TestApp) -> Vec<crate::support::smtp::ReceivedMail> {
    let mut all = app.smtp().received();
    all.retain(|m| m.text_body().contains("/verify/"));
    all
}

/// Posts a message with `text` and confirms it through its link: with auto_release, that releases
/// it. Returns its id.
async fn post_and_confirm(app: &TestApp, text: &str) -> MessageId {
    let before = verification_mails(app).len();
    let res = app
        .post_json(
            "/contact",
            serde_json::json!({
                "name": "Ada", "email": "ada@example.org", "subject": "A quote", "message": text,
                "company": "Analytical Engines",
            }),
        )
        .await;
    assert_eq!(res.status(), 202);
    let id = MessageId(res.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap());
    let mut mails = verification_mails(app);
    for _ in 0..200 {
        if mails.len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        mails = verification_mails(app);
    }
    let link = verify_path(mails.get(before).expect("a verification mail"));
    let res = app.client.post(app.url(&link)).send().await.unwrap();
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    id
}

async fn webhook_rows(app: &TestApp, id: MessageId) -> Vec<OutboxRecord> {
    let rows = app.store.outbox_for_message(id).await.unwrap();
    rows.into_iter().filter(|r| r.kind == MailKind::Webhook).collect()
}

async fn wait_for_row(app: &TestApp, id: MessageId, what: &str, done: impl Fn(&OutboxRecord) -> bool) -> OutboxRecord {
    for _ in 0..200 {
        if let Some(row) = webhook_rows(app, id).await.into_iter().find(|r| done(r)) {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}: {:#?}", webhook_rows(app, id).await);
}

/// Checks `r`'s signature with the `standardwebhooks` crate. Its `verify` also refuses a
/// timestamp five minutes off the wall clock, which a test that moves formgate's clock forward
/// makes; those attempts are checked against the crate's own signature for their timestamp.
fn verify_signature(r: &Received) {
    let wh = standardwebhooks::Webhook::new(SECRET).unwrap();
    let timestamp: i64 = r.header("webhook-timestamp").parse().unwrap();
    let wall = formgate::clock::Clock::now(&formgate::clock::SystemClock);
    if (timestamp - wall).abs() < 240 {
        wh.verify(&r.body, &r.headers)
            .unwrap_or_else(|e| panic!("the signature does not verify: {e:?}; headers {:?}", r.headers));
    } else {
        let expected = wh.sign(r.header("webhook-id"), timestamp, &r.body).unwrap();
        assert_eq!(r.header("webhook-signature"), expected);
    }
}

async fn a_released_message_reaches_every_webhook_signed(backend: Backend) {
    let hooks = TestReceiver::start().await;
    let toml = site(
        &(standard(&hooks.url("/released"), r#"["message.released"]"#)
            + &standard(&hooks.url("/both"), r#"["message.verified", "message.released"]"#)),
    );
    let Some(app) = spawn(backend, &toml).await else {
        return;
    };
    let id = post_and_confirm(&app, "Hello <b>team</b>").await;

    let got = hooks.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hooks.received().len(), 3, "one per event and destination");
    for r in &got {
        verify_signature(r);
        assert_eq!(r.header("content-type"), "application/json");
        assert!(
            r.header("user-agent").starts_with("formgate/"),
            "{}",
            r.header("user-agent")
        );
        assert!(r.header("webhook-id").starts_with("msg_"));
    }
    let released: Vec<&Received> = got.iter().filter(|r| r.json()["type"] == "message.released").collect();
    assert_eq!(released.len(), 2);
    assert_ne!(
        released[0].header("webhook-id"),
        released[1].header("webhook-id"),
        "one id per destination"
    );
    let verified: Vec<&Received> = got.iter().filter(|r| r.json()["type"] == "message.verified").collect();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].path, "/both");

    let event = released[0].json();
    let data = &event["data"];
    assert_eq!(data["id"], id.0);
    assert_eq!(data["form"], "contact");
    assert_eq!(data["email"], "ada@example.org");
    assert_eq!(data["subject"], "A quote");
    assert_eq!(data["message"], "Hello <b>team</b>");
    assert_eq!(data["released_by"], "auto-release");
    assert!(data["released_at"].as_str().unwrap().ends_with('Z'), "{event}");
    assert!(
        data["verified_at"].is_string() && data["submitted_at"].is_string(),
        "{event}"
    );
    assert_eq!(
        data["fields"],
        serde_json::json!([{ "name": "company", "label": "company", "value": "Analytical Engines" }]),
        "every field beyond the four above"
    );

    // The staff mail went too: the webhooks are destinations beside it.
    let rows = app.store.outbox_for_message(id).await.unwrap();
    assert!(rows.iter().any(|r| r.kind == MailKind::Release), "{rows:#?}");
    let hooks_rows = webhook_rows(&app, id).await;
    assert_eq!(hooks_rows.len(), 3);
    for r in &hooks_rows {
        wait_for_row(&app, id, "every delivery is sent", |row| {
            row.id == r.id && row.state == OutboxState::Sent
        })
        .await;
    }
}

async fn failures_are_retried_with_the_same_id_until_delivered(backend: Backend) {
    let hooks = TestReceiver::start().await;
    hooks.script([
        Reply::status(500).with_body("database on fire\u{1b}[31m ".repeat(200)),
        Reply::status(429).with_header("retry-after", "40"),
    ]);
    let Some(app) = spawn(backend, &site(&standard(&hooks.url("/h"), r#"["message.released"]"#))).await else {
        return;
    };
    let id = post_and_confirm(&app, "Hello").await;

    hooks.wait_for(1).await;
    let row = wait_for_row(&app, id, "the 500 is recorded", |r| r.attempts == 1).await;
    assert_eq!(row.state, OutboxState::Queued);
    let error = row.last_error.clone().unwrap();
    assert!(error.starts_with("HTTP 500"), "{error}");
    assert!(
        error.len() <= 1100,
        "at most a KiB of the answer: {} bytes",
        error.len()
    );
    assert!(!error.chars().any(char::is_control), "{error:?}");
    assert_eq!(
        row.next_attempt_at - app.clock_now(),
        5,
        "the schedule's first retry: 5 s"
    );

    app.clock.advance(5);
    hooks.wait_for(2).await;
    let row = wait_for_row(&app, id, "the 429 is recorded", |r| r.attempts == 2).await;
    assert!(row.last_error.as_deref().unwrap().starts_with("HTTP 429"));
    assert_eq!(
        row.next_attempt_at - app.clock_now(),
        300,
        "Retry-After 40 s is sooner than the schedule's 5 min: the schedule wins"
    );

    app.clock.advance(300);
    let got = hooks.wait_for(3).await;
    wait_for_row(&app, id, "delivered", |r| r.state == OutboxState::Sent).await;
    let ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same webhook-id on every attempt: {ids:?}"
    );
    assert_ne!(got[0].header("webhook-timestamp"), got[2].header("webhook-timestamp"));
    for r in &got {
        verify_signature(r);
    }
}

async fn a_long_retry_after_is_honoured(backend: Backend) {
    let hooks = TestReceiver::start().await;
    hooks.script([Reply::status(503).with_header("retry-after", "120")]);
    let Some(app) = spawn(backend, &site(&standard(&hooks.url("/h"), r#"["message.released"]"#))).await else {
        return;
    };
    let id = post_and_confirm(&app, "Hello").await;
    let row = wait_for_row(&app, id, "the 503 is recorded", |r| r.attempts == 1).await;
    assert_eq!(
        row.next_attempt_at - app.clock_now(),
        120,
        "never sooner than Retry-After"
    );
    app.clock.advance(119);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(hooks.received().len(), 1, "not before Retry-After");
    app.clock.advance(1);
    hooks.wait_for(2).await;
    wait_for_row(&app, id, "delivered", |r| r.state == OutboxState::Sent).await;
}

async fn redirects_are_not_followed_and_refusals_are_dead(backend: Backend) {
    let hooks = TestReceiver::start().await;
    let elsewhere = hooks.url("/elsewhere");
    hooks.script([
        Reply::status(302).with_header("location", elsewhere.clone()),
        Reply::status(410),
    ]);
    let toml = site(&standard(&hooks.url("/moved"), r#"["message.released"]"#));
    let Some(app) = spawn(backend, &toml).await else {
        return;
    };
    let id = post_and_confirm(&app, "Hello").await;
    let row = wait_for_row(&app, id, "the redirect is recorded", |r| r.attempts == 1).await;
    assert_eq!(row.state, OutboxState::Queued, "a 3xx is a failure, retried");
    assert!(row.last_error.as_deref().unwrap().contains("not followed"), "{row:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = hooks.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/moved", "the redirect was not followed");

    app.clock.advance(5);
    let row = wait_for_row(&app, id, "the 410 kills it", |r| r.state == OutboxState::Dead).await;
    assert!(row.last_error.as_deref().unwrap().contains("gone"), "{row:?}");

    // Another 4xx: dead at once.
    hooks.script([Reply::status(400).with_body("bad payload")]);
    let id = post_and_confirm(&app, "Again").await;
    let row = wait_for_row(&app, id, "the 400 kills it", |r| r.state == OutboxState::Dead).await;
    assert_eq!(row.attempts, 1);
    assert!(row.last_error.as_deref().unwrap().contains("bad payload"), "{row:?}");
}

async fn a_dead_receiver_never_holds_up_mail(backend: Backend) {
    // Nothing listens here.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let toml = site(&standard(
        &format!("http://127.0.0.1:{port}/h"),
        r#"["message.released"]"#,
    ));
    let Some(app) = spawn(backend, &toml).await else {
        return;
    };
    let id = post_and_confirm(&app, "Hello").await;
    let row = wait_for_row(&app, id, "the connection failure is recorded", |r| r.attempts == 1).await;
    assert_eq!(row.state, OutboxState::Queued);
    assert!(row.last_error.as_deref().unwrap().contains("connect"), "{row:?}");
    // The staff mail left regardless.
    let mails = app.smtp().wait_for(2, Duration::from_secs(10)).await;
    assert!(
        mails
            .iter()
            .any(|m| m.header("To").unwrap_or_default().contains("team@example.org"))
    );
}

on_every_backend!(
    a_released_message_reaches_every_webhook_signed,
    failures_are_retried_with_the_same_id_until_delivered,
    a_long_retry_after_is_honoured,
    redirects_are_not_followed_and_refusals_are_dead,
    a_dead_receiver_never_holds_up_mail,
);

#[tokio::test]
async fn chat_text_cannot_ping_or_forge_links() {
    let hooks = TestReceiver::start().await;
    let toml = site(&format!(
        "[[webhooks]]\nurl = \"{}\"\nformat = \"slack\"\n",
        hooks.url("/slack")
    ));
    let app = spawn(Backend::Sqlite, &toml).await.unwrap();
    post_and_confirm(
        &app,
        "<!channel> <!here> @everyone <https://evil.example|your invoice> & more",
    )
    .await;
    let got = hooks.wait_for(1).await;
    let body = got[0].json();
    let text = body["text"].as_str().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    for raw in ["<!channel>", "<!here>", "@everyone", "<https://evil", " & more"] {
        assert!(!text.contains(raw), "{raw} reaches the chat: {text}");
    }
    assert!(
        text.contains("&lt;!channel&gt;") && text.contains("&amp; more"),
        "{text}"
    );
    assert!(
        got[0].headers.get("webhook-signature").is_none(),
        "a chat webhook has no secret"
    );
}

#[tokio::test]
async fn an_internal_address_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = TestSmtp::start().await;
    let db = format!("sqlite://{}", dir.path().join("formgate.db").display());
    for url in [
        "http://127.0.0.1:9/h",
        "http://[::1]/h",
        "http://169.254.169.254/latest",
        "http://localhost/h",
    ] {
        let toml = standard(url, r#"["message.released"]"#);
        let config = config_for(&toml, db.clone(), &smtp);
        assert!(!config.webhook_allow_private);
        let err = Server::build_with(
            &config,
            std::sync::Arc::new(ManualClock::starting_now()),
            OutboxConfig::default(),
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{url} is accepted"));
        let err = format!("{err:#}");
        assert!(
            err.contains("internal address") && err.contains("webhook_allow_private"),
            "{url}: {err}"
        );
    }
}

/// Two instances on one PostgreSQL database: each delivery is sent by one of them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_webhook_once() {
    let Some(db) = crate::support::pg::TestDatabase::fresh().await else {
        return;
    };
    let hooks = TestReceiver::start().await;
    let smtp = TestSmtp::start().await;
    let toml = site(&standard(
        &hooks.url("/h"),
        r#"["message.verified", "message.released"]"#,
    ));
    let a = TestApp::spawn_config(
        config_for(&toml, db.url().to_string(), &smtp),
        tempfile::tempdir().unwrap(),
        None,
        &Options::default(),
    )
    .await;
    let b = TestApp::spawn_config(
        config_for(&toml, db.url().to_string(), &smtp),
        tempfile::tempdir().unwrap(),
        None,
        &Options::default(),
    )
    .await;
    const MESSAGES: usize = 20;
    for i in 0..MESSAGES {
        let app = if i % 2 == 0 { &a } else { &b };
        let res = app
            .post_json(
                "/contact",
                serde_json::json!({ "name": "Ada", "email": format!("ada{i}@example.org"), "message": "Hi" }),
            )
            .await;
        assert_eq!(res.status(), 202);
    }
    let mails = smtp.wait_for(MESSAGES, Duration::from_secs(20)).await;
    for (i, mail) in mails.iter().enumerate() {
        let app = if i % 2 == 0 { &b } else { &a };
        let res = app.client.post(app.url(&verify_path(mail))).send().await.unwrap();
        assert!(res.status().is_success() || res.status().is_redirection());
    }
    let got = hooks.wait_for(2 * MESSAGES).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got_after = hooks.received();
    assert_eq!(got_after.len(), got.len(), "no delivery twice");
    let mut ids: Vec<String> = got_after.iter().map(|r| r.header("webhook-id").to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2 * MESSAGES, "every event reached the receiver exactly once");
    drop((a, b));
}

/// `formgate check-config` checks the webhooks' addresses as `serve` does, and prints the
/// configuration without a webhook's secret, its query or the secret in a chat URL's path.
#[test]
fn check_config_refuses_an_internal_webhook_and_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let run = |toml: &str| {
        std::fs::write(dir.path().join("formgate.toml"), toml).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_formgate"))
            .arg("check-config")
            .current_dir(dir.path())
            .env("FORMGATE_SECRET_KEYS", "test-key-0123456789-0123456789-0123456789")
            .env("FORMGATE_LOG", "error")
            .output()
            .unwrap()
    };
    let out = run(&standard(
        "http://169.254.169.254/latest/meta-data",
        r#"["message.released"]"#,
    ));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("169.254.169.254") && err.contains("internal address"),
        "{err}"
    );

    let out = run(&format!(
        "webhook_allow_private = true\n{}[[webhooks]]\nurl = \"https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnopqrstuvwx\"\nformat = \"slack\"\n",
        standard("http://10.0.0.5/h?token=querysecret", r#"["message.released"]"#)
    ));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("http://10.0.0.5/h"), "{printed}");
    for secret in ["querysecret", "abcdefghijklmnopqrstuvwx", "MfKQ9r8"] {
        assert!(!printed.contains(secret), "{secret} printed: {printed}");
    }
}
