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
use crate::forms::Entry;
use crate::forms::present::widget;
use crate::templates::Templates;

impl WebState {
    /// Renders `pages/NAME.html` with the site's templates and name added to `ctx`.
    pub fn page<S: Serialize>(&self, status: StatusCode, name: &str, ctx: S) -> Response {
        let ctx = minijinja::context! { site_name => &*self.site_name, ..minijinja::Value::from_serialize(&ctx) };
        render(&self.templates, status, name, ctx)
    }

    /// Renders one of a form's pages (`form`, `sent`, `confirmed`) with the form's templates, its
    /// title, site name, addresses and fields added to `ctx`.
    pub fn form_page<S: Serialize>(&self, entry: &Entry, status: StatusCode, name: &str, ctx: S) -> Response {
        let ctx = minijinja::context! { ..form_context(entry), ..minijinja::Value::from_serialize(&ctx) };
        render(&entry.templates, status, name, ctx)
    }
}

fn render(templates: &Templates, status: StatusCode, name: &str, ctx: minijinja::Value) -> Response {
    match templates.render(&format!("pages/{name}.html"), ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %Chain(&e), page = name, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The addresses of a form's pages: the default form keeps `/contact…`, the others `/f/{slug}…`.
pub fn form_path(entry: &Entry, suffix: &str) -> String {
    format!("{}{suffix}", entry.path(entry.default))
}

/// What every page of a form can show.
fn form_context(entry: &Entry) -> minijinja::Value {
    let fields: Vec<minijinja::Value> = entry
        .visible_fields()
        .into_iter()
        .map(|f| {
            let widget = widget(f.kind);
            let autocomplete = match (f.kind, f.name.as_str()) {
                (crate::forms::FieldKind::Email, _) if f.verify => "email",
                (_, "name") => "name",
                (crate::forms::FieldKind::Tel, _) => "tel",
                (crate::forms::FieldKind::Url, _) => "url",
                _ => "",
            };
            minijinja::context! {
                name => f.name,
                kind => f.kind.as_str(),
                label => f.label,
                required => f.required,
                max_length => f.max_length(),
                options => f.options,
                min => f.min,
                max => f.max,
                help => f.help,
                widget,
                autocomplete,
            }
        })
        .collect();
    minijinja::context! {
        site_name => &entry.site_name,
        title => &entry.title,
        form_slug => &entry.slug,
        // Safe to print as is: a slug is `[a-z0-9-]`.
        action => form_path(entry, ""),
        thank_you_url => &entry.thank_you_url,
        // The confirmed page says a copy is coming (`confirmation_mail`).
        confirmation_mail => entry.confirmation_mail,
        fields,
    }
}

/// Gives a [`super::error::WebError`]'s response its body, as the client wants it: the JSON
/// answer, or the error's page rendered with the site's (or its form's) templates. Status and
/// headers (a `Retry-After`, the edge's `Vary` and CORS answer) stay as they were set; a page
/// that fails to render becomes a plain 500.
pub async fn answer_errors(State(state): State<WebState>, format: Format, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let Some(answer) = res.extensions_mut().remove::<ErrorAnswer>() else {
        return res;
    };
    let entry = answer
        .form
        .as_deref()
        .and_then(|slug| state.actions.forms().get(slug))
        .cloned();
    let body = match (format, entry) {
        (Format::Json, _) => Json(answer.json).into_response(),
        (Format::Html, Some(entry)) => state.form_page(&entry, res.status(), answer.page, answer.ctx),
        (Format::Html, None) => state.page(res.status(), answer.page, answer.ctx),
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
