//! Health for load balancers, orchestrators and the README's "is it up?".
//!
//! - `/livez`: the process answers; nothing else is checked, so a database blip never gets a
//!   healthy process restarted.
//! - `/readyz` (and its older name `/healthz`): whether to send this instance traffic. 503 with one
//!   word when not: `stopping` (shutdown has begun; requests in flight are draining), `database`
//!   (no answer within [`DATABASE_DEADLINE`], or the SQLite file is gone), `migrations` (the
//!   schema is not the one this build carries).
//!
//! Probes share one database check at a time (`DatabaseCheck`), so a stalled database costs one
//! pooled connection however often it is probed.
//!
//! Plain text, one word: nothing an attacker can learn from. Not rate limited (no guard on these
//! routes), and logged at debug only: probes come every few seconds.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;

use super::WebState;
use super::error::Chain;
use crate::store::SharedStore;

/// How long the database has to answer a readiness probe.
pub const DATABASE_DEADLINE: Duration = Duration::from_secs(1);

pub fn router() -> Router<WebState> {
    let check = Arc::new(DatabaseCheck::default());
    let readyz = move |State(state): State<WebState>| readyz(state, check.clone());
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz.clone()))
        .route("/healthz", get(readyz))
}

async fn livez() -> &'static str {
    "ok\n"
}

/// Why an instance is not ready; the word is the whole answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unready {
    Stopping,
    Database,
    Migrations,
}

impl Unready {
    fn word(self) -> &'static str {
        match self {
            Unready::Stopping => "stopping\n",
            Unready::Database => "database\n",
            Unready::Migrations => "migrations\n",
        }
    }
}

#[tracing::instrument(level = "debug", skip_all)]
async fn readyz(state: WebState, check: Arc<DatabaseCheck>) -> (StatusCode, &'static str) {
    match readiness(&state, &check).await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why.word()),
    }
}

async fn readiness(state: &WebState, check: &DatabaseCheck) -> Result<(), Unready> {
    if state.stopping.load(Ordering::Relaxed) {
        return Err(Unready::Stopping);
    }
    match check.run(state.actions.store().clone()).await {
        Some(Ok(true)) => {}
        Some(Ok(false)) => {
            tracing::debug!("not ready: the database's migrations are not this build's");
            return Err(Unready::Migrations);
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "not ready: database");
            return Err(Unready::Database);
        }
        None => {
            tracing::debug!(deadline = ?DATABASE_DEADLINE, "not ready: the database did not answer in time");
            return Err(Unready::Database);
        }
    }
    // The check took time: shutdown may have begun meanwhile.
    if state.stopping.load(Ordering::Relaxed) {
        return Err(Unready::Stopping);
    }
    Ok(())
}

/// Whether the database answers and its migrations are current, or why not.
type Checked = Result<bool, String>;

/// At most one database check at a time. It runs in a task of its own, so a probe that gives up
/// at the deadline leaves the query to finish (a query dropped half-way can leave its pooled
/// connection stuck behind whatever the database is waiting on), and probes that arrive
/// meanwhile wait for the same answer: a stalled database costs one connection, however often
/// the load balancers ask.
#[derive(Default)]
struct DatabaseCheck {
    running: Mutex<Option<watch::Receiver<Option<Checked>>>>,
}

impl DatabaseCheck {
    /// The answer of the check under way (or of a new one); None when none came within
    /// [`DATABASE_DEADLINE`].
    async fn run(&self, store: SharedStore) -> Option<Checked> {
        let mut answer = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            match running.as_ref() {
                Some(under_way) if under_way.borrow().is_none() => under_way.clone(),
                _ => {
                    let (tx, rx) = watch::channel(None);
                    tokio::spawn(async move {
                        let checked = async {
                            store.ping().await?;
                            store.migrations_current().await
                        }
                        .await
                        .map_err(|e| Chain(&e).to_string());
                        let _ = tx.send(Some(checked));
                    });
                    *running = Some(rx.clone());
                    rx
                }
            }
        };
        match tokio::time::timeout(DATABASE_DEADLINE, answer.wait_for(Option::is_some)).await {
            Ok(Ok(checked)) => checked.clone(),
            _ => None,
        }
    }
}
