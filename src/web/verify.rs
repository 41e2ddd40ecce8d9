//! The link in the verification mail. GET (and HEAD) only show a page with a button, because mail
//! scanners open links before the visitor does; the button POSTs, and only that confirms.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tracing::field::display;

use super::WebState;
use super::edge::{self, Bucket, Guard};
use super::error::WebError;
use super::extract::Format;
use crate::actions::LinkView;

pub fn router(state: &WebState) -> Router<WebState> {
    let links = Router::new()
        .route("/verify/{token}", get(show))
        .route("/suppress/{token}", get(show_suppress).post(suppress));
    // Pressing "Confirm" is a confirmation attempt. Only formgate's own page has that button, so
    // no other site is answered a preflight.
    let confirms = Router::new()
        .route("/verify/{token}", post(confirm))
        .route_layer(from_fn_with_state(
            Guard::new(state, Bucket::Verify).without_preflight(),
            edge::guard,
        ));
    // Merged into `links`, not the other way round: `/verify/{token}` keeps the guarded router's
    // 405 fallback, so an OPTIONS request meets the guard's Origin check.
    links.merge(confirms)
}

/// "I didn't send this": GET shows one button and changes nothing; POST suppresses the address.
#[tracing::instrument(level = "debug", skip_all)]
async fn show_suppress(State(state): State<WebState>, Path(token): Path<String>) -> Result<Response, WebError> {
    state.actions.open_suppress_link(&token).await?;
    Ok(state.page(StatusCode::OK, "suppress", minijinja::context! { token }))
}

#[tracing::instrument(level = "debug", skip_all)]
async fn suppress(
    State(state): State<WebState>,
    format: Format,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    state
        .run_to_completion(move |a| async move { a.suppress_by_link(&token).await })
        .await?;
    Ok(match format {
        Format::Json => Json(json!({ "status": "suppressed" })).into_response(),
        Format::Html => state.page(StatusCode::OK, "suppressed", ()),
    })
}

#[tracing::instrument(level = "debug", skip_all)]
async fn show(State(state): State<WebState>, Path(token): Path<String>) -> Result<Response, WebError> {
    let t = token.clone();
    let view = state
        .run_to_completion(move |a| async move { a.open_link(&t).await })
        .await?;
    Ok(match view {
        LinkView::Confirm { form } => state.form_page(
            &state.entry_or_default(Some(&form)),
            StatusCode::OK,
            "confirm",
            minijinja::context! { token },
        ),
        LinkView::AlreadyConfirmed { form } => {
            state.form_page(&state.entry_or_default(Some(&form)), StatusCode::OK, "confirmed", ())
        }
    })
}

#[tracing::instrument(level = "debug", skip_all, fields(message_id))]
async fn confirm(
    State(state): State<WebState>,
    format: Format,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let confirmed = state
        .run_to_completion(move |a| async move { a.confirm(&token).await })
        .await?;
    tracing::Span::current().record("message_id", display(confirmed.id));
    Ok(match format {
        Format::Json => Json(json!({ "status": "verified", "id": confirmed.id })).into_response(),
        Format::Html => super::forms::after_confirming(&state, &confirmed),
    })
}
