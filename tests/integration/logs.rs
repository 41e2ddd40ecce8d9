//! `log_format = "json"`: a whole flow — post, verification mail, link opened, confirmed by link
//! and by code, released by a moderator's verb, a staff mail the SMTP server refuses — run by the
//! real binary at `debug`, and every line it wrote is a JSON object that carries no token, code,
//! signing key, password or visitor text, while the request's id links its lines together.

use std::time::Duration;

use crate::support::app::{Backend, code, on_every_backend, receipt_from_redirect, verify_path};
use crate::support::serve::{Serve, formgate};
use crate::support::smtp::{Behaviour, TestSmtp};

const KEY: &str = "log-test-signing-key-0123456789abcdefghijklmnop";
const PASSWORD: &str = "Db-pass-never-logged-8e1f";
const VISITOR_TEXT: &str = "Private words the visitor wrote, zq7x";

/// `url` with a password the server is never asked for (the test server trusts local users).
fn with_password(url: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    if u.username().is_empty() {
        u.set_username("root").unwrap();
    }
    u.set_password(Some(PASSWORD)).unwrap();
    u.to_string()
}

/// Where `secret` occurs in `line` as a whole word (not inside a longer run of digits, letters or
/// dots: a six-digit code may well occur inside a timestamp's microseconds).
fn occurs_alone(line: &str, secret: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '.';
    line.match_indices(secret).any(|(at, _)| {
        let before = line[..at].chars().next_back().is_none_or(|c| !word(c));
        let after = line[at + secret.len()..].chars().next().is_none_or(|c| !word(c));
        before && after
    })
}

async fn json_logs_keep_every_secret_out(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some((url, _db)) = backend.fresh_database(dir.path()).await else {
        return;
    };
    let url = match backend {
        Backend::Sqlite => url,
        Backend::Postgres => with_password(&url),
    };
    let smtp = TestSmtp::start().await;
    let env = vec![
        ("FORMGATE_LISTEN", "127.0.0.1:0".to_string()),
        ("FORMGATE_DATABASE_URL", url.clone()),
        ("FORMGATE_SECRET_KEYS", KEY.to_string()),
        ("FORMGATE_SMTP_URL", smtp.url()),
        ("FORMGATE_STAFF_INBOX", "staff@example.org".to_string()),
        ("FORMGATE_LOG_FORMAT", "json".to_string()),
        ("FORMGATE_LOG", "debug".to_string()),
    ];
    let serve = Serve::start(dir.path(), &env);
    let base = serve.base.clone();
    let client = crate::support::app::client();
    let post = |email: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            client
                .post(format!("{base}/contact"))
                .form(&[("name", "Ada Lovelace"), ("email", email), ("message", VISITOR_TEXT)])
                .send()
                .await
                .unwrap()
        }
    };

    let first_post = post("ada@example.org").await;
    assert_eq!(first_post.status(), 303);
    let request_id = first_post.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(request_id.len(), 16, "{request_id}");
    let second_post = post("bea@example.org").await;
    let receipt = receipt_from_redirect(&second_post);
    let mails = smtp.wait_for(2, Duration::from_secs(20)).await;
    let by_link = mails
        .iter()
        .find(|m| m.rcpt_to.iter().any(|r| r.contains("ada")))
        .unwrap();
    let by_code = mails
        .iter()
        .find(|m| m.rcpt_to.iter().any(|r| r.contains("bea")))
        .unwrap();
    let link = verify_path(by_link);
    let token = link.trim_start_matches("/verify/").to_string();
    let typed = code(by_code);
    assert_eq!(client.get(format!("{base}{link}")).send().await.unwrap().status(), 200);
    let confirmed = client.post(format!("{base}{link}")).send().await.unwrap();
    assert!(confirmed.status().is_success() || confirmed.status().is_redirection());
    let confirmed = client
        .post(format!("{base}/contact/code"))
        .form(&[("receipt", receipt.as_str()), ("code", typed.as_str())])
        .send()
        .await
        .unwrap();
    assert!(confirmed.status().is_success() || confirmed.status().is_redirection());

    // The staff mail meets a refusing server: its failure is logged, its text is not.
    smtp.set_behaviour(Behaviour::RejectData(451, "try again later".into()));
    let release = formgate(dir.path(), &env)
        .args(["release", "1", "--as", "alice"])
        .output()
        .unwrap();
    assert!(release.status.success(), "{release:?}");
    for _ in 0..200 {
        if !smtp.rejected().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(smtp.rejected().len(), 1, "the staff mail was tried and refused");
    tokio::time::sleep(Duration::from_millis(300)).await; // its outcome is logged and recorded
    let banner = serve.banner.join("\n");
    let (status, logs) = serve.stop();
    assert!(status.success());
    let logs = logs + &String::from_utf8(release.stderr).unwrap();

    let mut lines_of_first_post = 0;
    let mut deferred = false;
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        for field in ["timestamp", "level", "target"] {
            assert!(v.get(field).is_some_and(|f| f.is_string()), "no {field}: {line}");
        }
        if v["spans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["request_id"] == request_id.as_str()))
        {
            lines_of_first_post += 1;
        }
        deferred |= v["message"] == "delivery deferred";
        for (what, secret) in [
            ("the link's token", token.as_str()),
            ("the code", typed.as_str()),
            ("the signing key", KEY),
            ("the database password", PASSWORD),
            ("the visitor's text", VISITOR_TEXT),
        ] {
            assert!(!occurs_alone(line, secret), "{what} in a log line: {line}");
        }
    }
    assert!(
        lines_of_first_post >= 2,
        "the post's lines carry its request id:\n{logs}"
    );
    assert!(deferred, "the refused staff mail is logged:\n{logs}");
    assert!(!banner.contains(PASSWORD), "{banner}");
}

on_every_backend!(json_logs_keep_every_secret_out);
