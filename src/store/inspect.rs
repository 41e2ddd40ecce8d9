//! `formgate doctor`'s look at the database: read-only, over one connection of its own, with no
//! migration run (opening a `Store` would migrate; a check must not change what it checks).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};

use super::StoreError;

/// What the database says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The newest migration applied (None: none).
    pub applied: Option<i64>,
    /// The newest migration this binary carries.
    pub built_in: Option<i64>,
    /// Outbox rows given up on (mail and webhooks).
    pub dead: i64,
    /// Queued rows that have failed at least once and were queued before `retrying_since`.
    pub retrying_long: i64,
    /// When the longest-waiting due row became due (None: nothing is due).
    pub oldest_due: Option<i64>,
}

impl Inspection {
    pub fn migrations_current(&self) -> bool {
        self.applied == self.built_in
    }
}

/// How long connecting may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const APPLIED: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
const DEAD: &str = "SELECT COUNT(*) FROM outbox WHERE state = 'dead'";
const RETRYING_LONG: &str = "SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts > 0 AND created_at < $1";
const OLDEST_DUE: &str = "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1";

/// The same four reads on either engine's connection.
macro_rules! read_all {
    ($conn:expr, $built_in:expr, $now:expr, $since:expr) => {{
        let conn = $conn;
        let applied: Option<i64> = sqlx::query_scalar(APPLIED).fetch_one(&mut *conn).await?;
        let dead: i64 = sqlx::query_scalar(DEAD).fetch_one(&mut *conn).await?;
        let retrying_long: i64 = sqlx::query_scalar(RETRYING_LONG)
            .bind($since)
            .fetch_one(&mut *conn)
            .await?;
        let oldest_due: Option<i64> = sqlx::query_scalar(OLDEST_DUE).bind($now).fetch_one(&mut *conn).await?;
        Inspection {
            applied,
            built_in: $built_in,
            dead,
            retrying_long,
            oldest_due,
        }
    }};
}

/// Looks at the database `database_url` names. `Ok(None)`: a SQLite file that does not exist
/// yet (`serve` creates it).
pub async fn inspect(database_url: &str, now: i64, retrying_since: i64) -> Result<Option<Inspection>, StoreError> {
    let newest = |m: &sqlx::migrate::Migrator| m.iter().map(|m| m.version).max();
    if database_url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(database_url)?.read_only(true);
        if !options.get_filename().exists() {
            return Ok(None);
        }
        let mut conn = SqliteConnection::connect_with(&options).await?;
        let found = read_all!(&mut conn, newest(&super::sqlite::MIGRATOR), now, retrying_since);
        conn.close().await?;
        Ok(Some(found))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        let options = PgConnectOptions::from_str(database_url)?.application_name("formgate doctor");
        let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))??;
        let found = read_all!(&mut conn, newest(&super::postgres::MIGRATOR), now, retrying_since);
        conn.close().await?;
        Ok(Some(found))
    } else {
        Err(StoreError::Unsupported(crate::config::redact_url(database_url)))
    }
}
