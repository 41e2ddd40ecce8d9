//! POST /contact: what a visitor (or a script) sends, and what comes back.

use formgate::domain::{MessageId, Status};
use formgate::mail::queue::MailKind;

use crate::support::app::{Backend, TestApp, on_every_backend, receipt_from_redirect};

async fn a_form_post_is_stored_pending_and_redirects_to_check_your_inbox(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let res = app.submit("ada@example.org").await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/contact/sent?r=v1."), "{location}");

    let m = app.message(MessageId(1)).await;
    assert_eq!(m.status, Status::Pending);
    assert_eq!((m.name.as_str(), m.email.as_str()), ("Ada Lovelace", "ada@example.org"));
    assert_eq!(
        m.ip.as_deref(),
        Some("127.0.0.1"),
        "consent record keeps the client address"
    );

    let page = app.get(&location).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("not delivered until you confirm"),
        "honest wording: {html}"
    );
    assert!(html.contains("action=\"/contact/code\"") && html.contains("action=\"/contact/resend\""));
}

async fn the_verification_mail_arrives_over_smtp_and_never_echoes_the_message(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let body = "BUY CHEAP WATCHES at spam.example";
    app.post_form(
        "/contact",
        &[
            ("name", "Spammer McSpam"),
            ("email", "victim@example.org"),
            ("message", body),
        ],
    )
    .await;
    let mail = app.mail(1).await;
    assert_eq!(mail.rcpt_to, vec!["victim@example.org".to_string()]);
    assert_eq!(mail.mail_from, "forms@example.org");
    let from = mail.header("From").unwrap();
    assert!(
        from.contains("Example Forms") && from.ends_with("<forms@example.org>"),
        "{from}"
    );
    assert_eq!(mail.header("To").unwrap(), "victim@example.org");
    assert_eq!(mail.header("Auto-Submitted").unwrap(), "auto-generated");
    let message_id = mail.header("Message-ID").unwrap();
    assert!(
        message_id.starts_with("<formgate.verify.1.") && message_id.ends_with("@example.org>"),
        "{message_id}"
    );
    let (text, html) = (mail.text_body(), mail.html_body().expect("an HTML alternative"));
    for part in [&text, &html] {
        assert!(
            part.contains("verify") && part.contains("v1.1."),
            "link in every part: {part}"
        );
        assert!(
            !part.contains("WATCHES") && !part.contains("Spammer"),
            "visitor text never relayed: {part}"
        );
    }
    // The outbox row records the delivery.
    let rows = app.store.outbox_for_message(MessageId(1)).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].kind, MailKind::Verify);
    assert_eq!(rows[0].message_id_header, message_id);
}

async fn a_json_post_gets_202_with_the_id(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let res = app
        .post_json(
            "/contact",
            serde_json::json!({"name": "Bo", "email": "bo@example.org", "message": "hi", "subject": "Quote"}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["status"], "pending");
    assert_eq!(v["id"], 1);
    assert_eq!(app.message(MessageId(1)).await.subject.as_deref(), Some("Quote"));
    // A form post that asks for JSON gets JSON too.
    let res = app
        .client
        .post(app.url("/contact"))
        .header("accept", "application/json")
        .form(&[("name", "Cy"), ("email", "cy@example.org"), ("message", "yo")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

async fn invalid_json_input_gets_422_with_a_message_per_field(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let res = app
        .post_json(
            "/contact",
            serde_json::json!({"name": "", "email": "not-an-address", "message": "x", "subject": "a\r\nBcc: x@y.org"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    let v: serde_json::Value = res.json().await.unwrap();
    let errors = v["errors"].as_object().unwrap();
    assert_eq!(errors.keys().cloned().collect::<Vec<_>>(), ["email", "name", "subject"]);
    assert!(errors["email"].as_str().unwrap().contains("email address"));
    assert!(
        app.store.message(MessageId(1)).await.unwrap().is_none(),
        "nothing stored"
    );
}

async fn invalid_form_input_rerenders_the_form_with_input_kept_and_escaped(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let res = app
        .post_form(
            "/contact",
            &[
                ("name", "<script>alert(1)</script>"),
                ("email", "nope"),
                ("message", "my \"long\" story"),
            ],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("value=\"&lt;script&gt;alert(1)&lt;"),
        "name kept, escaped: {html}"
    );
    assert!(!html.contains("<script>alert"), "never raw");
    assert!(
        html.contains("my &quot;long&quot; story") || html.contains("my &#34;long&#34; story"),
        "message kept"
    );
    assert!(
        html.contains("id=\"email-error\"") && html.contains("aria-invalid=\"true\""),
        "error beside the field"
    );
}

async fn limits_are_enforced_with_clear_statuses(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let long = "x".repeat(10_001);
    let res = app
        .post_json(
            "/contact",
            serde_json::json!({"name": "A", "email": "a@example.org", "message": long}),
        )
        .await;
    assert_eq!(res.status(), 422, "message over 10 000 characters");

    let huge = "x".repeat(40 * 1024);
    let res = app
        .post_form(
            "/contact",
            &[("name", "A"), ("email", "a@example.org"), ("message", &huge)],
        )
        .await;
    assert_eq!(res.status(), 413, "body over 32 KiB");

    let res = app
        .client
        .post(app.url("/contact"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    let res = app
        .client
        .post(app.url("/contact"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let v: serde_json::Value = res.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("JSON"));

    let res = app
        .client
        .post(app.url("/contact"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"name=A&email=a%40example.org&message=%FF%FE".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "invalid UTF-8");

    let res = app
        .client
        .post(app.url("/contact"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=A&email=a%40example.org&email=b%40example.org&message=hi")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        422,
        "a duplicated field is ambiguous, not silently first- or last-wins: refused, naming it"
    );
    assert!(app.store.message(MessageId(1)).await.unwrap().is_none());
}

async fn every_page_carries_the_security_headers(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    for path in ["/", "/contact/sent", "/verify/garbage", "/healthz"] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
    }
    let form = app.get("/").await.text().await.unwrap();
    assert!(form.contains("<label for=\"email\">") && form.contains("method=\"post\" action=\"/contact\""));
    assert_eq!(app.get("/assets/formgate.css").await.status(), 200);
}

async fn the_receipt_in_the_redirect_is_signed_and_opaque(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let res = app.submit("ada@example.org").await;
    let receipt = receipt_from_redirect(&res);
    assert!(receipt.starts_with("v1.1."));
    // Another message's id with this signature is refused.
    let forged = receipt.replacen("v1.1.", "v1.2.", 1);
    let res = app.post_form("/contact/resend", &[("receipt", &forged)]).await;
    assert_eq!(res.status(), 400);
}

on_every_backend!(
    a_form_post_is_stored_pending_and_redirects_to_check_your_inbox,
    the_verification_mail_arrives_over_smtp_and_never_echoes_the_message,
    a_json_post_gets_202_with_the_id,
    invalid_json_input_gets_422_with_a_message_per_field,
    invalid_form_input_rerenders_the_form_with_input_kept_and_escaped,
    limits_are_enforced_with_clear_statuses,
    every_page_carries_the_security_headers,
    the_receipt_in_the_redirect_is_signed_and_opaque,
);
