//! The visitor's copy (`confirmation_mail`): once the visitor confirms, one "we've received your
//! message" mail to them with what they sent; never before, never twice, never to a suppressed
//! address, and each form may turn it on or off.

use std::time::Duration;

use formgate::domain::{MessageId, Status};
use formgate::mail::queue::{MailKind, OutboxState};

use crate::support::app::{Backend, TestApp, code, on_every_backend, receipt_from_redirect, verify_path};
use crate::support::smtp::ReceivedMail;

/// Copies off at the top level; the quote form turns them on.
const QUOTE_COPIES: &str = r#"
[forms.contact]

[forms.quote]
title = "Request a quote"
confirmation_mail = true
fields = [
  { name = "name",    type = "text",     label = "Your name", required = true },
  { name = "email",   type = "email",    label = "Email",     required = true },
  { name = "company", type = "text",     label = "Company" },
  { name = "budget",  type = "select",   label = "Budget", options = ["< 5k", "> 20k"], required = true },
  { name = "message", type = "textarea", label = "Tell us more", required = true },
  { name = "consent", type = "checkbox", label = "You may contact me", required = true },
]
"#;

/// Copies on at the top level; the quiet form turns them off.
const COPIES_BUT_QUIET: &str = r#"
confirmation_mail = true

[forms.contact]

[forms.quiet]
confirmation_mail = false
"#;

/// A server on `backend` whose forms (and top-level `confirmation_mail`) are those of `toml`.
async fn spawn_forms(backend: Backend, toml: &str) -> Option<TestApp> {
    TestApp::spawn_from_toml(backend, toml, |config, parsed| {
        config.confirmation_mail = parsed.confirmation_mail;
        config.forms = parsed.forms;
        config.default_form = parsed.default_form;
    })
    .await
}

/// Posts a plain message to `path` from `email`, as a browser would; returns its receipt.
async fn post_message(app: &TestApp, path: &str, email: &str) -> String {
    let res = app
        .post_form(path, &[("name", "Ada"), ("email", email), ("message", "Hello there")])
        .await;
    assert_eq!(res.status(), 303);
    receipt_from_redirect(&res)
}

/// Confirms through the link in `mail`, as the visitor's browser would, and returns the page the
/// browser ends on.
async fn confirm(app: &TestApp, mail: &ReceivedMail) -> String {
    let link = verify_path(mail);
    let res = app.client.post(app.url(&link)).send().await.unwrap();
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    match res.headers().get("location").map(|l| l.to_str().unwrap().to_string()) {
        Some(location) => app.get(&location).await.text().await.unwrap(),
        None => res.text().await.unwrap(),
    }
}

/// The visitor's copies queued for message `id`.
async fn copies(app: &TestApp, id: MessageId) -> Vec<formgate::mail::queue::OutboxRecord> {
    let outbox = app.store.outbox_for_message(id).await.unwrap();
    outbox
        .into_iter()
        .filter(|r| r.kind == MailKind::Confirmation)
        .collect()
}

async fn confirming_mails_the_visitor_one_copy_with_every_field_they_sent(backend: Backend) {
    let Some(app) = spawn_forms(backend, QUOTE_COPIES).await else {
        return;
    };
    let res = app
        .post_form(
            "/f/quote",
            &[
                ("name", "Bea"),
                ("email", "bea@example.org"),
                ("company", "<b>Acme</b> & Co"),
                ("budget", "> 20k"),
                ("message", "Please call me.\nAfter five."),
                ("consent", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let receipt = receipt_from_redirect(&res);
    let verification = app.mail(1).await;
    assert!(
        copies(&app, MessageId(1)).await.is_empty(),
        "nothing before confirmation"
    );

    confirm(&app, &verification).await;
    assert_eq!(app.message(MessageId(1)).await.status, Status::Verified);
    let copy = app.mail(2).await;
    assert_eq!(copy.rcpt_to, vec!["bea@example.org".to_string()]);
    assert_eq!(copy.mail_from, "forms@example.org");
    assert_eq!(
        copy.header("Subject").as_deref(),
        Some("We've received your message (Request a quote)")
    );
    assert!(copy.header("To").unwrap().contains("bea@example.org"));
    assert!(copy.header("From").unwrap().contains("forms@example.org"));
    assert_eq!(copy.header("Reply-To"), None, "answers go to the site, nowhere else");
    assert_eq!(copy.header("Auto-Submitted").as_deref(), Some("auto-generated"));
    let text = copy.text_body();
    for line in [
        "Hello Bea",
        "Email:      bea@example.org",
        "Company: <b>Acme</b> & Co",
        "Budget: > 20k",
        "You may contact me: yes",
        "Please call me.",
        "After five.",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    let html = copy.html_body().unwrap();
    assert!(
        html.contains("&lt;b&gt;Acme&lt;&#x2f;b&gt; &amp; Co") && !html.contains("<b>Acme"),
        "{html}"
    );
    assert!(html.contains("Please call me."), "{html}");

    // Confirming again (link, then code) and asking for a new mail queue nothing more.
    confirm(&app, &verification).await;
    let res = app
        .post_form(
            "/contact/code",
            &[("receipt", &receipt), ("code", &code(&verification))],
        )
        .await;
    assert_eq!(res.status(), 303);
    let res = app
        .post_form("/contact/resend", &[("receipt", &receipt), ("form", "quote")])
        .await;
    assert_eq!(res.status(), 303);
    let queued = copies(&app, MessageId(1)).await;
    assert_eq!(queued.len(), 1, "one copy, however often it is confirmed");
    let outbox = app.store.outbox_for_message(MessageId(1)).await.unwrap();
    let kinds: Vec<_> = outbox.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [MailKind::Verify, MailKind::Confirmation], "no resend either");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.smtp().count(), 2);
}

async fn a_form_without_copies_mails_nothing_on_confirmation(backend: Backend) {
    let Some(app) = spawn_forms(backend, QUOTE_COPIES).await else {
        return;
    };
    post_message(&app, "/contact", "ada@example.org").await;
    confirm(&app, &app.mail(1).await).await;
    assert_eq!(app.message(MessageId(1)).await.status, Status::Verified);
    assert!(copies(&app, MessageId(1)).await.is_empty(), "copies are off by default");
}

async fn a_form_can_turn_off_the_copies_the_site_turns_on(backend: Backend) {
    let Some(app) = spawn_forms(backend, COPIES_BUT_QUIET).await else {
        return;
    };
    post_message(&app, "/f/quiet", "quiet@example.org").await;
    post_message(&app, "/contact", "ada@example.org").await;
    let mails = app.smtp().wait_for(2, Duration::from_secs(10)).await;
    let mut pages = Vec::new();
    for mail in &mails {
        pages.push(confirm(&app, mail).await);
    }
    // The confirmed page tells the visitor a copy is coming only where one is.
    let promised = |page: &String| page.contains("A copy of your message is on its way to you");
    let (quiet, contact) = if mails[0].rcpt_to[0].starts_with("quiet") {
        (0, 1)
    } else {
        (1, 0)
    };
    assert!(!promised(&pages[quiet]), "{}", pages[quiet]);
    assert!(promised(&pages[contact]), "{}", pages[contact]);
    assert!(copies(&app, MessageId(1)).await.is_empty(), "the quiet form sends none");
    assert_eq!(
        copies(&app, MessageId(2)).await.len(),
        1,
        "the contact form inherits it"
    );
    let copy = app.mail(3).await;
    assert_eq!(copy.rcpt_to, vec!["ada@example.org".to_string()]);
    assert!(copy.text_body().contains("Hello there"));
}

async fn a_suppressed_address_gets_no_copy(backend: Backend) {
    let Some(app) = spawn_forms(backend, COPIES_BUT_QUIET).await else {
        return;
    };
    post_message(&app, "/contact", "ada@example.org").await;
    let verification = app.mail(1).await;
    let text = verification.text_body();
    let start = text.find("/suppress/").expect("a suppress link in the mail");
    let suppress = text[start..].split_whitespace().next().unwrap().to_string();
    let res = app.client.post(app.url(&suppress)).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    confirm(&app, &verification).await;
    assert_eq!(app.message(MessageId(1)).await.status, Status::Verified);
    assert!(copies(&app, MessageId(1)).await.is_empty());
    let trail = app.store.audit_trail(MessageId(1)).await.unwrap();
    let verify = trail.iter().find(|a| a.action == "verify").unwrap();
    let detail = verify.detail.as_deref().unwrap_or("");
    assert!(
        detail.contains("no copy to the visitor") && detail.contains("suppressed"),
        "{detail}"
    );
    let outbox = app.store.outbox_for_message(MessageId(1)).await.unwrap();
    assert!(
        outbox
            .iter()
            .all(|r| r.kind == MailKind::Verify && r.state != OutboxState::Dead)
    );
}

on_every_backend!(
    confirming_mails_the_visitor_one_copy_with_every_field_they_sent,
    a_form_without_copies_mails_nothing_on_confirmation,
    a_form_can_turn_off_the_copies_the_site_turns_on,
    a_suppressed_address_gets_no_copy,
);
