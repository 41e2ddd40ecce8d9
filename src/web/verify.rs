//! The link in the verification mail. GET (and HEAD) only show a page with a button, because mail
//! scanners open links before the visitor does; the button POSTs, and only that confirms.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{WebState, wants_json};
use crate::actions::LinkView;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/verify/{token}", get(show).post(confirm))
        .route("/suppress/{token}", get(show_suppress).post(suppress))
}

/// "I didn't send this": GET shows one button and changes nothing; POST suppresses the address.
async fn show_suppress(State(state): State<WebState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    match state.actions.open_suppress_link(&token).await {
        Ok(_) => state.page(StatusCode::OK, "suppress", minijinja::context! { token }),
        Err(e) => state.action_error(e, wants_json(&headers)),
    }
}

async fn suppress(State(state): State<WebState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let json = wants_json(&headers);
    let t = token.clone();
    match state
        .run_to_completion(move |a| async move { a.suppress_by_link(&t).await })
        .await
    {
        Ok(()) if json => axum::Json(serde_json::json!({ "status": "suppressed" })).into_response(),
        Ok(()) => state.page(StatusCode::OK, "suppressed", ()),
        Err(e) => state.action_error(e, json),
    }
}

async fn show(State(state): State<WebState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let t = token.clone();
    match state
        .run_to_completion(move |a| async move { a.open_link(&t).await })
        .await
    {
        Ok(LinkView::Confirm) => state.page(StatusCode::OK, "confirm", minijinja::context! { token }),
        Ok(LinkView::AlreadyConfirmed) => state.page(StatusCode::OK, "confirmed", ()),
        Err(e) => state.action_error(e, wants_json(&headers)),
    }
}

async fn confirm(State(state): State<WebState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let json = wants_json(&headers);
    let t = token.clone();
    match state
        .run_to_completion(move |a| async move { a.confirm(&t).await })
        .await
    {
        Ok(id) if json => axum::Json(serde_json::json!({ "status": "verified", "id": id })).into_response(),
        Ok(_) => state.page(StatusCode::OK, "confirmed", ()),
        Err(e) => state.action_error(e, json),
    }
}
