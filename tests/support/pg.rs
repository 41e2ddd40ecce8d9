//! A fresh PostgreSQL database per test, on the server `FORMGATE_TEST_POSTGRES_URL` names
//! (default `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! When that server is unreachable, PostgreSQL tests are skipped loudly, or fail when
//! `FORMGATE_REQUIRE_POSTGRES=1` (as in CI, so they cannot pass by not running).

// Each test binary uses a different subset of this module.
#![allow(dead_code)]

use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn server_url() -> String {
    std::env::var("FORMGATE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SERVER_URL.to_string())
}

fn required() -> bool {
    std::env::var("FORMGATE_REQUIRE_POSTGRES").is_ok_and(|v| v.trim() == "1")
}

/// The URL without its password, for messages.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

async fn connect(url: &str) -> Result<PgConnection, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let mut u = url::Url::parse(url).unwrap_or_else(|e| panic!("FORMGATE_TEST_POSTGRES_URL is not a URL: {e}"));
    u.set_path(&format!("/{database}"));
    u.to_string()
}

/// Creates an empty database `formgate_test_<random hex>` and returns its URL; None when the
/// server is unreachable and PostgreSQL is not required (the test then skips itself).
pub async fn fresh_database() -> Option<String> {
    let server = server_url();
    let mut admin = match connect(&server).await {
        Ok(conn) => conn,
        Err(e) if required() => panic!(
            "PostgreSQL not reachable at {} ({e}), and FORMGATE_REQUIRE_POSTGRES=1 says the PostgreSQL \
             tests must run; start the server or point FORMGATE_TEST_POSTGRES_URL at one",
            shown(&server)
        ),
        Err(e) => {
            eprintln!(
                "SKIPPED: PostgreSQL not reachable at {} ({e}); set FORMGATE_REQUIRE_POSTGRES=1 to make this a failure",
                shown(&server)
            );
            return None;
        }
    };
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).expect("the OS random source works");
    let name = format!(
        "formgate_test_{}",
        random.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database {name} on {}: {e}", shown(&server)));
    let _ = admin.close().await;
    Some(with_database(&server, &name))
}

/// Drops the database `url` names, even with connections still open (best effort: a failure is
/// reported, not raised, so cleaning up never hides the test's own result).
pub async fn drop_database(url: &str) {
    let Some(name) = url::Url::parse(url)
        .ok()
        .map(|u| u.path().trim_start_matches('/').to_string())
        .filter(|n| n.starts_with("formgate_test_"))
    else {
        eprintln!("not dropping {}: not a formgate test database", shown(url));
        return;
    };
    let result = async {
        let mut admin = connect(&server_url()).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await
            .map_err(|e| e.to_string())?;
        let _ = admin.close().await;
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = result {
        eprintln!("could not drop the test database {name}: {e}");
    }
}

/// Simulates a database outage and its end: while `allowed` is false the database refuses new
/// connections and its open ones are cut.
pub async fn set_connections_allowed(url: &str, allowed: bool) {
    let name = url::Url::parse(url)
        .expect("a URL")
        .path()
        .trim_start_matches('/')
        .to_string();
    let mut admin = connect(&server_url()).await.expect("the test server answers");
    admin
        .execute(format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {allowed}").as_str())
        .await
        .expect("ALTER DATABASE");
    if !allowed {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name)
            .execute(&mut admin)
            .await
            .expect("terminating the database's connections");
    }
    let _ = admin.close().await;
}

/// A fresh database that is dropped when this value is (at the end of the test, passed or failed).
pub struct TestDatabase {
    url: String,
}

impl TestDatabase {
    /// None: PostgreSQL is unreachable and not required; skip the test.
    pub async fn fresh() -> Option<TestDatabase> {
        fresh_database().await.map(|url| TestDatabase { url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop cannot await, and blocking on a future inside the test's runtime panics; a thread
        // with a runtime of its own can.
        let url = self.url.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(drop_database(&url));
            Ok::<(), std::io::Error>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", shown(&self.url));
        }
    }
}
