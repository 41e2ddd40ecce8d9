//! Health for load balancers, orchestrators and the README's "is it up?".
//!
//! - `/livez`: the process answers; nothing else is checked, so a database blip never gets a
//!   healthy process restarted.
//! - `/readyz` (and its older name `/healthz`): whether to send this instance traffic. 503 with one
//!   word when not: `stopping` (shutdown has begun; requests in flight are draining), `database`
//!   (no answer within [`DATABASE_DEADLINE`], or the SQLite file is gone), `migrations` (the
//!   schema is not the one this build carries).
//!
//! Plain text, one word: nothing an attacker can learn from. Not rate limited (no guard on these
//! routes), and logged at debug only: probes come every few seconds.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::WebState;
use super::error::Chain;

/// How long the database has to answer a readiness probe.
pub const DATABASE_DEADLINE: Duration = Duration::from_secs(1);

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
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
async fn readyz(State(state): State<WebState>) -> (StatusCode, &'static str) {
    match readiness(&state).await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why.word()),
    }
}

async fn readiness(state: &WebState) -> Result<(), Unready> {
    if state.stopping.load(Ordering::Relaxed) {
        return Err(Unready::Stopping);
    }
    let store = state.actions.store();
    let checked = tokio::time::timeout(DATABASE_DEADLINE, async {
        store.ping().await?;
        store.migrations_current().await
    })
    .await;
    let current = match checked {
        Ok(Ok(current)) => current,
        Ok(Err(e)) => {
            tracing::debug!(error = %Chain(&e), "not ready: database");
            return Err(Unready::Database);
        }
        Err(_) => {
            tracing::debug!(deadline = ?DATABASE_DEADLINE, "not ready: the database did not answer in time");
            return Err(Unready::Database);
        }
    };
    if !current {
        tracing::debug!("not ready: the database's migrations are not this build's");
        return Err(Unready::Migrations);
    }
    // The check took time: shutdown may have begun meanwhile.
    if state.stopping.load(Ordering::Relaxed) {
        return Err(Unready::Stopping);
    }
    Ok(())
}
