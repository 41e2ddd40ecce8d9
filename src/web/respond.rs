//! Turning outcomes into responses: HTML pages for browsers, JSON for scripts.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::WebState;
use crate::actions::ActionError;

/// A client wants JSON when it sends JSON or asks for it.
pub fn wants_json(headers: &HeaderMap) -> bool {
    let has = |name, needle: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
    };
    has(header::CONTENT_TYPE, "application/json") || has(header::ACCEPT, "application/json")
}

impl WebState {
    /// Renders `pages/NAME.html` with the site name added to `ctx`.
    pub fn page<S: Serialize>(&self, status: StatusCode, name: &str, ctx: S) -> Response {
        let ctx = minijinja::context! { site_name => &*self.site_name, ..minijinja::Value::from_serialize(&ctx) };
        match self.templates.render(&format!("pages/{name}.html"), ctx) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, page = name, "page template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    pub fn error_page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        self.page(status, "error", minijinja::context! { title, message })
    }

    /// The one mapping from an action's failure to what a visitor sees. Internal causes are
    /// logged, never shown.
    pub fn action_error(&self, e: ActionError, json: bool) -> Response {
        let (status, page): (StatusCode, Response) = match &e {
            ActionError::InvalidLink => (
                StatusCode::BAD_REQUEST,
                self.page(StatusCode::BAD_REQUEST, "invalid", ()),
            ),
            ActionError::Expired { receipt } => (
                StatusCode::GONE,
                self.page(StatusCode::GONE, "expired", minijinja::context! { receipt }),
            ),
            ActionError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                self.error_page(StatusCode::NOT_FOUND, "Not found", "There is no such message."),
            ),
            ActionError::Illegal(_) | ActionError::Conflict(_) | ActionError::AlreadyDone { .. } => (
                StatusCode::CONFLICT,
                self.error_page(StatusCode::CONFLICT, "Already handled", &e.to_string()),
            ),
            ActionError::WrongCode { .. } | ActionError::CodeLocked => (
                StatusCode::UNPROCESSABLE_ENTITY,
                self.error_page(StatusCode::UNPROCESSABLE_ENTITY, "Code not accepted", &e.to_string()),
            ),
            ActionError::TooManyMails(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                self.error_page(StatusCode::TOO_MANY_REQUESTS, "No more emails", &e.to_string()),
            ),
            ActionError::Store(cause) => {
                tracing::error!(error = %cause, "storage failed");
                let msg =
                    "We could not save that right now. Nothing was lost on your side: please try again in a minute.";
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    self.error_page(StatusCode::SERVICE_UNAVAILABLE, "Please try again", msg),
                )
            }
        };
        if json {
            let message = match &e {
                ActionError::Store(_) => "temporarily unavailable; please retry".to_string(),
                other => other.to_string(),
            };
            (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
        } else {
            page
        }
    }
}
