//! `metrics_listen`: after a flow run by the real binary (posts accepted, caught, refused and
//! rate limited; a link opened; a confirmation; an auto-release whose staff mail the SMTP server
//! defers), a scrape of `/metrics` shows exactly those counts, and the gauges read from the
//! database show the outbox and the messages as they are. The public listener has no `/metrics`.

use std::time::{Duration, Instant};

use crate::support::app::{Backend, client, on_every_backend, verify_path};
use crate::support::serve::Serve;
use crate::support::smtp::{Behaviour, TestSmtp};

/// The value of the sample `series` (name and labels exactly as written) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(url: &str) -> (String, String) {
    let res = client().get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let kind = res.headers()["content-type"].to_str().unwrap().to_string();
    (kind, res.text().await.unwrap())
}

async fn a_scrape_after_a_flow_counts_it(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some((url, _db)) = backend.fresh_database(dir.path()).await else {
        return;
    };
    let smtp = TestSmtp::start().await;
    let env = vec![
        ("FORMGATE_LISTEN", "127.0.0.1:0".to_string()),
        ("FORMGATE_METRICS_LISTEN", "127.0.0.1:0".to_string()),
        ("FORMGATE_DATABASE_URL", url),
        (
            "FORMGATE_SECRET_KEYS",
            "metrics-test-signing-key-0123456789abcdefghij".to_string(),
        ),
        ("FORMGATE_SMTP_URL", smtp.url()),
        ("FORMGATE_STAFF_INBOX", "staff@example.org".to_string()),
        ("FORMGATE_AUTO_RELEASE", "true".to_string()),
        ("FORMGATE_RATE_LIMIT_CONTACT", "4/10m".to_string()),
    ];
    let serve = Serve::start(dir.path(), &env);
    let metrics = serve
        .banner_url("metrics")
        .expect("the banner names the metrics address");
    assert_ne!(metrics, format!("{}/metrics", serve.base));
    let (kind, before) = scrape(&metrics).await;
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    assert!(before.contains("formgate_build_info{version=\""), "{before}");
    assert!(before.ends_with("# EOF\n"));
    let public = client().get(format!("{}/metrics", serve.base)).send().await.unwrap();
    assert_eq!(public.status(), 404, "no metrics on the public listener");

    let post = |fields: Vec<(&'static str, &'static str)>| {
        let url = format!("{}/contact", serve.base);
        async move { client().post(url).form(&fields).send().await.unwrap().status() }
    };
    let valid = |email| vec![("name", "Ada"), ("email", email), ("message", "Hello there")];
    assert_eq!(post(valid("ada@example.org")).await, 303);
    assert_eq!(post(valid("bea@example.org")).await, 303);
    assert_eq!(post(vec![("name", "No address"), ("message", "Hi")]).await, 422);
    let mut bot = valid("bot@example.org");
    bot.push(("website", "http://spam.example"));
    assert_eq!(post(bot).await, 303, "a bot is answered like anyone");
    assert_eq!(post(valid("cy@example.org")).await, 429, "the fifth post in the window");

    let mails = smtp.wait_for(2, Duration::from_secs(20)).await;
    let ada = mails
        .iter()
        .find(|m| m.rcpt_to.iter().any(|r| r.contains("ada")))
        .unwrap();
    let link = format!("{}{}", serve.base, verify_path(ada));
    // The staff mail the auto-release queues is deferred.
    smtp.set_behaviour(Behaviour::RejectData(451, "try again later".into()));
    assert_eq!(client().get(&link).send().await.unwrap().status(), 200);
    let confirmed = client().post(&link).send().await.unwrap().status();
    assert!(confirmed.is_success() || confirmed.is_redirection(), "{confirmed}");

    // Counters move at once; the gauges from the database within their cache's age.
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (_, text) = scrape(&metrics).await;
        let settled = sample(&text, r#"formgate_sends_total{kind="release",outcome="4xx"}"#) == Some(1.0)
            && sample(&text, r#"formgate_outbox_rows{kind="release",state="retrying"}"#) == Some(1.0);
        if settled || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let expect = [
        (
            r#"formgate_submissions_total{form="contact",outcome="accepted",reason=""}"#,
            2.0,
        ),
        (
            r#"formgate_submissions_total{form="contact",outcome="spam",reason="honeypot field filled"}"#,
            1.0,
        ),
        (
            r#"formgate_submissions_total{form="contact",outcome="refused",reason="422"}"#,
            1.0,
        ),
        (
            r#"formgate_submissions_total{form="contact",outcome="refused",reason="429"}"#,
            1.0,
        ),
        (r#"formgate_funnel_total{form="contact",step="submitted"}"#, 2.0),
        (r#"formgate_funnel_total{form="contact",step="link_opened"}"#, 1.0),
        (r#"formgate_funnel_total{form="contact",step="verified"}"#, 1.0),
        (r#"formgate_funnel_total{form="contact",step="released"}"#, 1.0),
        (r#"formgate_sends_total{kind="verify",outcome="delivered"}"#, 2.0),
        (r#"formgate_sends_total{kind="release",outcome="4xx"}"#, 1.0),
        (r#"formgate_send_duration_seconds_count{kind="verify"}"#, 2.0),
        (
            r#"formgate_http_requests_total{route="/contact",method="POST",status="303"}"#,
            3.0,
        ),
        (
            r#"formgate_http_requests_total{route="/contact",method="POST",status="429"}"#,
            1.0,
        ),
        (
            r#"formgate_http_request_duration_seconds_count{route="/verify/{token}"}"#,
            2.0,
        ),
        (r#"formgate_rate_limited_total{bucket="contact"}"#, 1.0),
        // Every stored post went through one group commit or another.
        ("formgate_intake_batch_size_sum", 3.0),
        (r#"formgate_messages{status="pending"}"#, 1.0),
        (r#"formgate_messages{status="released"}"#, 1.0),
        (r#"formgate_messages{status="spam"}"#, 1.0),
        (r#"formgate_outbox_rows{kind="release",state="queued"}"#, 1.0),
        (r#"formgate_outbox_rows{kind="release",state="retrying"}"#, 1.0),
        (r#"formgate_outbox_rows{kind="verify",state="queued"}"#, 0.0),
        (r#"formgate_outbox_rows{kind="verify",state="dead"}"#, 0.0),
        (r#"formgate_outbox_oldest_due_age_seconds{kind="verify"}"#, 0.0),
    ];
    let wrong: Vec<String> = expect
        .iter()
        .filter(|(series, want)| sample(&text, series) != Some(*want))
        .map(|(series, want)| format!("{series}: want {want}, got {:?}", sample(&text, series)))
        .collect();
    assert!(wrong.is_empty(), "{}\n\n{text}", wrong.join("\n"));
    assert!(!text.contains("ada@example.org"), "no visitor data in a label");
    dashboard_asks_for_what_is_served(&text);

    let (status, _logs) = serve.stop();
    assert!(status.success());
}

on_every_backend!(a_scrape_after_a_flow_counts_it);

/// Every series `contrib/grafana-dashboard.json` queries is one formgate serves (a renamed metric
/// would leave its panel empty without a word), and the file is valid JSON with a panel list.
fn dashboard_asks_for_what_is_served(scraped: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut asked = 0;
    for expr in panels
        .iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
        .filter_map(|t| t["expr"].as_str())
    {
        for (at, _) in expr.match_indices("formgate_") {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let base = name.trim_end_matches("_total");
            assert!(
                scraped.contains(base),
                "the dashboard asks for {name}, which is not served"
            );
            asked += 1;
        }
    }
    assert!(asked >= 15, "{asked} series asked for");
}
