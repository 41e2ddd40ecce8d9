//! Abuse: the verification mail as a weapon (per-address and hourly caps, "I didn't send this"),
//! bot filters (honeypot, signed time trap) and hostile header input. Over real HTTP against the
//! real app, with a real SMTP listener.

use std::sync::Arc;
use std::time::Duration;

use formgate::app::Core;
use formgate::config::{MailTarget, SmtpUrl};
use formgate::domain::{MessageId, Status};

use crate::support::app::{Backend, Options, TestApp, on_every_backend};
use crate::support::smtp::TestSmtp;

/// The app with the shipped defaults for the mail caps (tests otherwise run without them).
async fn spawn_guarded(backend: Backend) -> Option<TestApp> {
    spawn_with_caps(backend, Some((1, Duration::from_secs(24 * 3600))), Some(500)).await
}

async fn spawn_with_caps(
    backend: Backend,
    per_address: Option<(u32, Duration)>,
    per_hour: Option<u32>,
) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, database) = backend.fresh_database(dir.path()).await?;
    let smtp = TestSmtp::start().await;
    let mail = MailTarget::Smtp(SmtpUrl::parse(&smtp.url()).expect("smtp url"));
    let mut config = formgate::config::Config::for_tests(db, mail);
    config.smtp_timeout = Duration::from_secs(3);
    config.mail_from = "Example Forms <forms@example.org>".parse().expect("mailbox");
    config.verify_mails_per_address = per_address;
    config.max_mails_per_hour = per_hour;
    let mut app = TestApp::spawn_config(config, dir, Some(smtp), &Options::default()).await;
    app.database = database;
    Some(app)
}

/// The "check your inbox" page a browser lands on, with the receipt taken out.
async fn landing_page(app: &TestApp, res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let receipt = location.strip_prefix("/contact/sent?r=").expect("redirect to the sent page");
    let page = app.get(&location).await.text().await.unwrap();
    (status, page.replace(receipt, "RECEIPT"))
}

async fn moderator(app: &TestApp) -> Core {
    Core::open(&app.config, Arc::new(app.clock.clone()), "http://127.0.0.1:8080")
        .await
        .expect("moderator core")
}

/// Lets the outbox worker send whatever it would, then counts what arrived.
async fn settled_mail_count(app: &TestApp) -> usize {
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.smtp().count()
}

async fn fifty_posts_naming_one_address_send_exactly_one_mail(backend: Backend) {
    let Some(app) = spawn_guarded(backend).await else {
        return;
    };
    let first = landing_page(&app, app.submit("victim@example.org").await).await;
    app.mail(1).await;
    for i in 0..49 {
        // Case does not make a new address.
        let email = if i % 2 == 0 { "victim@example.org" } else { "Victim@Example.ORG" };
        let again = landing_page(&app, app.submit(email).await).await;
        assert_eq!(again, first, "the visitor sees exactly the same page, mailed or not");
    }
    assert_eq!(settled_mail_count(&app).await, 1, "one mail per address per 24 h");
    for id in 1..=50 {
        let m = app.message(MessageId(id)).await;
        assert_eq!(m.status, Status::Pending, "every post is stored");
    }
    let trail = app.store.audit_trail(MessageId(2)).await.unwrap();
    assert!(
        trail[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("verification withheld: address already mailed within 24 h")),
        "{trail:?}"
    );
    assert!(app.store.outbox_for_message(MessageId(2)).await.unwrap().is_empty());

    // The visitor's own resend button counts as automatic: still held.
    let receipt = crate::support::app::receipt_from_redirect(&app.submit("victim@example.org").await);
    let res = app.post_form("/contact/resend", &[("receipt", &receipt)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(settled_mail_count(&app).await, 1);

    // A moderator's explicit resend goes out, and is audited.
    let core = moderator(&app).await;
    core.actions.resend(MessageId(2), "moderator:ann").await.unwrap();
    let mail = app.mail(2).await;
    assert_eq!(mail.header("To").as_deref(), Some("victim@example.org"));
    let trail = app.store.audit_trail(MessageId(2)).await.unwrap();
    let last = trail.last().unwrap();
    assert_eq!((last.actor.as_str(), last.action.as_str()), ("moderator:ann", "resend"));
    app.stop().await;
}

async fn the_hourly_cap_holds_mail_for_every_address(backend: Backend) {
    let Some(app) = spawn_with_caps(backend, None, Some(3)).await else {
        return;
    };
    for i in 0..5 {
        app.submit(&format!("visitor{i}@example.org")).await;
    }
    assert_eq!(settled_mail_count(&app).await, 3);
    let trail = app.store.audit_trail(MessageId(5)).await.unwrap();
    assert!(trail[0].detail.as_deref().unwrap_or("").contains("hourly mail limit (3)"), "{trail:?}");
    app.stop().await;
}

/// The "I didn't send this" link in a verification mail.
fn suppress_path(mail: &crate::support::smtp::ReceivedMail) -> String {
    let text = mail.text_body();
    let start = text.find("/suppress/").expect("a suppress link in the mail");
    text[start..].split_whitespace().next().unwrap().to_string()
}

async fn i_didnt_send_this_suppresses_the_address_until_a_moderator_lifts_it(backend: Backend) {
    let Some(app) = spawn_with_caps(backend, None, None).await else {
        return;
    };
    app.submit("stranger@example.org").await;
    let link = suppress_path(&app.mail(1).await);

    let res = app.get(&link).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Never email me again") && page.contains(&format!("action=\"{link}\"")), "{page}");
    assert!(app.store.suppressed().await.unwrap().is_empty(), "GET changes nothing");

    let res = app.client.post(app.url(&link)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("will not email this address again"));
    let again = app.client.post(app.url(&link)).send().await.unwrap();
    assert_eq!(again.status(), 200, "pressing twice is fine");
    let listed = app.store.suppressed().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].address, "stranger@example.org");

    // A tampered link suppresses nothing.
    let bad = format!("{}x", link);
    assert_eq!(app.client.post(app.url(&bad)).send().await.unwrap().status(), 400);

    // Later posts naming the address (in any case) are stored but never mailed; same page.
    let res = app.submit("Stranger@Example.org").await;
    assert_eq!(res.status(), 303);
    let core = moderator(&app).await;
    core.actions.resend(MessageId(2), "moderator:ann").await.unwrap();
    assert_eq!(settled_mail_count(&app).await, 1, "not even a moderator's resend goes out");
    let trail = app.store.audit_trail(MessageId(2)).await.unwrap();
    assert!(trail.iter().all(|a| a.detail.as_deref().unwrap_or("").contains("suppressed")), "{trail:?}");

    // The moderator lifts it: mail flows again.
    assert!(core.actions.unsuppress("STRANGER@example.org", "moderator:ann").await.unwrap());
    assert!(!core.actions.unsuppress("stranger@example.org", "moderator:ann").await.unwrap());
    app.submit("stranger@example.org").await;
    app.mail(2).await;
    app.stop().await;
}

/// The signed time field of the form page.
async fn form_token(app: &TestApp) -> String {
    let html = app.get("/").await.text().await.unwrap();
    let at = html.find("name=\"form_token\" value=\"").expect("a form token on the form page");
    let rest = &html[at + "name=\"form_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn post_with(app: &TestApp, email: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut fields = vec![("name", "Ada Lovelace"), ("email", email), ("message", "Hello, a quote please.")];
    fields.extend_from_slice(extra);
    app.post_form("/contact", &fields).await
}

async fn bots_are_stored_as_spam_unmailed_and_told_nothing_and_not_spam_mails_them(backend: Backend) {
    let Some(app) = spawn_guarded(backend).await else {
        return;
    };
    let person = landing_page(&app, app.submit("person@example.org").await).await;
    app.mail(1).await;

    // The honeypot: same 303 and page as a person gets, stored as spam, no mail.
    let honeypot = post_with(&app, "bot1@example.org", &[("website", "http://spam.example")]).await;
    assert_eq!(landing_page(&app, honeypot).await, person);
    assert_eq!(app.message(MessageId(2)).await.status, Status::Spam);

    // The time trap: posted within 3 s of the page being served.
    let token = form_token(&app).await;
    let fast = post_with(&app, "bot2@example.org", &[("form_token", &token), ("website", "")]).await;
    assert_eq!(landing_page(&app, fast).await, person);
    assert_eq!(app.message(MessageId(3)).await.status, Status::Spam);
    let trail = app.store.audit_trail(MessageId(3)).await.unwrap();
    assert!(trail[0].detail.as_deref().unwrap().contains("too fast"), "{trail:?}");

    // A forged token, and a page older than 12 h.
    let forged = format!("{}A", &token[..token.len() - 1]);
    post_with(&app, "bot3@example.org", &[("form_token", &forged)]).await;
    assert_eq!(app.message(MessageId(4)).await.status, Status::Spam);
    app.clock.advance(13 * 3600);
    post_with(&app, "bot4@example.org", &[("form_token", &token)]).await;
    assert_eq!(app.message(MessageId(5)).await.status, Status::Spam);

    // A person who takes their time passes; so does the JSON API without a token.
    let token = form_token(&app).await;
    app.clock.advance(20);
    let res = post_with(&app, "slow@example.org", &[("form_token", &token), ("website", "")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.message(MessageId(6)).await.status, Status::Pending);
    app.submit_json("script@example.org").await;
    assert_eq!(app.message(MessageId(7)).await.status, Status::Pending);
    app.mail(3).await;
    assert_eq!(settled_mail_count(&app).await, 3, "no bot got a mail");

    // "Not spam": back to pending, and its verification mail goes out.
    let core = moderator(&app).await;
    core.actions.not_spam(MessageId(2), "moderator:ann").await.unwrap();
    assert_eq!(app.message(MessageId(2)).await.status, Status::Pending);
    let mail = app.mail(4).await;
    assert_eq!(mail.header("To").as_deref(), Some("bot1@example.org"));
    assert!(core.actions.not_spam(MessageId(6), "moderator:ann").await.is_err(), "only spam");
    app.stop().await;
}

on_every_backend!(
    bots_are_stored_as_spam_unmailed_and_told_nothing_and_not_spam_mails_them,
    fifty_posts_naming_one_address_send_exactly_one_mail,
    the_hourly_cap_holds_mail_for_every_address,
    i_didnt_send_this_suppresses_the_address_until_a_moderator_lifts_it,
);
