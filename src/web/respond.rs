//! Turning outcomes into responses: HTML pages for browsers, JSON for scripts.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use super::WebState;
use super::error::{Chain, ErrorAnswer};
use super::extract::Format;

impl WebState {
    /// Renders `pages/NAME.html` with the site name added to `ctx`.
    pub fn page<S: Serialize>(&self, status: StatusCode, name: &str, ctx: S) -> Response {
        let ctx = minijinja::context! { site_name => &*self.site_name, ..minijinja::Value::from_serialize(&ctx) };
        match self.templates.render(&format!("pages/{name}.html"), ctx) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %Chain(&e), page = name, "page template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// Gives a [`super::error::WebError`]'s response its body, as the client wants it: the JSON
/// answer, or the error's page rendered with the site's templates. Status and headers (a
/// `Retry-After`, the edge's `Vary` and CORS answer) stay as they were set; a page that fails to
/// render becomes a plain 500.
pub async fn answer_errors(State(state): State<WebState>, format: Format, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let Some(answer) = res.extensions_mut().remove::<ErrorAnswer>() else {
        return res;
    };
    let body = match format {
        Format::Json => Json(answer.json).into_response(),
        Format::Html => state.page(res.status(), answer.page, answer.ctx),
    };
    let (mut parts, _) = res.into_parts();
    let (body_parts, body) = body.into_parts();
    if body_parts.status == StatusCode::INTERNAL_SERVER_ERROR {
        parts.status = body_parts.status;
    }
    if let Some(content_type) = body_parts.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, content_type.clone());
    }
    Response::from_parts(parts, body)
}
