//! `formgate doctor`'s look at the database: read-only, over one connection of its own, with no
//! migration run (opening a `Store` would migrate; a check must not change what it checks).

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Postgres, Sqlite};

use super::StoreError;
use super::shared::{Dialect, newest_migration};

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

const DEAD: &str = "SELECT COUNT(*) FROM outbox WHERE state = 'dead'";
const RETRYING_LONG: &str = "SELECT COUNT(*) FROM outbox WHERE state = 'queued' AND attempts > 0 AND created_at < $1";
const OLDEST_DUE: &str = "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'queued' AND next_attempt_at <= $1";

/// The same reads on either engine's pool (of one connection).
macro_rules! read_all {
    ($db:ty, $pool:expr, $migrator:expr, $now:expr, $since:expr) => {{
        let pool = $pool;
        let found = Inspection {
            applied: <$db as Dialect>::applied_migration(&pool).await?,
            built_in: newest_migration($migrator),
            dead: sqlx::query_scalar(DEAD).fetch_one(&pool).await?,
            retrying_long: sqlx::query_scalar(RETRYING_LONG).bind($since).fetch_one(&pool).await?,
            oldest_due: sqlx::query_scalar(OLDEST_DUE).bind($now).fetch_one(&pool).await?,
        };
        pool.close().await;
        found
    }};
}

/// Looks at the database `database_url` names. `Ok(None)`: a SQLite file that does not exist
/// yet (`serve` creates it).
pub async fn inspect(database_url: &str, now: i64, retrying_since: i64) -> Result<Option<Inspection>, StoreError> {
    if database_url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(database_url)?.read_only(true);
        if !options.get_filename().exists() {
            return Ok(None);
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Some(read_all!(
            Sqlite,
            pool,
            &super::sqlite::MIGRATOR,
            now,
            retrying_since
        )))
    } else if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        let options = PgConnectOptions::from_str(database_url)?.application_name("formgate doctor");
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Some(read_all!(
            Postgres,
            pool,
            &super::postgres::MIGRATOR,
            now,
            retrying_since
        )))
    } else {
        Err(StoreError::Unsupported(crate::config::redact_url(database_url)))
    }
}
