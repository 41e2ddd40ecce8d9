//! `formgate backup`: an online copy of a SQLite database, checked before it is called a backup.
//!
//! `VACUUM INTO` copies inside one read transaction, so the copy is the database as of one commit
//! (every submission acknowledged before it began is in it) while `serve` goes on writing beside
//! it (WAL: readers do not block the writer). PostgreSQL has `pg_dump` for the same job.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

use super::StoreError;

/// What a finished copy holds, from the copy itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    pub bytes: u64,
    /// `PRAGMA integrity_check`'s findings; empty when it said `ok`.
    pub problems: Vec<String>,
    pub messages: i64,
    /// Outbox rows per state (`queued`, `sent`, `dead`), the states with none left out.
    pub outbox: Vec<(String, i64)>,
}

impl BackupSummary {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn outbox_rows(&self) -> i64 {
        self.outbox.iter().map(|(_, n)| n).sum()
    }
}

/// Copies the SQLite database `database_url` names to a new file `target` (mode 0600: it holds
/// every visitor's message) and checks the copy. Refuses a `target` that exists; removes its
/// own file again if the copy fails half-way.
pub async fn sqlite_backup(database_url: &str, target: &Path) -> Result<BackupSummary, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let source = SqliteConnectOptions::from_str(database_url)?
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(10));
    if !source.get_filename().exists() {
        return Err(StoreError::Backup(format!(
            "there is no database at {}",
            source.get_filename().display()
        )));
    }
    let target_text = target
        .to_str()
        .ok_or_else(|| StoreError::Backup(format!("{} is not a UTF-8 path", target.display())))?;
    // Claimed before the copy, never over an existing file, private from its first byte. SQLite
    // copies INTO an empty file.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
        .map_err(|e| StoreError::Backup(format!("cannot create {}: {e}", target.display())))?;
    let copied = async {
        let mut conn = SqliteConnection::connect_with(&source).await?;
        sqlx::query("VACUUM INTO $1")
            .bind(target_text)
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        Ok::<(), StoreError>(())
    }
    .await;
    if let Err(e) = copied {
        let _ = std::fs::remove_file(target);
        return Err(e);
    }
    summarise(target).await
}

/// Checks and counts a copy (read-only: a check must not change what it checks).
async fn summarise(copy: &Path) -> Result<BackupSummary, StoreError> {
    let options = SqliteConnectOptions::new().filename(copy).read_only(true);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let mut problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await?;
    problems.retain(|p| p != "ok");
    let messages: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(&mut conn)
        .await?;
    let outbox: Vec<(String, i64)> = sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")
        .fetch_all(&mut conn)
        .await?;
    conn.close().await?;
    let bytes = std::fs::metadata(copy)
        .map_err(|e| StoreError::Backup(format!("cannot read {}: {e}", copy.display())))?
        .len();
    Ok(BackupSummary {
        bytes,
        problems,
        messages,
        outbox,
    })
}
