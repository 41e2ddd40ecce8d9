//! The link in the verification mail. GET (and HEAD) only show a page with a button, because mail
//! scanners open links before the visitor does; the button POSTs, and only that confirms.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{AppState, wants_json};
use crate::actions::LinkView;

pub fn router() -> Router<AppState> {
    Router::new().route("/verify/{token}", get(show).post(confirm))
}

async fn show(State(state): State<AppState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    match state.actions.open_link(&token).await {
        Ok(LinkView::Confirm) => state.page(StatusCode::OK, "confirm", minijinja::context! { token }),
        Ok(LinkView::AlreadyConfirmed) => state.page(StatusCode::OK, "confirmed", ()),
        Err(e) => state.action_error(e, wants_json(&headers)),
    }
}

async fn confirm(State(state): State<AppState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let json = wants_json(&headers);
    match state.actions.confirm(&token).await {
        Ok(id) if json => axum::Json(serde_json::json!({ "status": "verified", "id": id })).into_response(),
        Ok(_) => state.page(StatusCode::OK, "confirmed", ()),
        Err(e) => state.action_error(e, json),
    }
}
