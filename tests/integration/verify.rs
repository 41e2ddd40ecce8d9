//! The verification link and code: scanner-safe GET, confirming POST, idempotence, tampering,
//! expiry, resend, and the code typed on another device.

use formgate::domain::{MessageId, Status};

use crate::support::app::{Backend, TestApp, code, on_every_backend, receipt_from_redirect, verify_path};

async fn get_shows_a_button_and_changes_nothing_post_confirms_and_again_is_the_same_success(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    app.submit("ada@example.org").await;
    let link = verify_path(&app.mail(1).await);

    // Mail scanners fetch links: GET and HEAD must not confirm.
    let res = app.get(&link).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["referrer-policy"], "same-origin");
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Confirm my message") && html.contains(&format!("action=\"{link}\"")),
        "{html}"
    );
    assert_eq!(app.head(&link).await.status(), 200);
    let m = app.message(MessageId(1)).await;
    assert_eq!(m.status, Status::Pending, "GET/HEAD never change state");
    assert!(m.link_opened_at.is_some(), "but the opening is recorded");

    let res = app.client.post(app.url(&link)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let first = res.text().await.unwrap();
    assert!(first.contains("on its way to the team"), "{first}");
    let m = app.message(MessageId(1)).await;
    assert_eq!(m.status, Status::Verified);
    assert!(m.verified_at.is_some());

    let res = app.client.post(app.url(&link)).send().await.unwrap();
    assert_eq!(res.status(), 200, "confirming twice is not an error");
    assert_eq!(res.text().await.unwrap(), first);
    assert_eq!(
        app.get(&link).await.status(),
        200,
        "and the link still shows the thank-you page"
    );

    let trail = app.store.audit_trail(MessageId(1)).await.unwrap();
    let actions: Vec<_> = trail.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["submit", "verify"], "one verification recorded, not two");
}

async fn a_tampered_or_unknown_link_is_a_400_page(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    app.submit("ada@example.org").await;
    let link = verify_path(&app.mail(1).await);
    let mut tampered = link.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [
        tampered.as_str(),
        "/verify/v1.99.1.AAAA",
        "/verify/nonsense",
        &link.replacen("/verify/v1.1.", "/verify/v1.2.", 1),
    ] {
        let res = app.client.post(app.url(bad)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        assert!(res.text().await.unwrap().contains("This link is not valid"));
        assert_eq!(app.get(bad).await.status(), 400);
    }
    assert_eq!(app.message(MessageId(1)).await.status, Status::Pending);
}

async fn an_expired_link_is_a_410_page_that_offers_a_resend_which_works(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    app.submit("ada@example.org").await;
    let link = verify_path(&app.mail(1).await);
    app.clock.advance(72 * 3600 + 1);

    let res = app.client.post(app.url(&link)).send().await.unwrap();
    assert_eq!(res.status(), 410);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("expired") && html.contains("action=\"/contact/resend\""),
        "{html}"
    );
    assert_eq!(app.message(MessageId(1)).await.status, Status::Pending);

    // The page's resend form carries a fresh receipt.
    let receipt = html
        .split("name=\"receipt\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let res = app.post_form("/contact/resend", &[("receipt", &receipt)]).await;
    assert_eq!(res.status(), 303);
    let new_link = verify_path(&app.mail(2).await);
    assert_ne!(new_link, link);
    assert_eq!(app.client.post(app.url(&new_link)).send().await.unwrap().status(), 200);
    assert_eq!(app.message(MessageId(1)).await.status, Status::Verified);
}

async fn a_resend_revokes_older_links(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let receipt = receipt_from_redirect(&app.submit("ada@example.org").await);
    let old = verify_path(&app.mail(1).await);
    let res = app.post_form("/contact/resend", &[("receipt", &receipt)]).await;
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().contains("resent=1"));
    let new = verify_path(&app.mail(2).await);
    assert_eq!(
        app.client.post(app.url(&old)).send().await.unwrap().status(),
        400,
        "the old link stopped working"
    );
    assert_eq!(app.client.post(app.url(&new)).send().await.unwrap().status(), 200);
    let m = app.message(MessageId(1)).await;
    assert_eq!((m.status, m.verify_mails), (Status::Verified, 2));
}

async fn the_code_from_the_mail_confirms_on_another_device(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let receipt = receipt_from_redirect(&app.submit("ada@example.org").await);
    let code = code(&app.mail(1).await);
    let res = app
        .post_form("/contact/code", &[("receipt", &receipt), ("code", &code)])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/contact/confirmed");
    assert_eq!(app.message(MessageId(1)).await.status, Status::Verified);
    assert!(
        app.get("/contact/confirmed")
            .await
            .text()
            .await
            .unwrap()
            .contains("on its way")
    );
    // Typing it again is still a success, not an error.
    assert_eq!(
        app.post_form("/contact/code", &[("receipt", &receipt), ("code", &code)])
            .await
            .status(),
        303
    );
}

async fn five_wrong_codes_lock_the_message_until_a_resend(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let receipt = receipt_from_redirect(&app.submit("ada@example.org").await);
    let right = code(&app.mail(1).await);
    let wrong = if right == "000000" { "111111" } else { "000000" };
    for remaining in (1..=4).rev() {
        let res = app
            .post_form("/contact/code", &[("receipt", &receipt), ("code", wrong)])
            .await;
        assert_eq!(res.status(), 422);
        let html = res.text().await.unwrap();
        assert!(html.contains(&format!("{remaining} tries left")), "{html}");
        assert!(html.contains("aria-invalid=\"true\""));
    }
    let res = app
        .post_form("/contact/code", &[("receipt", &receipt), ("code", wrong)])
        .await;
    assert!(res.text().await.unwrap().contains("too many wrong codes"));
    // Even the right code is refused now.
    let res = app
        .post_form("/contact/code", &[("receipt", &receipt), ("code", &right)])
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(app.message(MessageId(1)).await.status, Status::Pending);

    // A resend issues a new code and resets the count.
    let res = app.post_form("/contact/resend", &[("receipt", &receipt)]).await;
    let receipt = receipt_from_redirect(&res);
    let new_code = code(&app.mail(2).await);
    let res = app
        .post_form("/contact/code", &[("receipt", &receipt), ("code", &new_code)])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.message(MessageId(1)).await.status, Status::Verified);
}

async fn codes_expire_with_the_link(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let (_, receipt) = app.submit_json("ada@example.org").await;
    let code = code(&app.mail(1).await);
    app.clock.advance(72 * 3600 + 1);
    let res = app
        .post_form("/contact/code", &[("receipt", &receipt), ("code", &code)])
        .await;
    assert_eq!(res.status(), 410);
    assert_eq!(app.message(MessageId(1)).await.status, Status::Pending);
}

async fn a_visitor_cannot_make_formgate_send_endless_mails(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    let (_, mut receipt) = app.submit_json("ada@example.org").await;
    for _ in 0..4 {
        let res = app
            .post_json("/contact/resend", serde_json::json!({ "receipt": receipt }))
            .await;
        assert_eq!(res.status(), 202);
        receipt = res.json::<serde_json::Value>().await.unwrap()["receipt"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let res = app
        .post_json("/contact/resend", serde_json::json!({ "receipt": receipt }))
        .await;
    assert_eq!(res.status(), 429);
    assert_eq!(
        app.smtp().wait_for(5, std::time::Duration::from_secs(10)).await.len(),
        5
    );
}

on_every_backend!(
    get_shows_a_button_and_changes_nothing_post_confirms_and_again_is_the_same_success,
    a_tampered_or_unknown_link_is_a_400_page,
    an_expired_link_is_a_410_page_that_offers_a_resend_which_works,
    a_resend_revokes_older_links,
    the_code_from_the_mail_confirms_on_another_device,
    five_wrong_codes_lock_the_message_until_a_resend,
    codes_expire_with_the_link,
    a_visitor_cannot_make_formgate_send_endless_mails,
);
