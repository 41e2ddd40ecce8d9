//! The web edge against the real app over real HTTP: rate limits counted in the database (and so
//! shared by instances), client addresses behind trusted proxies only, the Origin allowlist and
//! CORS, and clients that send too slowly or too much.

use std::time::{Duration, Instant};

use formgate::config::RateLimit;
use formgate::config::{Config, MailTarget};
use formgate::domain::MessageId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{Backend, Options, TestApp, on_every_backend};
use crate::support::pg::TestDatabase;

/// An app on `backend` with `configure` applied to its configuration (mail as .eml files).
async fn spawn(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, database) = backend.fresh_database(dir.path()).await?;
    let mut config = Config::for_tests(url, MailTarget::Dir(dir.path().join("mail-outbox")));
    configure(&mut config);
    let mut app = TestApp::spawn_config(config, dir, None, &Options::default()).await;
    app.database = database;
    Some(app)
}

fn limit(s: &str) -> Option<RateLimit> {
    RateLimit::parse(s).expect("a valid limit")
}

fn visitor(i: usize) -> serde_json::Value {
    serde_json::json!({ "name": "Ada", "email": format!("v{i}@example.org"), "message": "Hello" })
}

/// POST /contact as JSON with extra headers; returns the response.
async fn post_contact(app: &TestApp, i: usize, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.post(app.url("/contact")).json(&visitor(i));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("POST /contact")
}

fn retry_after(res: &reqwest::Response) -> i64 {
    res.headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

async fn the_contact_limit_accepts_exactly_its_count_per_window_then_answers_429(backend: Backend) {
    let Some(app) = spawn(backend, |c| c.rate_limit_contact = limit("5/10m")).await else {
        return;
    };
    for i in 0..5 {
        assert_eq!(
            post_contact(&app, i, &[]).await.status(),
            202,
            "post {i} is within the limit"
        );
    }
    let res = post_contact(&app, 5, &[]).await;
    assert_eq!(res.status(), 429, "the sixth post in the window");
    let wait = retry_after(&res);
    assert!((1..=600).contains(&wait), "Retry-After {wait}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("Too many requests"), "{body}");

    // A browser gets a page, with the same header and the usual security headers.
    let res = app.submit("ada@example.org").await;
    assert_eq!(res.status(), 429);
    assert_eq!(retry_after(&res), wait, "the clock has not moved");
    assert!(res.headers().contains_key("content-security-policy"));
    assert!(res.text().await.unwrap().contains("try again in"));
    // The refused posts stored nothing.
    assert!(app.store.message(MessageId(6)).await.unwrap().is_none());

    // Resends count against the same limit: they send mail too.
    let res = app
        .post_json("/contact/resend", serde_json::json!({ "receipt": "x" }))
        .await;
    assert_eq!(res.status(), 429);

    app.clock.advance(wait);
    assert_eq!(post_contact(&app, 7, &[]).await.status(), 202, "a new window");
}

async fn confirmations_have_their_own_limit(backend: Backend) {
    let Some(app) = spawn(backend, |c| c.rate_limit_verify = limit("2/1h")).await else {
        return;
    };
    let confirm = || async { app.client.post(app.url("/verify/v1.1.2.x")).send().await.unwrap() };
    assert_eq!(confirm().await.status(), 400);
    assert_eq!(confirm().await.status(), 400);
    let res = confirm().await;
    assert_eq!(res.status(), 429);
    assert!(retry_after(&res) <= 3600);
    let res = app
        .post_json("/contact/code", serde_json::json!({ "receipt": "x", "code": "123456" }))
        .await;
    assert_eq!(res.status(), 429, "codes share the confirmation limit");
    // Posting the form is another budget (off here).
    assert_eq!(post_contact(&app, 0, &[]).await.status(), 202);
}

async fn a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(backend: Backend) {
    let Some(app) = spawn(backend, |c| c.rate_limit_contact = limit("2/10m")).await else {
        return;
    };
    let (a, b) = (
        post_contact(&app, 0, &[("x-forwarded-for", "198.51.100.1")]).await,
        post_contact(&app, 1, &[("forwarded", "for=198.51.100.2")]).await,
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (202, 202));
    let res = post_contact(&app, 2, &[("x-forwarded-for", "198.51.100.3")]).await;
    assert_eq!(res.status(), 429, "a new header is not a new client");
    let m = app.message(MessageId(1)).await;
    assert_eq!(
        m.ip.as_deref(),
        Some("127.0.0.1"),
        "the consent record keeps the real peer"
    );
}

async fn behind_a_trusted_proxy_the_forwarded_address_is_the_client(backend: Backend) {
    let Some(app) = spawn(backend, |c| {
        c.rate_limit_contact = limit("1/10m");
        c.trusted_proxies = vec![formgate::config::IpNet::parse("127.0.0.1").unwrap()];
    })
    .await
    else {
        return;
    };
    // The client's own entry is left of what the proxy appended: only the rightmost counts.
    let res = post_contact(&app, 0, &[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]).await;
    assert_eq!(res.status(), 202);
    assert_eq!(app.message(MessageId(1)).await.ip.as_deref(), Some("198.51.100.7"));
    let res = post_contact(&app, 1, &[("x-forwarded-for", "7.7.7.7, 198.51.100.7")]).await;
    assert_eq!(res.status(), 429, "the same client, whatever it claims");
    let res = post_contact(&app, 2, &[("x-forwarded-for", "198.51.100.8")]).await;
    assert_eq!(res.status(), 202, "another client has its own budget");

    // IPv6 clients are counted per /64; the consent record keeps the full address.
    let res = post_contact(&app, 3, &[("forwarded", "for=\"[2001:db8:1:2::1]:4711\"")]).await;
    assert_eq!(res.status(), 202);
    let stored = app.message(MessageId(3)).await;
    assert_eq!(stored.ip.as_deref(), Some("2001:db8:1:2::1"));
    let res = post_contact(&app, 4, &[("x-forwarded-for", "2001:db8:1:2:ffff::9")]).await;
    assert_eq!(res.status(), 429, "same /64");
    let res = post_contact(&app, 5, &[("x-forwarded-for", "2001:db8:1:3::1")]).await;
    assert_eq!(res.status(), 202, "another /64");
}

on_every_backend!(
    the_contact_limit_accepts_exactly_its_count_per_window_then_answers_429,
    confirmations_have_their_own_limit,
    a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing,
    behind_a_trusted_proxy_the_forwarded_address_is_the_client,
);

#[tokio::test]
async fn two_instances_on_one_postgres_database_share_the_limit() {
    let Some(db) = TestDatabase::fresh().await else {
        return;
    };
    let instance = || async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mail = MailTarget::Dir(dir.path().join("mail-outbox"));
        let mut config = Config::for_tests(db.url().to_string(), mail);
        config.rate_limit_contact = limit("3/1h");
        TestApp::spawn_config(config, dir, None, &Options::default()).await
    };
    let a = instance().await;
    let b = instance().await;
    // One clock for both, so both count in the same window.
    b.clock.advance(a.clock_now() - b.clock_now());
    let mut statuses = Vec::new();
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        statuses.push(post_contact(app, i, &[]).await.status().as_u16());
    }
    assert_eq!(
        statuses,
        vec![202, 202, 202, 429, 429],
        "3 per hour across both instances"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn cors_preflight_answers_allowed_origins_and_refuses_others() {
    let app = spawn(Backend::Sqlite, |c| {
        c.allowed_origins = vec!["https://www.example.org".into()];
    })
    .await
    .unwrap();
    let preflight = |origin: &'static str, path: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    for path in ["/contact", "/contact/code", "/contact/resend"] {
        let res = preflight("https://www.example.org", path).await.unwrap();
        assert_eq!(res.status(), 204, "{path}");
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], "https://www.example.org");
        assert_eq!(h["access-control-allow-methods"], "POST");
        assert_eq!(h["access-control-allow-headers"], "content-type");
        assert_eq!(h["vary"], "Origin");
        assert!(h.contains_key("access-control-max-age"));
    }
    let res = preflight("https://evil.example", "/contact").await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(!res.headers().contains_key("access-control-allow-origin"));

    // The actual post from the allowed site carries the CORS answer.
    let res = post_contact(&app, 0, &[("origin", "https://www.example.org")]).await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["access-control-allow-origin"], "https://www.example.org");
    assert_eq!(res.headers()["vary"], "Origin");

    // A browser post from anywhere else is refused, with a reason, and stores nothing.
    let res = app
        .client
        .post(app.url("/contact"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=A&email=a%40example.org&message=hi")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("does not accept posts from") && html.contains("evil.example"),
        "{html}"
    );
    let res = post_contact(&app, 1, &[("origin", "null")]).await;
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("allowed_origins"), "{body}");
    assert!(app.store.message(MessageId(2)).await.unwrap().is_none());

    // formgate's own pages (same origin as the Host they were served from) need no listing.
    let own = app.base.clone();
    let res = app
        .client
        .post(app.url("/contact"))
        .header("origin", own)
        .form(&[("name", "Ada"), ("email", "ada@example.org"), ("message", "Hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn the_guard_covers_the_posts_it_protects_and_nothing_else() {
    let app = spawn(Backend::Sqlite, |c| {
        c.allowed_origins = vec!["https://www.example.org".into()];
        c.rate_limit_verify = limit("1/1h");
    })
    .await
    .unwrap();
    let link = "/verify/v1.1.2.x";
    // Only formgate's own page posts the confirm button: no site is answered a preflight, but
    // the Origin is still checked.
    let options = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url(link))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let res = options("https://www.example.org").await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["vary"], "Origin");
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    assert_eq!(options("https://evil.example").await.unwrap().status(), 403);

    // Opening the link and the form are not posts: no Origin check, no budget spent.
    for _ in 0..3 {
        let res = app
            .client
            .get(app.url(link))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert!(!res.headers().contains_key("vary"));
    }
    let res = app
        .client
        .get(app.url("/contact"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The confirm post is guarded: its budget is untouched by the GETs above.
    assert_eq!(app.client.post(app.url(link)).send().await.unwrap().status(), 400);
    assert_eq!(app.client.post(app.url(link)).send().await.unwrap().status(), 429);
}

/// Writes `head` and then each of `parts` on a fresh connection (ignoring a server that has
/// stopped reading), and returns the response's status line.
async fn raw_request(app: &TestApp, head: &str, parts: &[&[u8]], pause: Duration) -> String {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("headers");
    for part in parts {
        if stream.write_all(part).await.is_err() {
            break;
        }
    }
    tokio::time::sleep(pause).await;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no response within 10 s");
    let text = String::from_utf8_lossy(&buf);
    text.lines().next().unwrap_or("").to_string()
}

#[tokio::test]
async fn a_body_that_trickles_in_is_cut_off_with_408() {
    let app = spawn(Backend::Sqlite, |c| c.body_timeout = Duration::from_secs(1))
        .await
        .unwrap();
    let head = format!(
        "POST /contact HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 100\r\n\r\n",
        app.addr
    );
    let started = Instant::now();
    let status = raw_request(&app, &head, &[b"name=Ada&"], Duration::ZERO).await;
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "cut off after body_timeout, took {took:?}"
    );
}

#[tokio::test]
async fn headers_that_trickle_in_are_cut_off_and_the_connection_closed() {
    let app = spawn(Backend::Sqlite, |c| c.header_timeout = Duration::from_secs(1))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    // A slowloris: a request line and one header, then a byte every 300 ms, never the blank line.
    stream
        .write_all(format!("POST /contact HTTP/1.1\r\nHost: {}\r\n", app.addr).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if stream.write_all(b"X").await.is_err() {
                return 0;
            }
            match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await {
                Ok(Ok(n)) => return n,
                Ok(Err(_)) => return 0,
                Err(_) => continue, // nothing yet: trickle on
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(0), "the server closed the connection without an answer");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "cut off after header_timeout, took {took:?}"
    );
    // The listener is unharmed.
    let res = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn shutdown_waits_for_the_request_in_flight_but_not_for_idle_connections() {
    let mut app = TestApp::spawn().await;
    // An idle kept-alive connection, as browsers leave them.
    let mut idle = TcpStream::connect(app.addr).await.expect("connect");
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", app.addr).as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // A post whose body is on its way when the shutdown comes.
    let mut busy = TcpStream::connect(app.addr).await.expect("connect");
    let body = "name=Ada&email=ada%40example.org&message=Hello";
    let head = format!(
        "POST /contact HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\nname=Ada&",
        app.addr,
        body.len()
    );
    busy.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let store = app.store.clone();
    // The database file outlives the app: the store is read below while the app stops, and the
    // stopped app would take its folder with it.
    let _database_folder = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    let stopping = tokio::spawn(app.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    busy.write_all(&body.as_bytes()["name=Ada&".len()..]).await.unwrap();
    let mut answer = Vec::new();
    busy.read_to_end(&mut answer).await.unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 303"),
        "the post in flight is answered: {}",
        String::from_utf8_lossy(&answer)
    );
    // (Read before the app is gone: its database goes with it.)
    let stored = store
        .list(&formgate::store::ListQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "the post in flight was stored");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("stopped without waiting for the idle connection")
        .unwrap();
    assert_eq!(
        idle.read(&mut buf).await.unwrap_or(0),
        0,
        "the idle connection was closed"
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let app = TestApp::spawn().await;
    let head = format!(
        "POST /contact HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        app.addr
    );
    let chunk = format!("2000\r\n{}\r\n", "a".repeat(0x2000));
    let parts: Vec<&[u8]> = std::iter::repeat_n(chunk.as_bytes(), 6)
        .chain(std::iter::once(&b"0\r\n\r\n"[..]))
        .collect();
    let status = raw_request(&app, &head, &parts, Duration::ZERO).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
}

#[tokio::test]
async fn other_methods_on_a_guarded_post_get_405_and_a_bare_options_is_no_preflight() {
    let app = spawn(Backend::Sqlite, |c| {
        c.allowed_origins = vec!["https://www.example.org".into()];
    })
    .await
    .unwrap();
    // OPTIONS without an Origin is no CORS preflight: 405, and the answer varies by Origin.
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/contact"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["vary"], "Origin");
    // A method the route does not take is refused before the guard spends any budget.
    let res = app.client.put(app.url("/contact")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert!(!res.headers().contains_key("vary"), "{:?}", res.headers());
    assert!(!res.headers().contains_key("retry-after"));
    app.stop().await;
}

/// SIGTERM under load: every request that has reached the server when it is told to stop is
/// answered, whether its connection was being served, accepted and not yet read, or still
/// waiting in the listener's backlog.
#[tokio::test]
async fn every_request_that_arrived_before_shutdown_is_answered() {
    let app = TestApp::spawn().await;
    let mut connections = Vec::new();
    for _ in 0..100 {
        connections.push(TcpStream::connect(app.addr).await.unwrap());
    }
    for tcp in &mut connections {
        tcp.write_all(b"GET /assets/formgate.css HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
    }
    let stopped = tokio::spawn(app.stop());
    let mut answered = 0;
    for (i, mut tcp) in connections.into_iter().enumerate() {
        let mut head = [0u8; 12];
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut head)).await;
        match read {
            Ok(Ok(_)) if &head == b"HTTP/1.1 200" => answered += 1,
            other => panic!(
                "request {i} got no answer: {other:?} {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    assert_eq!(answered, 100);
    stopped.await.unwrap();
}
