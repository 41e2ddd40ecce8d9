//! Several forms over real HTTP and SMTP: open forms keep every field, declared forms check each
//! one, per-form inboxes, origins and thank-you pages, Formspree's names, and a database from
//! before forms migrates.

use std::time::Duration;

use formgate::domain::{Field, FieldValue, MessageId, Status};
use serde_json::json;

use crate::support::app::{Backend, TestApp, on_every_backend, verify_path};

const QUOTE: &str = r#"
staff_inbox = "Team <team@example.org>"

[forms.contact]
auto_release = true

[forms.quote]
title = "Request a quote"
staff_inbox = ["sales@example.org", "Boss <boss@example.org>"]
allowed_origins = ["https://www.example.org"]
thank_you_url = "https://www.example.org/thanks"
auto_release = true
fields = [
  { name = "name",    type = "text",     label = "Your name", required = true },
  { name = "email",   type = "email",    label = "Email",     required = true },
  { name = "company", type = "text",     label = "Company",   max_length = 20 },
  { name = "phone",   type = "tel",      label = "Phone" },
  { name = "site",    type = "url",      label = "Web site" },
  { name = "seats",   type = "number",   label = "Seats", min = 1, max = 500 },
  { name = "start",   type = "date",     label = "Start" },
  { name = "budget",  type = "select",   label = "Budget", options = ["< 5k", "5–20k", "> 20k"], required = true },
  { name = "topics",  type = "checkboxes", label = "Interested in", options = ["Web", "App", "Hosting"] },
  { name = "message", type = "textarea", label = "Tell us more", required = true, max_length = 10000 },
  { name = "consent", type = "checkbox", label = "You may contact me", required = true },
]
"#;

/// A server on `backend` whose forms are those of `toml` (its other keys as the tests' defaults).
async fn spawn_forms(backend: Backend, toml: &str) -> Option<TestApp> {
    TestApp::spawn_from_toml(backend, toml, |config, parsed| {
        config.staff_inbox = parsed.staff_inbox;
        config.forms = parsed.forms;
        config.default_form = parsed.default_form;
    })
    .await
}

fn good_quote() -> serde_json::Value {
    json!({
        "name": "Ada", "email": "ada@example.org", "company": "Analytical Engines",
        "phone": "+44 20 7946 0000", "site": "https://ada.example", "seats": 12, "start": "2027-03-01",
        "budget": "5–20k", "topics": ["Web", "Hosting"], "message": "Hello", "consent": true,
    })
}

/// Confirms message `n` (the n-th mail) through its link, as the visitor's browser would.
async fn confirm_nth_mail(app: &TestApp, n: usize) -> reqwest::Response {
    let link = verify_path(&app.mail(n).await);
    app.client.post(app.url(&link)).send().await.unwrap()
}

async fn an_open_form_keeps_every_extra_field_and_the_staff_mail_lists_them(backend: Backend) {
    let Some(app) = spawn_forms(backend, QUOTE).await else {
        return;
    };
    let res = app
        .post_form(
            "/contact",
            &[
                ("name", "Ada"),
                ("email", "ada@example.org"),
                ("message", "Hi"),
                ("phone", "123 456"),
                ("topics", "Web"),
                ("topics", "App"),
                ("company", "<b>Acme</b> & Co"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let m = app.message(MessageId(1)).await;
    assert_eq!(m.form, "contact");
    assert_eq!(
        m.fields,
        vec![
            Field::new("phone", FieldValue::Text("123 456".into())),
            Field::new("topics", FieldValue::List(vec!["Web".into(), "App".into()])),
            Field::new("company", FieldValue::Text("<b>Acme</b> & Co".into())),
        ]
    );
    // Confirming releases (the form's auto_release) and the team gets every field.
    assert_eq!(confirm_nth_mail(&app, 1).await.status(), 200);
    let staff = app.mail(2).await;
    assert_eq!(staff.rcpt_to, vec!["team@example.org".to_string()]);
    let text = staff.text_body();
    assert!(
        text.contains("topics: Web, App") && text.contains("company: <b>Acme</b> & Co"),
        "{text}"
    );
    let html = staff.html_body().unwrap();
    assert!(
        html.contains("&lt;b&gt;Acme&lt;&#x2f;b&gt; &amp; Co") && !html.contains("<b>Acme"),
        "{html}"
    );
    assert_eq!(app.message(MessageId(1)).await.status, Status::Released);
}

async fn an_open_form_refuses_what_it_cannot_keep_by_name(backend: Backend) {
    let Some(app) = spawn_forms(backend, QUOTE).await else {
        return;
    };
    let long = "x".repeat(2_001);
    let res = app
        .post_json(
            "/contact",
            json!({ "name": "A", "email": "a@example.org", "message": "m", "notes": long }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["errors"]["notes"].as_str().unwrap().contains("too long"), "{body}");
    let res = app
        .post_json(
            "/contact",
            json!({ "name": "A", "email": "a@example.org", "message": "m", "_cc": "x@y.z" }),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(
        app.store.message(MessageId(1)).await.unwrap().is_none(),
        "nothing stored"
    );
}

async fn formspree_names_work_and_next_never_redirects(backend: Backend) {
    let Some(app) = spawn_forms(backend, QUOTE).await else {
        return;
    };
    let res = app
        .post_form(
            "/contact",
            &[
                ("name", "Ada"),
                ("_replyto", "ada@example.org"),
                ("_subject", "From the old form"),
                ("message", "Hi"),
                ("_next", "https://evil.example/phish"),
                ("_gotcha", ""),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/contact/sent?r="), "{location}");
    let m = app.message(MessageId(1)).await;
    assert_eq!(
        (m.email.as_str(), m.subject.as_deref()),
        ("ada@example.org", Some("From the old form"))
    );
    assert_eq!(m.status, Status::Pending);
    // A filled `_gotcha` is the honeypot: stored as spam, answered the same.
    let res = app
        .post_form(
            "/contact",
            &[
                ("name", "Bot"),
                ("email", "bot@example.org"),
                ("message", "x"),
                ("_gotcha", "http://spam"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.message(MessageId(2)).await.status, Status::Spam);
}

async fn a_declared_form_checks_every_type_and_refuses_undeclared_fields(backend: Backend) {
    let Some(app) = spawn_forms(backend, QUOTE).await else {
        return;
    };
    for (field, bad) in [
        ("company", json!("a company name that is far too long")),
        ("phone", json!("call me maybe")),
        ("site", json!("javascript:alert(1)")),
        ("seats", json!(0)),
        ("start", json!("2027-02-30")),
        ("budget", json!("a million")),
        ("topics", json!(["Web", "Catering"])),
        ("email", json!("not an address")),
        ("consent", json!(false)),
        ("message", json!("  ")),
    ] {
        let mut post = good_quote();
        post[field] = bad;
        let res = app.post_json("/f/quote", post).await;
        assert_eq!(res.status(), 422, "{field}");
        let body: serde_json::Value = res.json().await.unwrap();
        let errors = body["errors"].as_object().unwrap();
        assert_eq!(errors.keys().collect::<Vec<_>>(), vec![field], "{body}");
    }
    let mut post = good_quote();
    post["referrer"] = json!("a friend");
    let res = app.post_json("/f/quote", post).await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["errors"]["referrer"], "This form has no field `referrer`.");
    assert!(
        app.store.message(MessageId(1)).await.unwrap().is_none(),
        "nothing stored"
    );

    let res = app.post_json("/f/quote", good_quote()).await;
    assert_eq!(res.status(), 202);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["form"], "quote");
    let m = app.message(MessageId(body["id"].as_i64().unwrap())).await;
    let names: Vec<&str> = m.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "company", "phone", "site", "seats", "start", "budget", "topics", "consent"
        ]
    );
    assert_eq!(m.body, "Hello");
    // An HTML post with a bad value gets the form again, the value kept, the error beside it.
    let res = app
        .post_form(
            "/f/quote",
            &[("name", "Ada <3"), ("email", "ada@example.org"), ("budget", "")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("value=\"Ada &lt;3\""), "input kept, escaped");
    assert!(html.contains("id=\"budget-error\"") && html.contains("aria-describedby=\"budget-error\""));
}

async fn a_declared_form_delivers_to_its_own_inboxes_and_thank_you_page(backend: Backend) {
    let Some(app) = spawn_forms(backend, QUOTE).await else {
        return;
    };
    // A post from the site's own page (another origin, allowed for this form only).
    let res = app
        .client
        .post(app.url("/f/quote"))
        .header("origin", "https://www.example.org")
        .json(&good_quote())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://www.example.org");
    let res = app
        .client
        .post(app.url("/contact"))
        .header("origin", "https://www.example.org")
        .json(&json!({ "name": "A", "email": "a@example.org", "message": "m" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "the contact form does not allow that origin");

    // The sent page links to the thank-you page; confirming redirects there.
    let res = app
        .post_form(
            "/f/quote",
            &[
                ("name", "Bea"),
                ("email", "bea@example.org"),
                ("budget", "> 20k"),
                ("message", "Hi"),
                ("consent", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let sent = res.headers()["location"].to_str().unwrap().to_string();
    assert!(sent.starts_with("/f/quote/sent?r="), "{sent}");
    let page = app.get(&sent).await.text().await.unwrap();
    assert!(
        page.contains(r#"href="https:&#x2f;&#x2f;www.example.org&#x2f;thanks""#) && page.contains("Request a quote"),
        "{page}"
    );

    let res = confirm_nth_mail(&app, 1).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "https://www.example.org/thanks");
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("form-action 'self' https://www.example.org;"), "{csp}");
    let mails = app.smtp().wait_for(3, Duration::from_secs(10)).await;
    let staff = mails
        .iter()
        .find(|m| m.rcpt_to.len() == 2)
        .expect("the staff mail, to both inboxes");
    assert_eq!(
        staff.rcpt_to,
        vec!["sales@example.org".to_string(), "boss@example.org".to_string()]
    );
    assert_eq!(staff.header("Subject").as_deref(), Some("[Request a quote] Hello"));
    let text = staff.text_body();
    assert!(
        text.contains("Budget: 5–20k") && text.contains("Interested in: Web, Hosting"),
        "{text}"
    );
    assert!(text.contains("You may contact me: yes"), "{text}");
}

async fn schemas_and_pages_exist_per_form_and_unknown_forms_are_404(backend: Backend) {
    let Some(app) = spawn_forms(backend, QUOTE).await else {
        return;
    };
    let schema: serde_json::Value = app.get("/f/quote/schema").await.json().await.unwrap();
    assert_eq!(schema["action"], "/f/quote");
    assert_eq!(schema["fields"][7]["name"], "budget");
    assert_eq!(schema["fields"][7]["options"][1], "5–20k");
    let page = app.get("/f/quote").await.text().await.unwrap();
    assert!(
        page.contains("<h1>Request a quote</h1>") && page.contains("<select id=\"budget\" name=\"budget\" required")
    );
    assert_eq!(
        app.get("/favicon.ico").await.status(),
        204,
        "no 404 in every page's console"
    );
    assert_eq!(app.get("/f/nope").await.status(), 404);
    assert_eq!(app.get("/f/nope/schema").await.status(), 404);
    let res = app.post_json("/f/nope", good_quote()).await;
    assert_eq!(res.status(), 404);
}

/// The migrations a database written by the previous version (no forms) has run.
async fn previous_version_migrator(engine: &str) -> (tempfile::TempDir, sqlx::migrate::Migrator) {
    let dir = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(engine);
    let mut names: Vec<_> = std::fs::read_dir(&source)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.as_str() < "0007")
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    for n in names {
        std::fs::copy(source.join(&n), dir.path().join(&n)).unwrap();
    }
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    (dir, migrator)
}

const OLD_ROW: &str = "INSERT INTO messages (status, name, email, subject, body, ip, user_agent, created_at, updated_at, nonce, verify_expires_at)
     VALUES ('verified', 'Old Visitor', 'old@example.org', 'Before forms', 'Kept as it was', NULL, NULL, 1700000000, 1700000000, 'n', 1800000000)";

/// A database from the version before forms: its messages become form `contact` with no fields.
async fn a_database_from_before_forms_migrates(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some((url, _db)) = backend.fresh_database(dir.path()).await else {
        return;
    };
    match backend {
        Backend::Sqlite => {
            let opts = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
                .unwrap()
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            let (_keep, migrator) = previous_version_migrator("sqlite").await;
            migrator.run(&pool).await.unwrap();
            sqlx::query(OLD_ROW).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let (_keep, migrator) = previous_version_migrator("postgres").await;
            migrator.run(&pool).await.unwrap();
            let row = OLD_ROW
                .replace("INSERT INTO messages (", "INSERT INTO messages (id, ")
                .replace("VALUES (", "VALUES (1, ");
            sqlx::query(&row).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
    let store = formgate::store::connect(&url)
        .await
        .expect("the new version opens and migrates it");
    let m = store
        .message(MessageId(1))
        .await
        .unwrap()
        .expect("the old message is still there");
    assert_eq!((m.form.as_str(), m.fields.len()), ("contact", 0));
    assert_eq!((m.name.as_str(), m.body.as_str()), ("Old Visitor", "Kept as it was"));
    assert_eq!(m.status, Status::Verified);
    let rows = store
        .list(&formgate::store::ListQuery {
            form: Some("contact".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

on_every_backend!(
    a_database_from_before_forms_migrates,
    an_open_form_keeps_every_extra_field_and_the_staff_mail_lists_them,
    an_open_form_refuses_what_it_cannot_keep_by_name,
    formspree_names_work_and_next_never_redirects,
    a_declared_form_checks_every_type_and_refuses_undeclared_fields,
    a_declared_form_delivers_to_its_own_inboxes_and_thank_you_page,
    schemas_and_pages_exist_per_form_and_unknown_forms_are_404,
);
