//! The outbox: retries, dead letters, leases, the .eml default, and clean shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use formgate::domain::{ContactForm, MessageId, NewMessage};
use formgate::mail::queue::{Channel, MailBody, MailKind, OutboxState, OutgoingMail, VerificationLink};
use formgate::store;

use crate::support::app::{Backend, Options, TestApp, on_every_backend, receipt_from_redirect, verify_path};
use crate::support::pg::TestDatabase;
use crate::support::smtp::{Behaviour, TestSmtp};

async fn wait_until<F: AsyncFn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn smtp_down_at_submit_time_delays_the_mail_until_the_server_is_back(backend: Backend) {
    let Some(mut app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let smtp = app.smtp.take().unwrap();
    let addr = smtp.addr();
    smtp.stop().await;

    assert_eq!(
        app.submit("ada@example.org").await.status(),
        303,
        "the visitor is not told about our SMTP trouble"
    );
    let store = app.store.clone();
    wait_until("the first attempt failed", async || {
        store.outbox_for_message(MessageId(1)).await.unwrap()[0].attempts == 1
    })
    .await;
    let row = &app.store.outbox_for_message(MessageId(1)).await.unwrap()[0];
    assert_eq!(row.state, OutboxState::Queued);
    assert!(
        row.last_error.as_deref().unwrap().contains("connect"),
        "{:?}",
        row.last_error
    );
    assert!(
        row.next_attempt_at - app.clock_now() <= 60,
        "first retry within a minute"
    );

    let smtp = TestSmtp::start_on(addr).await;
    app.clock.advance(61);
    let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        mails[0].header("Message-ID").unwrap(),
        row.message_id_header,
        "same Message-ID as queued"
    );
    app.smtp = Some(smtp);
    let link = verify_path(&app.mail(1).await);
    assert_eq!(app.client.post(app.url(&link)).send().await.unwrap().status(), 200);
}

async fn a_5xx_reply_dead_letters_the_mail_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    app.smtp()
        .set_behaviour(Behaviour::RejectRcpt(550, "no such user here".into()));
    app.submit("nobody@example.org").await;
    let store = app.store.clone();
    wait_until("the mail is dead", async || {
        store.outbox_for_message(MessageId(1)).await.unwrap()[0].state == OutboxState::Dead
    })
    .await;
    let row = &app.store.outbox_for_message(MessageId(1)).await.unwrap()[0];
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error.as_deref().unwrap().contains("no such user"),
        "{:?}",
        row.last_error
    );
    assert_eq!(app.smtp().count(), 0);
}

async fn a_4xx_reply_is_retried_with_backoff_and_the_same_bytes(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    app.smtp()
        .set_behaviour(Behaviour::RejectData(451, "greylisted, try later".into()));
    app.submit("ada@example.org").await;
    let store = app.store.clone();
    wait_until("one failed attempt", async || {
        store.outbox_for_message(MessageId(1)).await.unwrap()[0].attempts == 1
    })
    .await;
    let row = app.store.outbox_for_message(MessageId(1)).await.unwrap().remove(0);
    assert_eq!(row.state, OutboxState::Queued);
    assert!(row.last_error.as_deref().unwrap().contains("greylisted"));
    assert_eq!(row.next_attempt_at, row.last_attempt_at.unwrap() + 30);

    app.clock.advance(20);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        app.store.outbox_for_message(MessageId(1)).await.unwrap()[0].attempts,
        1,
        "not before it is due"
    );

    app.smtp().set_behaviour(Behaviour::Accept);
    app.clock.advance(11);
    let mail = app.mail(1).await;
    assert_eq!(mail.header("Message-ID").unwrap(), row.message_id_header);
    wait_until("recorded as sent", async || {
        store.outbox_for_message(MessageId(1)).await.unwrap()[0].state == OutboxState::Sent
    })
    .await;
    assert_eq!(app.store.outbox_for_message(MessageId(1)).await.unwrap()[0].attempts, 2);
}

/// Verification mails are rendered when sent, from their outbox row: every attempt carries the
/// same Message-ID, Date, subject and text (link, code, "I didn't send this" link), and a mail
/// queued before a resend keeps its own (now revoked) link instead of picking up the new one.
async fn a_verification_mail_renders_the_same_on_every_attempt_and_keeps_its_own_link(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    app.smtp()
        .set_behaviour(Behaviour::RejectData(451, "greylisted, try later".into()));
    let receipt = receipt_from_redirect(&app.submit("ada@example.org").await);
    let store = app.store.clone();
    wait_until("the first mail failed once", async || {
        store.outbox_for_message(MessageId(1)).await.unwrap()[0].attempts == 1
    })
    .await;
    let res = app.post_form("/contact/resend", &[("receipt", &receipt)]).await;
    assert_eq!(res.status(), 303);
    wait_until("the second mail failed once", async || {
        let rows = store.outbox_for_message(MessageId(1)).await.unwrap();
        rows.len() == 2 && rows[1].attempts == 1
    })
    .await;
    let refused = app.smtp().rejected();
    assert_eq!(refused.len(), 2);

    app.smtp().set_behaviour(Behaviour::Accept);
    app.clock.advance(31);
    let delivered = app.smtp().wait_for(2, Duration::from_secs(10)).await;
    for mail in &delivered {
        let id = mail.header("Message-ID").unwrap();
        let first = refused
            .iter()
            .find(|r| r.header("Message-ID").unwrap() == id)
            .unwrap_or_else(|| panic!("{id} was not tried before"));
        for header in ["Date", "Subject", "To", "From"] {
            assert_eq!(mail.header(header), first.header(header), "{header} of {id}");
        }
        assert_eq!(mail.text_body(), first.text_body(), "the text of {id}");
        assert_eq!(mail.html_body(), first.html_body(), "the HTML of {id}");
    }
    let rows = store.outbox_for_message(MessageId(1)).await.unwrap();
    let by_row: Vec<String> = rows
        .iter()
        .map(|row| {
            let mail = delivered
                .iter()
                .find(|m| m.header("Message-ID").unwrap() == row.message_id_header)
                .expect("each row's mail was delivered");
            verify_path(mail)
        })
        .collect();
    assert_ne!(by_row[0], by_row[1], "the resend carries a new link");
    assert_eq!(
        app.client.post(app.url(&by_row[0])).send().await.unwrap().status(),
        400,
        "the first mail kept the link it was queued with, which the resend revoked"
    );
    assert_eq!(app.client.post(app.url(&by_row[1])).send().await.unwrap().status(), 200);
}

/// A row whose recipient the mail cannot be built for goes to the dead letters at once, with the
/// reason: no later attempt could do better. (A template that fails is retried instead.)
async fn an_unrenderable_verification_mail_is_dead_lettered_with_the_reason(backend: Backend) {
    let Some(seeded) = seeded_database_with(backend, 1, |_| {
        let mut mail = fake_verify_mail("not an address");
        mail.body = MailBody::Verification(VerificationLink {
            nonce: "nonce".into(),
            expires_at: 4_000_000_000,
        });
        mail
    })
    .await
    else {
        return;
    };
    let app = spawn_on_seeded(seeded, TestSmtp::start().await, Options::default()).await;
    let store = app.store.clone();
    wait_until("the mail is dead", async || {
        store.outbox_for_message(MessageId(1)).await.unwrap()[0].state == OutboxState::Dead
    })
    .await;
    let row = app.store.outbox_for_message(MessageId(1)).await.unwrap().remove(0);
    assert_eq!(row.attempts, 1);
    let error = row.last_error.unwrap();
    assert!(
        error.contains("cannot render") && error.contains("recipient address"),
        "{error}"
    );
    assert_eq!(app.smtp().count(), 0);
}

/// A template that fails only when rendered (loading checks its syntax, not the names it calls)
/// can be mended by the operator and the instance restarted: the mail waits and is retried.
async fn a_template_that_fails_when_rendered_is_retried(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some((url, database)) = backend.fresh_database(dir.path()).await else {
        return;
    };
    let email = dir.path().join("ui/email");
    std::fs::create_dir_all(&email).unwrap();
    std::fs::write(email.join("verify.txt"), "Confirm: {{ no_such_function() }}\n").unwrap();
    let smtp = TestSmtp::start().await;
    let target = formgate::config::MailTarget::Smtp(formgate::config::SmtpUrl::parse(&smtp.url()).unwrap());
    let mut config = formgate::config::Config::for_tests(url, target);
    config.ui_dir = Some(dir.path().join("ui"));
    let mut app = TestApp::spawn_config(config, dir, Some(smtp), &Options::default()).await;
    app.database = database;

    assert_eq!(app.submit("ada@example.org").await.status(), 303);
    let store = app.store.clone();
    wait_until("the first attempt failed", async || {
        store.outbox_for_message(MessageId(1)).await.unwrap()[0].attempts == 1
    })
    .await;
    let row = app.store.outbox_for_message(MessageId(1)).await.unwrap().remove(0);
    assert_eq!(row.state, OutboxState::Queued, "retried, not dead");
    let error = row.last_error.unwrap();
    assert!(
        error.contains("cannot render") && error.contains("no_such_function"),
        "{error}"
    );
    assert_eq!(row.next_attempt_at, row.last_attempt_at.unwrap() + 30);
    assert_eq!(app.smtp().count(), 0);
}

async fn retrying_stops_after_the_mail_lifetime(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    app.smtp().set_behaviour(Behaviour::RejectData(451, "still not".into()));
    app.submit("ada@example.org").await;
    let store = app.store.clone();
    // Jump through three days of hourly retries.
    for _ in 0..200 {
        let row = store.outbox_for_message(MessageId(1)).await.unwrap().remove(0);
        if row.state == OutboxState::Dead {
            assert!(row.last_error.unwrap().contains("gave up after"));
            assert!(row.attempts > 5);
            return;
        }
        app.clock.advance(3600);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    panic!("never dead-lettered");
}

async fn connections_are_reused_across_mails(backend: Backend) {
    let Some(app) = TestApp::spawn_on_with(
        backend,
        Options {
            lanes: 1,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    for i in 0..20 {
        app.submit(&format!("v{i}@example.org")).await;
    }
    app.smtp().wait_for(20, Duration::from_secs(10)).await;
    assert_eq!(app.smtp().connections(), 1, "one lane, one connection for all 20 mails");
}

/// A burst of posts with the worker's hand-over nearly always full (room for 2) and with none at
/// all: every mail goes out exactly once, on its first attempt, whichever way it reached the
/// worker (in memory, leased when queued, or claimed from the outbox).
async fn a_burst_is_mailed_once_each_whether_handed_over_or_claimed(backend: Backend) {
    for handover in [2, 0] {
        let Some(app) = TestApp::spawn_on_with(
            backend,
            Options {
                handover,
                ..Options::default()
            },
        )
        .await
        else {
            return;
        };
        const N: usize = 40;
        let mut posts = tokio::task::JoinSet::new();
        for i in 0..N {
            let (client, url) = (app.client.clone(), app.url("/contact"));
            let body = format!("name=Ada&email=burst{i}%40example.org&message=Hello");
            posts.spawn(async move {
                let post = client
                    .post(url)
                    .header("content-type", "application/x-www-form-urlencoded");
                post.body(body).send().await.unwrap().status()
            });
        }
        while let Some(status) = posts.join_next().await {
            assert_eq!(status.unwrap(), 303);
        }
        app.smtp().wait_for(N, Duration::from_secs(15)).await;
        tokio::time::sleep(Duration::from_millis(300)).await; // a duplicate would show by now
        let mut to: Vec<String> = app.smtp().received().iter().flat_map(|m| m.rcpt_to.clone()).collect();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), N, "hand-over {handover}: one mail per post");
        assert_eq!(app.smtp().received().len(), N, "hand-over {handover}: no mail twice");
        for id in 1..=N as i64 {
            let rows = app.store.outbox_for_message(MessageId(id)).await.unwrap();
            let row = &rows[0];
            assert_eq!(
                (row.state, row.attempts),
                (OutboxState::Sent, 1),
                "hand-over {handover}: {row:?}"
            );
            assert!(row.lease_owner.is_none());
        }
    }
}

fn fake_verify_mail(to: &str) -> OutgoingMail {
    OutgoingMail {
        kind: MailKind::Verify,
        recipient: to.into(),
        sender: "forms@example.org".into(),
        message_id_header: "<crash-test@example.org>".into(),
        body: MailBody::Rendered(
            b"From: forms@example.org\r\nTo: a@example.org\r\nMessage-ID: <crash-test@example.org>\r\nSubject: x\r\n\r\nbody\r\n".to_vec(),
        ),
        give_up_at: i64::MAX,
    }
}

/// A database made before any app runs on it, and what keeps it alive.
struct Seeded {
    dir: tempfile::TempDir,
    url: String,
    database: Option<TestDatabase>,
}

/// A database with `n` queued verification mails (None: PostgreSQL unreachable, skip).
async fn seeded_database(backend: Backend, n: usize) -> Option<Seeded> {
    seeded_database_with(backend, n, fake_verify_mail).await
}

/// Like `seeded_database`, with each message's mail made by `mail` from its address.
async fn seeded_database_with(
    backend: Backend,
    n: usize,
    mail: impl Fn(&str) -> OutgoingMail + Send + Sync,
) -> Option<Seeded> {
    let dir = tempfile::tempdir().unwrap();
    let (url, database) = backend.fresh_database(dir.path()).await?;
    let now = formgate::clock::Clock::now(&formgate::clock::SystemClock);
    let store = store::connect(&url).await.unwrap();
    for i in 0..n {
        let email = format!("v{i}@example.org");
        let form = ContactForm {
            name: "A".into(),
            email: email.clone(),
            subject: None,
            message: "m".into(),
            ..Default::default()
        };
        let msg = NewMessage::parse(&form, None, None).unwrap();
        crate::support::store::insert_message(&store, &msg, now, "nonce", now + 3600, &|_| Ok(mail(&email))).await;
    }
    Some(Seeded { dir, url, database })
}

async fn spawn_on_seeded(seeded: Seeded, smtp: TestSmtp, opts: Options) -> TestApp {
    let target = formgate::config::MailTarget::Smtp(formgate::config::SmtpUrl::parse(&smtp.url()).unwrap());
    let mut config = formgate::config::Config::for_tests(seeded.url, target);
    config.smtp_timeout = Duration::from_secs(2);
    let mut app = TestApp::spawn_config(config, seeded.dir, Some(smtp), &opts).await;
    app.database = seeded.database;
    app
}

async fn a_crashed_workers_lease_expires_and_the_mail_goes_out_again(backend: Backend) {
    let Some(seeded) = seeded_database(backend, 1).await else {
        return;
    };
    {
        // A worker claimed the mail and died before recording anything.
        let store = store::connect(&seeded.url).await.unwrap();
        let now = formgate::clock::Clock::now(&formgate::clock::SystemClock);
        assert_eq!(
            store
                .claim_outbox("crashed-worker", now, now + 120, 10, Channel::Mail)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            store
                .claim_outbox("someone-else", now, now + 120, 10, Channel::Mail)
                .await
                .unwrap()
                .is_empty(),
            "a lease excludes others"
        );
    }
    let app = spawn_on_seeded(seeded, TestSmtp::start().await, Options::default()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.smtp().count(), 0, "not while the lease holds");
    app.clock.advance(121);
    let mail = app.mail(1).await;
    assert_eq!(
        mail.header("Message-ID").unwrap(),
        "<crash-test@example.org>",
        "same Message-ID: a recognisable duplicate"
    );
}

/// Runs `sql` on the seeded database as it is, bypassing its CHECK constraints: a row only a
/// newer (or broken) formgate would write.
async fn write_past_the_checks(seeded: &Seeded, sql: &str) {
    use sqlx::Connection;
    if seeded.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&seeded.url).await.unwrap();
        sqlx::query("PRAGMA ignore_check_constraints = ON")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&seeded.url).await.unwrap();
        sqlx::query("ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

/// (last_error, attempts, state) of the outbox row `id`, read raw: formgate cannot read the row.
async fn raw_outbox_row(seeded_url: &str, id: i64) -> (Option<String>, i64, String) {
    use sqlx::Connection;
    let sql = "SELECT last_error, attempts, state FROM outbox WHERE id = $1";
    if seeded_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(seeded_url).await.unwrap();
        sqlx::query_as(sql).bind(id).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(seeded_url).await.unwrap();
        sqlx::query_as(sql).bind(id).fetch_one(&mut c).await.unwrap()
    }
}

/// The id of the oldest outbox row.
async fn first_outbox_id(seeded_url: &str) -> i64 {
    use sqlx::Connection;
    let sql = "SELECT MIN(id) FROM outbox";
    if seeded_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(seeded_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(seeded_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

/// SQLite keeps a rendered mail's bytes in a table of their own; one gone missing (a hand-edited
/// database, a bad restore) is set aside like an unreadable row, and the others go out.
#[tokio::test]
async fn sqlite_a_mail_whose_message_is_gone_does_not_hold_up_the_others() {
    let seeded = seeded_database(Backend::Sqlite, 3).await.unwrap();
    write_past_the_checks(
        &seeded,
        "DELETE FROM outbox_payloads WHERE outbox_id = (SELECT MIN(id) FROM outbox)",
    )
    .await;
    let bad = first_outbox_id(&seeded.url).await;
    let store = store::connect(&seeded.url).await.unwrap();
    let now = formgate::clock::Clock::now(&formgate::clock::SystemClock);
    let claimed = store
        .claim_outbox("w", now, now + 120, 10, Channel::Mail)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2, "the other two are claimed");
    assert!(claimed.iter().all(|i| i.id != bad));
    let (error, attempts, state) = raw_outbox_row(&seeded.url, bad).await;
    assert!(error.as_deref().unwrap_or("").contains("has no message"), "{error:?}");
    assert_eq!((attempts, state.as_str()), (1, "queued"));
}

async fn a_mail_this_version_cannot_read_does_not_hold_up_the_others(backend: Backend) {
    let queued_at = formgate::clock::Clock::now(&formgate::clock::SystemClock);
    let lifetime = 3 * 24 * 3600;
    let mail = move |to: &str| OutgoingMail {
        give_up_at: queued_at + lifetime,
        ..fake_verify_mail(to)
    };
    let Some(seeded) = seeded_database_with(backend, 3, mail).await else {
        return;
    };
    // The first of three queued mails is of a kind a later version might add.
    write_past_the_checks(
        &seeded,
        "UPDATE outbox SET kind = 'digest' WHERE id = (SELECT MIN(id) FROM outbox)",
    )
    .await;
    let url = seeded.url.clone();
    let store = store::connect(&url).await.unwrap();
    let now = formgate::clock::Clock::now(&formgate::clock::SystemClock);
    let claimed = store
        .claim_outbox("w", now, now + 120, 10, Channel::Mail)
        .await
        .unwrap();
    let ids: Vec<i64> = claimed.iter().map(|i| i.id).collect();
    assert_eq!(ids.len(), 2, "the readable two are claimed: {ids:?}");
    let bad = first_outbox_id(&url).await;
    assert!(!ids.contains(&bad));
    let (error, attempts, state) = raw_outbox_row(&url, bad).await;
    assert!(error.as_deref().unwrap_or("").contains("digest"), "{error:?}");
    assert_eq!(
        (attempts, state.as_str()),
        (1, "queued"),
        "kept for a worker that can read it"
    );
    assert!(
        store
            .claim_outbox("w2", now + 1, now + 121, 10, Channel::Mail)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        raw_outbox_row(&url, bad).await.1,
        1,
        "not claimed again while the lease holds (it would only fail again)"
    );
    store.release_leases("w").await.unwrap();
    drop(store);

    // The app sends the readable two, and goes on sending.
    let app = spawn_on_seeded(seeded, TestSmtp::start().await, Options::default()).await;
    app.mail(2).await;
    app.clock.advance(lifetime + 24 * 3600);
    // Past the mail lifetime, the unreadable row is dead, with why.
    let mut dead = false;
    for _ in 0..100 {
        let (_, _, state) = raw_outbox_row(&url, bad).await;
        if state == "dead" {
            dead = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dead, "dead once its lifetime has passed");
    assert_eq!(app.smtp().count(), 2);
}

async fn shutdown_finishes_the_send_in_flight_and_hands_back_unstarted_leases(backend: Backend) {
    // Two mails queued before start: one batch claims both; the single lane hangs on the first.
    let Some(seeded) = seeded_database(backend, 2).await else {
        return;
    };
    let smtp = TestSmtp::start().await;
    smtp.set_behaviour(Behaviour::Hang);
    let app = spawn_on_seeded(
        seeded,
        smtp,
        Options {
            lanes: 1,
            ..Options::default()
        },
    )
    .await;
    let store = app.store.clone();
    wait_until("both claimed", async || {
        let a = store.outbox_for_message(MessageId(1)).await.unwrap();
        let b = store.outbox_for_message(MessageId(2)).await.unwrap();
        a[0].lease_owner.is_some() && b[0].lease_owner.is_some()
    })
    .await;
    let _database = app.stop().await; // returns once drained (a clean exit is asserted inside)
    let first = store.outbox_for_message(MessageId(1)).await.unwrap().remove(0);
    assert_eq!(
        (first.state, first.attempts),
        (OutboxState::Queued, 1),
        "the hung send ran into its timeout and is retried later"
    );
    let second = store.outbox_for_message(MessageId(2)).await.unwrap().remove(0);
    assert_eq!(
        (second.state, second.attempts),
        (OutboxState::Queued, 0),
        "never started"
    );
    for row in [first, second] {
        assert!(row.lease_owner.is_none(), "lease of outbox #{} handed back", row.id);
    }
}

/// A server that takes a mail's DATA and never answers holds the lane carrying it until the SMTP
/// timeout (3 s here); the mails posted meanwhile go out over the other lane at once.
async fn a_hung_connection_delays_only_the_mail_it_carries(backend: Backend) {
    let Some(app) = TestApp::spawn_on_with(
        backend,
        Options {
            lanes: 2,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    app.smtp().hang_after_data(1);
    let hung_at = std::time::Instant::now();
    app.submit("hung@example.org").await;
    let smtp = app.smtp();
    wait_until("the first mail is on its way", async || smtp.connections() >= 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..10 {
        app.submit(&format!("v{i}@example.org")).await;
    }
    app.smtp().wait_for(10, Duration::from_secs(2)).await;
    let took = hung_at.elapsed();
    assert!(
        took < app.config.smtp_timeout,
        "10 mails took {took:?}, as long as the hung send's timeout"
    );
    let first = app.store.outbox_for_message(MessageId(1)).await.unwrap().remove(0);
    assert_eq!(first.attempts, 0, "still being sent");
}

/// A worker that is not running any more (its process gone) on this machine: the next instance
/// frees its leases as it starts and sends its mails at once, not when the leases lapse. A lease
/// held by a process that is alive is left alone.
async fn a_dead_instances_mails_go_out_as_soon_as_the_next_one_starts(backend: Backend) {
    let Some(seeded) = seeded_database(backend, 4).await else {
        return;
    };
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    let mut alive = Command::new("sleep").arg("30").spawn().unwrap();
    let machine = formgate::mail::this_machine();
    {
        let store = store::connect(&seeded.url).await.unwrap();
        let now = formgate::clock::Clock::now(&formgate::clock::SystemClock);
        let dead = format!("{machine}:{gone_pid}:mail:0000");
        let live = format!("{machine}:{}:mail:0000", alive.id());
        assert_eq!(
            store
                .claim_outbox(&dead, now, now + 30, 3, Channel::Mail)
                .await
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            store
                .claim_outbox(&live, now, now + 30, 3, Channel::Mail)
                .await
                .unwrap()
                .len(),
            1
        );
    }
    let started = std::time::Instant::now();
    let app = spawn_on_seeded(seeded, TestSmtp::start().await, Options::default()).await;
    app.smtp().wait_for(3, Duration::from_secs(5)).await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp().count(), 3, "the live process's mail is not taken");
    let _ = alive.kill();
    let _ = alive.wait();
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

/// A live worker renews the leases of the mails it holds: a send that outlasts the lease it was
/// claimed with is not taken by another worker.
async fn a_live_workers_lease_is_renewed_and_not_taken_by_others(backend: Backend) {
    let lease = Duration::from_secs(3); // renewed every second
    let Some(app) = TestApp::spawn_on_with(
        backend,
        Options {
            lanes: 1,
            lease,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    app.smtp().hang_after_data(1);
    app.submit("ada@example.org").await;
    let smtp = app.smtp();
    wait_until("the mail is on its way", async || smtp.connections() >= 1).await;
    app.clock.advance(2);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    app.clock.advance(2); // past the lease it was queued with
    let now = app.clock_now();
    let taken = app
        .store
        .claim_outbox("another-instance", now, now + 3, 10, Channel::Mail)
        .await
        .unwrap();
    assert!(taken.is_empty(), "a renewed lease holds: {taken:?}");
    let row = app.store.outbox_for_message(MessageId(1)).await.unwrap().remove(0);
    assert_eq!(row.state, OutboxState::Queued);
    assert!(row.lease_owner.is_some_and(|o| o != "another-instance"));
}

on_every_backend!(
    smtp_down_at_submit_time_delays_the_mail_until_the_server_is_back,
    a_5xx_reply_dead_letters_the_mail_at_once,
    a_4xx_reply_is_retried_with_backoff_and_the_same_bytes,
    a_verification_mail_renders_the_same_on_every_attempt_and_keeps_its_own_link,
    an_unrenderable_verification_mail_is_dead_lettered_with_the_reason,
    a_template_that_fails_when_rendered_is_retried,
    retrying_stops_after_the_mail_lifetime,
    connections_are_reused_across_mails,
    a_burst_is_mailed_once_each_whether_handed_over_or_claimed,
    a_crashed_workers_lease_expires_and_the_mail_goes_out_again,
    shutdown_finishes_the_send_in_flight_and_hands_back_unstarted_leases,
    a_mail_this_version_cannot_read_does_not_hold_up_the_others,
    a_hung_connection_delays_only_the_mail_it_carries,
    a_dead_instances_mails_go_out_as_soon_as_the_next_one_starts,
    a_live_workers_lease_is_renewed_and_not_taken_by_others,
);

/// The zero-configuration start is SQLite's: no database to set up.
#[tokio::test]
async fn serve_with_no_configuration_writes_eml_files_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_formgate"))
        .arg("serve")
        .current_dir(dir.path())
        .env("FORMGATE_LISTEN", "127.0.0.1:0")
        .env("FORMGATE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let client = crate::support::app::client();
    let res = client
        .post(format!("{base}/contact"))
        .form(&[("name", "Ada"), ("email", "ada@example.org"), ("message", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    let outbox = dir.path().join("mail-outbox");
    let mut file = None;
    for _ in 0..100 {
        // Only a finished mail: it is written under a temporary name and then renamed.
        file = std::fs::read_dir(&outbox).ok().and_then(|d| {
            d.map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|x| x == "eml"))
        });
        if file.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let file = file.expect("an .eml file appears");
    assert!(file.extension().unwrap() == "eml");
    let raw = std::fs::read(&file).unwrap();
    let parsed = mailparse::parse_mail(&raw).unwrap();
    assert_eq!(
        parsed.headers.iter().find(|h| h.get_key() == "To").unwrap().get_value(),
        "ada@example.org"
    );
    assert_eq!(parsed.subparts.len(), 2, "text and HTML");
    assert!(
        parsed.subparts[0]
            .get_body()
            .unwrap()
            .contains(&format!("{base}/verify/v1.1.")),
        "the link points at this server"
    );

    let key = dir.path().join("formgate.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(dir.path().join("formgate.db").exists());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
}
