//! `/livez`, `/readyz` (and `/healthz`): the answers a load balancer acts on.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{Backend, TestApp, on_every_backend};
use crate::support::pg::set_connections_allowed;
use crate::support::store::execute;

async fn answer(app: &TestApp, path: &str) -> (u16, String) {
    let res = app.get(path).await;
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

async fn every_probe_answers_ok_when_all_is_well(backend: Backend) {
    // The tightest rate limits there are: probes must pass them all the same.
    let limit = || formgate::config::RateLimit::parse("1/10m").unwrap();
    let Some(app) = TestApp::spawn_from_toml(backend, "", |c, _| {
        c.rate_limit_contact = limit();
        c.rate_limit_verify = limit();
    })
    .await
    else {
        return;
    };
    for path in ["/livez", "/readyz", "/healthz"] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "text/plain; charset=utf-8",
            "{path}"
        );
        assert_eq!(res.text().await.unwrap(), "ok\n", "{path}");
    }
    // Probes come every few seconds from one address: no rate limit may ever refuse them.
    for _ in 0..50 {
        assert_eq!(app.get("/readyz").await.status(), 200);
    }
}

async fn readyz_says_database_when_the_database_is_gone_and_livez_stays_ok(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    assert_eq!(answer(&app, "/readyz").await, (200, "ok\n".into()));
    match backend {
        // Open connections would go on writing to the deleted file: readiness must notice.
        Backend::Sqlite => std::fs::remove_dir_all(app.dir.path()).expect("remove the database's folder"),
        Backend::Postgres => set_connections_allowed(&app.config.database_url, false).await,
    }
    let asked = Instant::now();
    assert_eq!(answer(&app, "/readyz").await, (503, "database\n".into()));
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "answered within the 1 s deadline, took {:?}",
        asked.elapsed()
    );
    assert_eq!(answer(&app, "/healthz").await, (503, "database\n".into()));
    assert_eq!(
        answer(&app, "/livez").await,
        (200, "ok\n".into()),
        "the process is alive: no restart for a database outage"
    );
    if backend == Backend::Postgres {
        set_connections_allowed(&app.config.database_url, true).await;
        assert_eq!(
            answer(&app, "/readyz").await,
            (200, "ok\n".into()),
            "ready again by itself"
        );
    }
}

/// PostgreSQL only: SQLite's readers never wait on a lock in WAL mode, so a slow SQLite is a
/// slow disk, which a test cannot make.
#[tokio::test]
async fn readyz_says_database_when_postgresql_does_not_answer_within_a_second() {
    use sqlx::Connection;
    let Some(app) = TestApp::spawn_on(Backend::Postgres).await else {
        return;
    };
    // Another session holds a lock the probe's query waits behind.
    let mut holder = sqlx::PgConnection::connect(&app.config.database_url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE _sqlx_migrations IN ACCESS EXCLUSIVE MODE;")
        .execute(&mut holder)
        .await
        .unwrap();
    let asked = Instant::now();
    assert_eq!(answer(&app, "/readyz").await, (503, "database\n".into()));
    let took = asked.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "gave up after the 1 s deadline, took {took:?}"
    );
    assert_eq!(answer(&app, "/livez").await, (200, "ok\n".into()));
    // Probes keep coming while it stalls: they share one check, so one pooled connection waits.
    let probes: Vec<_> = (0..5)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/readyz"));
            tokio::spawn(async move { client.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for probe in probes {
        assert_eq!(probe.await.unwrap(), 503);
    }
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&mut holder)
    .await
    .unwrap();
    assert_eq!(
        waiting, 1,
        "one connection waits on the stalled database, however often it is probed"
    );
    holder.close().await.unwrap();
    assert_eq!(
        answer(&app, "/readyz").await,
        (200, "ok\n".into()),
        "ready once the lock is gone"
    );
}

async fn readyz_says_migrations_when_the_schema_is_behind(backend: Backend) {
    let Some(app) = TestApp::spawn_on(backend).await else {
        return;
    };
    // As if the newest migration had been undone (or a restore brought back an older schema).
    execute(
        &app.config.database_url,
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    assert_eq!(answer(&app, "/readyz").await, (503, "migrations\n".into()));
    assert_eq!(answer(&app, "/livez").await, (200, "ok\n".into()));
}

async fn readyz_says_stopping_while_requests_drain(backend: Backend) {
    let Some(mut app) = TestApp::spawn_on(backend).await else {
        return;
    };
    // A probe whose connection is open and whose request is on its way when the shutdown
    // comes: it is answered (requests that have arrived are), and the answer is "stopping".
    let mut probe = TcpStream::connect(app.addr).await.expect("connect");
    probe
        .write_all(format!("GET /readyz HTTP/1.1\r\nHost: {}\r\n", app.addr).as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.begin_stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    probe.write_all(b"\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), probe.read_to_end(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nstopping\n"), "{answer}");
    let _database = app.stop().await;
}

on_every_backend!(
    every_probe_answers_ok_when_all_is_well,
    readyz_says_database_when_the_database_is_gone_and_livez_stays_ok,
    readyz_says_migrations_when_the_schema_is_behind,
    readyz_says_stopping_while_requests_drain,
);

/// One request on a new connection, as a load balancer's probe makes it; None when the
/// connection is refused.
async fn fresh_probe(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn shutdown_grace_keeps_serving_while_readyz_says_stopping() {
    let Some(mut app) = TestApp::spawn_from_toml(Backend::Sqlite, "shutdown_grace = \"2s\"", |c, file| {
        c.shutdown_grace = file.shutdown_grace;
    })
    .await
    else {
        return;
    };
    let addr = app.addr;
    let began = Instant::now();
    app.begin_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are still taken: readiness says why traffic should go elsewhere, and the
    // site itself still answers.
    let ready = fresh_probe(addr, "/readyz").await.expect("accepted during the grace");
    assert!(
        ready.starts_with("HTTP/1.1 503") && ready.ends_with("stopping\n"),
        "{ready}"
    );
    let page = fresh_probe(addr, "/").await.expect("accepted during the grace");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    // After the grace, the listener closes as without one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fresh_probe(addr, "/livez").await.is_some() {
        assert!(Instant::now() < deadline, "still accepting long after the grace");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(began.elapsed() >= Duration::from_secs(2), "{:?}", began.elapsed());
    let _ = app.stop().await;
}
