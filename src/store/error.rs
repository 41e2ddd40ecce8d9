//! What can go wrong in the store.

use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unexpected value in the database: {0}")]
    Corrupt(String),
    /// The SQLite file this store opened is no longer at its path (deleted, moved, its folder
    /// gone): writes would land in a file nobody will open again.
    #[error("the database file {0} is gone or was replaced")]
    FileGone(String),
    #[error("{0}")]
    Backup(String),
    #[error("unsupported database_url `{0}`")]
    Unsupported(String),
    #[error("could not make the mail to queue: {0}")]
    Mail(String),
    /// One failure answered to every submission of a group-committed batch.
    #[error(transparent)]
    Batch(Arc<StoreError>),
    #[error("the intake queue has stopped")]
    IntakeStopped,
}

/// Every database error passes here on its way up, so here it is counted
/// (`formgate_database_errors_total`), once, whoever meets it.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        crate::metrics::metrics().database_error(&e);
        StoreError::Database(e)
    }
}

impl StoreError {
    /// True when the failure is about one submission's data (a render error, a constraint, a value
    /// the database refuses) rather than the database as a whole: the rest of its batch can still
    /// be stored without it.
    pub fn concerns_one_submission(&self) -> bool {
        match self {
            StoreError::Mail(_) => true,
            StoreError::Database(sqlx::Error::Encode(_)) => true,
            StoreError::Database(sqlx::Error::Database(db)) => {
                // A constraint, or PostgreSQL's class 22 (data exception: a NUL byte in text, …).
                !matches!(db.kind(), sqlx::error::ErrorKind::Other)
                    || db.code().is_some_and(|c| c.starts_with("22") && c.len() == 5)
            }
            _ => false,
        }
    }
}
