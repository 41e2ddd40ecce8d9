//! Liveness for load balancers and the README's "is it up?".

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::WebState;
use super::error::Chain;

pub fn router() -> Router<WebState> {
    Router::new().route("/healthz", get(healthz))
}

#[tracing::instrument(level = "debug", skip_all)]
async fn healthz(State(state): State<WebState>) -> (StatusCode, &'static str) {
    match state.actions.store().ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::warn!(error = %Chain(&e), "health check: database unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}
