//! Scaling out: two formgate instances on one PostgreSQL database, visitors spread over both, one
//! SMTP server. Their outbox workers share one queue, and every mail must go out exactly once.
//! And a database on another machine can go away for a while.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use formgate::config::{Config, MailTarget, SmtpUrl};
use formgate::domain::MessageId;
use formgate::mail::queue::OutboxState;
use tokio::task::JoinSet;

use crate::support::app::{Backend, Options, TestApp, client};
use crate::support::pg::{TestDatabase, set_connections_allowed};
use crate::support::smtp::TestSmtp;

const MESSAGES: usize = 1000;
const IN_FLIGHT: usize = 16;
const DEADLINE: Duration = Duration::from_secs(60);

/// An instance of formgate on `database`, sending to `smtp` (which the test keeps).
async fn instance(database: &str, smtp: &TestSmtp) -> TestApp {
    let target = MailTarget::Smtp(SmtpUrl::parse(&smtp.url()).expect("smtp url"));
    // Same keys, as every instance behind one proxy needs (Config::for_tests has a fixed one).
    let config = Config::for_tests(database.to_string(), target);
    let dir = tempfile::tempdir().expect("tempdir");
    TestApp::spawn_config(config, dir, None, &Options::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_database_send_each_mail_exactly_once() {
    let Some(db) = TestDatabase::fresh().await else {
        return;
    };
    let smtp = TestSmtp::start().await;
    // Started together on an empty database: sqlx's migration lock makes them take turns.
    let (a, b) = tokio::join!(instance(db.url(), &smtp), instance(db.url(), &smtp));
    let bases = Arc::new([a.base.clone(), b.base.clone()]);
    let started = Instant::now();

    // IN_FLIGHT visitors at a time, taking turns between the two instances.
    let next = Arc::new(AtomicUsize::new(0));
    let mut visitors = JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (next, bases, client) = (next.clone(), bases.clone(), client());
        visitors.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= MESSAGES {
                    return ids;
                }
                let visitor =
                    serde_json::json!({ "name": "Ada", "email": format!("v{i}@example.org"), "message": "Hello" });
                let res = client
                    .post(format!("{}/contact", bases[i % 2]))
                    .json(&visitor)
                    .send()
                    .await
                    .expect("POST /contact");
                assert_eq!(res.status(), 202, "submission {i}");
                let v: serde_json::Value = res.json().await.expect("json");
                ids.push(MessageId(v["id"].as_i64().expect("id")));
            }
        });
    }
    let submitted = tokio::time::timeout(DEADLINE, visitors.join_all())
        .await
        .unwrap_or_else(|_| panic!("{MESSAGES} submissions took longer than {DEADLINE:?}"));
    let ids: Vec<MessageId> = submitted.into_iter().flatten().collect();
    assert_eq!(ids.len(), MESSAGES);
    let submit_time = started.elapsed();

    // wait_for panics with a count of what did arrive when time runs out.
    smtp.wait_for(MESSAGES, DEADLINE.saturating_sub(started.elapsed()))
        .await;
    let all_sent = started.elapsed();
    eprintln!(
        "{MESSAGES} messages over two instances: submitted in {submit_time:.2?}, all mails in {all_sent:.2?} \
         ({:.0} mails/s end to end); {} SMTP connections",
        MESSAGES as f64 / all_sent.as_secs_f64(),
        smtp.connections()
    );

    // A duplicate would come from a second worker sending the same row: give it time to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = smtp.received();
    let message_ids: HashSet<String> = mails
        .iter()
        .map(|m| m.header("Message-ID").expect("a Message-ID"))
        .collect();
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for mail in &mails {
        for to in &mail.rcpt_to {
            *per_recipient.entry(to.clone()).or_default() += 1;
        }
    }
    let wrong: Vec<String> = (0..MESSAGES)
        .map(|i| format!("v{i}@example.org"))
        .filter(|to| per_recipient.get(to) != Some(&1))
        .map(|to| format!("{to}: {}", per_recipient.get(&to).copied().unwrap_or(0)))
        .collect();
    assert!(
        wrong.is_empty(),
        "every visitor gets exactly one mail; these did not: {wrong:?}"
    );
    assert_eq!(mails.len(), MESSAGES, "no mail sent twice");
    assert_eq!(message_ids.len(), MESSAGES, "every Message-ID distinct");

    // And the shared outbox agrees: each message's one mail sent on the first attempt.
    let ids: HashSet<MessageId> = ids.into_iter().collect();
    assert_eq!(ids.len(), MESSAGES, "distinct message ids from the two instances");
    for id in ids {
        let rows = a.store.outbox_for_message(id).await.unwrap();
        assert_eq!(rows.len(), 1, "message {id:?}");
        assert_eq!(
            (rows[0].state, rows[0].attempts),
            (OutboxState::Sent, 1),
            "message {id:?}"
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_database_outage_is_a_503_within_seconds_and_service_resumes_without_a_restart() {
    let Some(app) = TestApp::spawn_on(Backend::Postgres).await else {
        return;
    };
    let url = app.config.database_url.clone();
    assert_eq!(app.submit("ada@example.org").await.status(), 303);

    set_connections_allowed(&url, false).await;
    let asked = Instant::now();
    let res = app.submit("bo@example.org").await;
    assert_eq!(res.status(), 503, "the visitor is told to try again, never \"sent\"");
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "an outage is an answer within seconds, not a hang (took {:?})",
        asked.elapsed()
    );
    assert_eq!(app.get("/healthz").await.status(), 503);

    set_connections_allowed(&url, true).await;
    assert_eq!(
        app.submit("cy@example.org").await.status(),
        303,
        "the pool reconnects by itself"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
}
