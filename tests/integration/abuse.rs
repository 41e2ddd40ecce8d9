//! Abuse: the verification mail as a weapon (per-address and hourly caps, "I didn't send this"),
//! bot filters (honeypot, signed time trap) and hostile header input. Over real HTTP against the
//! real app, with a real SMTP listener.

use std::sync::Arc;
use std::time::Duration;

use formgate::app::Services;
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
    let receipt = location
        .strip_prefix("/contact/sent?r=")
        .expect("redirect to the sent page");
    let page = app.get(&location).await.text().await.unwrap();
    (status, page.replace(receipt, "RECEIPT"))
}

async fn moderator(app: &TestApp) -> Services {
    Services::open(&app.config, Arc::new(app.clock.clone()), "http://127.0.0.1:8080")
        .await
        .expect("moderator services")
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
        let email = if i % 2 == 0 {
            "victim@example.org"
        } else {
            "Victim@Example.ORG"
        };
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
    let services = moderator(&app).await;
    let resent = services.actions.resend(MessageId(2), "moderator:ann").await.unwrap();
    assert!(resent.queued(), "{resent:?}");
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
    assert!(
        trail[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("hourly mail limit (3)"),
        "{trail:?}"
    );
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
    assert!(
        page.contains("Never email me again") && page.contains(&format!("action=\"{link}\"")),
        "{page}"
    );
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
    let services = moderator(&app).await;
    let resent = services.actions.resend(MessageId(2), "moderator:ann").await.unwrap();
    assert_eq!(
        resent.why_no_mail().as_deref(),
        Some("the address is suppressed"),
        "the moderator learns no mail went out"
    );
    assert_eq!(
        settled_mail_count(&app).await,
        1,
        "not even a moderator's resend goes out"
    );
    let trail = app.store.audit_trail(MessageId(2)).await.unwrap();
    assert!(
        trail
            .iter()
            .all(|a| a.detail.as_deref().unwrap_or("").contains("suppressed")),
        "{trail:?}"
    );

    // The moderator lifts it: mail flows again.
    assert!(
        services
            .actions
            .unsuppress("STRANGER@example.org", "moderator:ann")
            .await
            .unwrap()
    );
    assert!(
        !services
            .actions
            .unsuppress("stranger@example.org", "moderator:ann")
            .await
            .unwrap()
    );
    app.submit("stranger@example.org").await;
    app.mail(2).await;
    app.stop().await;
}

/// RFC 8058: behind https, every verification mail carries a one-click unsubscribe; the mail
/// provider's POST of `List-Unsubscribe=One-Click` suppresses the address at once, answered `200`
/// with no redirect and no cookie. Over plain http there is none (RFC 8058 requires https).
async fn the_mail_providers_one_click_unsubscribe_suppresses_at_once(backend: Backend) {
    let Some(plain) = spawn_with_caps(backend, None, None).await else {
        return;
    };
    plain.submit("first@example.org").await;
    assert_eq!(
        plain.mail(1).await.header("List-Unsubscribe"),
        None,
        "no one-click over http"
    );
    plain.stop().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let Some((db, database)) = backend.fresh_database(dir.path()).await else {
        return;
    };
    let smtp = TestSmtp::start().await;
    let mut config = formgate::config::Config::for_tests(db, MailTarget::Smtp(SmtpUrl::parse(&smtp.url()).unwrap()));
    config.public_url = Some("https://forms.example.org".into());
    let mut app = TestApp::spawn_config(config, dir, Some(smtp), &Options::default()).await;
    app.database = database;

    app.submit("stranger@example.org").await;
    let mail = app.mail(1).await;
    let header = mail.header("List-Unsubscribe").expect("a List-Unsubscribe header");
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let url = header
        .strip_prefix("<https://forms.example.org")
        .and_then(|u| u.strip_suffix('>'))
        .unwrap_or_else(|| panic!("{header}"));
    assert_eq!(url, suppress_path(&mail), "the mail's own \"never email me\" link");

    // A GET (a scanner, a preview) still changes nothing.
    assert_eq!(app.get(url).await.status(), 200);
    assert!(app.store.suppressed().await.unwrap().is_empty());

    // The provider's POST, as RFC 8058 words it: no Origin, no cookie, one form field.
    let res = app
        .client
        .post(app.url(url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("location").is_none() && res.headers().get("set-cookie").is_none());
    let listed = app.store.suppressed().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].address, "stranger@example.org");
    app.stop().await;
}

/// The signed time field of the form page.
async fn form_token(app: &TestApp) -> String {
    let html = app.get("/").await.text().await.unwrap();
    let at = html
        .find("name=\"form_token\" value=\"")
        .expect("a form token on the form page");
    let rest = &html[at + "name=\"form_token\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn post_with(app: &TestApp, email: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut fields = vec![
        ("name", "Ada Lovelace"),
        ("email", email),
        ("message", "Hello, a quote please."),
    ];
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
    let services = moderator(&app).await;
    services.actions.not_spam(MessageId(2), "moderator:ann").await.unwrap();
    assert_eq!(app.message(MessageId(2)).await.status, Status::Pending);
    let mail = app.mail(4).await;
    assert_eq!(mail.header("To").as_deref(), Some("bot1@example.org"));
    assert!(
        services.actions.not_spam(MessageId(6), "moderator:ann").await.is_err(),
        "only spam"
    );
    app.stop().await;
}

/// Hostile header material: CR/LF/NUL in every spelling, encoded words that decode to a line
/// break, long lines and Unicode line separators. `{i}` makes each one distinct.
const PAYLOADS: &[&str] = &[
    "x{i}\r\nBcc: victim{i}@evil.example",
    "x{i}\nBcc: victim{i}@evil.example",
    "x{i}\rBcc: victim{i}@evil.example",
    "x{i}\0Bcc: victim{i}@evil.example",
    "x{i}\r\n\r\nInjected body {i}",
    "x{i}\r\n X-Injected: folded",
    "x{i}\n\tX-Injected: tab-folded",
    "=?utf-8?q?x{i}=0D=0ABcc:_victim@evil.example?=",
    "=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXZpbC5leGFtcGxl?= {i}",
    "=?iso-8859-1?q?x{i}=0AX-Injected:_1?=",
    "x{i}\u{2028}Bcc: victim@evil.example",
    "x{i}\u{2029}X-Injected: yes",
    "x{i}\u{85}X-Injected: nel",
    "x{i}\u{b}X-Injected: vt",
    "x{i}\u{c}X-Injected: ff",
    "%0d%0aBcc: victim{i}@evil.example",
    "\\r\\nX-Injected: {i}",
    "x{i} Bcc: victim@evil.example",
    "X-Injected: {i}",
    "{long}{i}",
];

fn payload(i: usize) -> String {
    PAYLOADS[i % PAYLOADS.len()]
        .replace("{i}", &i.to_string())
        .replace("{long}", &"A".repeat(180))
}

/// The one header set a verification mail has, whatever the visitor typed.
const EXPECTED_HEADERS: [&str; 8] = [
    "auto-submitted",
    "content-type",
    "date",
    "from",
    "message-id",
    "mime-version",
    "subject",
    "to",
];

async fn a_thousand_header_injection_payloads_never_add_a_header(backend: Backend) {
    let Some(app) = spawn_with_caps(backend, None, None).await else {
        return;
    };
    let mut accepted = Vec::new();
    for i in 0..1000 {
        let hostile = payload(i);
        let email = format!("v{i}@example.org");
        let (name, subject, email) = match i % 3 {
            0 => (hostile.as_str(), "Hello", email.clone()),
            1 => ("Ada", hostile.as_str(), email.clone()),
            // In the address itself: either rejected, or a syntactically valid address.
            _ => ("Ada", "Hello", format!("{hostile}@example.org")),
        };
        let res = app
            .post_form(
                "/contact",
                &[
                    ("name", name),
                    ("email", &email),
                    ("subject", subject),
                    ("message", "hi"),
                ],
            )
            .await;
        match res.status().as_u16() {
            303 => accepted.push(email),
            422 => {}
            other => panic!("payload {i} {hostile:?}: unexpected status {other}"),
        }
    }
    assert!(
        accepted.len() > 300,
        "most payloads in name/subject are accepted: {}",
        accepted.len()
    );
    let mails = app.smtp().wait_for(accepted.len(), Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.smtp().count(),
        accepted.len(),
        "one mail per accepted post, no more"
    );
    for mail in &mails {
        let mut names: Vec<String> = mail
            .headers_all()
            .into_iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        names.sort();
        assert_eq!(names, EXPECTED_HEADERS, "{}", String::from_utf8_lossy(&mail.data));
        assert_eq!(mail.rcpt_to.len(), 1, "one envelope recipient");
        for (k, v) in mail.headers_all() {
            assert!(!v.contains(['\r', '\n', '\0']), "{k}: {v:?}");
        }
        let to = mail.header("To").unwrap();
        assert!(accepted.contains(&to), "To is an address that was posted: {to:?}");
    }
    app.stop().await;
}

/// The corpus test is slow-ish (1 000 posts, hundreds of mails): SQLite only.
#[tokio::test]
async fn header_injection_corpus_on_sqlite() {
    a_thousand_header_injection_payloads_never_add_a_header(Backend::Sqlite).await;
}

on_every_backend!(
    bots_are_stored_as_spam_unmailed_and_told_nothing_and_not_spam_mails_them,
    fifty_posts_naming_one_address_send_exactly_one_mail,
    the_hourly_cap_holds_mail_for_every_address,
    i_didnt_send_this_suppresses_the_address_until_a_moderator_lifts_it,
    the_mail_providers_one_click_unsubscribe_suppresses_at_once,
);
