//! The forms: show one, take posts to it (form-encoded or JSON), its schema, and the "check your
//! inbox" page with its code field and resend button. The default form (`default_form`) lives
//! at `/` and `/contact` as it always has; every form at `/f/{form}`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use tracing::field::display;

use super::WebState;
use super::edge::{self, Bucket, ClientIp, Guard};
use super::error::WebError;
use super::extract::{Format, PostedForm, Submission};
use super::respond::form_path;
use crate::actions::{ActionError, Confirmed};
use crate::domain::FieldErrors;
use crate::forms::{Entry, accept};
use crate::templates::STYLESHEET;

pub fn router(state: &WebState) -> Router<WebState> {
    let pages = Router::new()
        .route("/", get(default_form_page))
        .route("/contact", get(default_form_page))
        .route("/contact/sent", get(default_sent_page))
        .route("/contact/confirmed", get(default_confirmed_page))
        .route("/f/{form}", get(form_page))
        .route("/f/{form}/schema", get(schema))
        .route("/f/{form}/sent", get(sent_page))
        .route("/f/{form}/confirmed", get(confirmed_page))
        .route("/assets/formgate.css", get(stylesheet))
        .route("/favicon.ico", get(no_favicon));
    // Posts that send a mail spend the `contact` budget; a typed code is a confirmation attempt.
    let sends_mail = Router::new()
        .route("/contact", post(submit_default))
        .route("/f/{form}", post(submit))
        .route("/contact/resend", post(resend))
        .route_layer(from_fn_with_state(Guard::new(state, Bucket::Contact), edge::guard))
        .route_layer(from_fn_with_state(state.clone(), count_refusals));
    let confirms = Router::new()
        .route("/contact/code", post(code))
        .route_layer(from_fn_with_state(Guard::new(state, Bucket::Verify), edge::guard));
    // Merged into `pages`, not the other way round: `/contact` keeps the guarded router's 405
    // fallback, so its CORS preflight (OPTIONS) reaches the guard.
    pages.merge(sends_mail).merge(confirms)
}

/// Counts a form post the visitor got an error for (`formgate_submissions_total{outcome="refused"}`,
/// the status as its reason), wherever it was refused: the edge (origin, rate limit), the body
/// (too large, unreadable), the fields (422), an unknown form (404), the store (503). Stored
/// posts are counted by the use-case, which knows whether they were caught or held.
async fn count_refusals(
    State(state): State<WebState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Only the route is looked at before: a post that succeeds costs nothing more. (A `Uri`
    // clone shares its bytes.)
    let post = req.method() == axum::http::Method::POST;
    let posted = match req.extensions().get::<axum::extract::MatchedPath>().map(|p| p.as_str()) {
        Some("/contact") if post => Some(None),
        Some("/f/{form}") if post => Some(Some(req.uri().clone())),
        _ => None,
    };
    let res = next.run(req).await;
    if let Some(uri) = posted
        && (res.status().is_client_error() || res.status().is_server_error())
    {
        let form = match uri {
            None => state.default_entry().slug.clone(),
            // Only a configured slug becomes a label: anyone can post to any path.
            Some(uri) => uri
                .path()
                .strip_prefix("/f/")
                .and_then(|slug| state.actions.forms().get(slug))
                .map_or_else(|| "(unknown)".to_owned(), |e| e.slug.clone()),
        };
        crate::metrics::metrics().submission(&form, crate::metrics::SubmissionOutcome::refused, res.status().as_str());
    }
    res
}

impl WebState {
    fn entry(&self, slug: &str) -> Result<Arc<Entry>, WebError> {
        self.actions
            .forms()
            .get(slug)
            .cloned()
            .ok_or_else(|| WebError::NoSuchForm(slug.chars().take(40).collect()))
    }

    fn default_entry(&self) -> Arc<Entry> {
        self.actions.forms().default_entry().clone()
    }

    /// A form named by a page's hidden field: that form, or the default one.
    pub(super) fn entry_or_default(&self, slug: Option<&str>) -> Arc<Entry> {
        slug.and_then(|s| self.actions.forms().get(s).cloned())
            .unwrap_or_else(|| self.default_entry())
    }
}

async fn default_form_page(State(state): State<WebState>) -> Response {
    show_form(&state, &state.default_entry())
}

async fn form_page(State(state): State<WebState>, Path(form): Path<String>) -> Result<Response, WebError> {
    let entry = state.entry(&form)?;
    Ok(show_form(&state, &entry))
}

#[tracing::instrument(level = "debug", skip_all)]
fn show_form(state: &WebState, entry: &Entry) -> Response {
    let form_token = state.actions.form_token();
    state.form_page(
        entry,
        StatusCode::OK,
        "form",
        minijinja::context! { values => minijinja::context! {}, form => minijinja::context! {}, errors => FieldErrors::new(), form_token },
    )
}

/// `GET /f/{form}/schema`: the field list as JSON, for sites that build their form in JavaScript.
async fn schema(State(state): State<WebState>, Path(form): Path<String>) -> Result<Response, WebError> {
    let entry = state.entry(&form)?;
    let action = format!("/f/{}", entry.slug);
    Ok(Json(crate::forms::present::schema(&entry, &action)).into_response())
}

/// Browsers ask every site for one; an empty answer they may cache keeps a 404 out of every
/// page's console (and out of the request log).
async fn no_favicon() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::CACHE_CONTROL, "public, max-age=86400")],
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn submit_default(
    State(state): State<WebState>,
    format: Format,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    PostedForm(posted): PostedForm,
) -> Result<Response, WebError> {
    let entry = state.default_entry();
    take_post(&state, entry, format, client, &headers, posted).await
}

async fn submit(
    State(state): State<WebState>,
    Path(form): Path<String>,
    format: Format,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    PostedForm(posted): PostedForm,
) -> Result<Response, WebError> {
    let entry = state.entry(&form)?;
    take_post(&state, entry, format, client, &headers, posted).await
}

#[tracing::instrument(level = "debug", name = "submit_form", skip_all, fields(form = %entry.slug, message_id))]
async fn take_post(
    state: &WebState,
    entry: Arc<Entry>,
    format: Format,
    client: Option<Extension<ClientIp>>,
    headers: &HeaderMap,
    posted: crate::forms::Posted,
) -> Result<Response, WebError> {
    // The client as the edge resolved it (behind `trusted_proxies`), for the consent record.
    let ip = client.map(|Extension(ClientIp(ip))| ip.to_string());
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let accepted = match accept::accept(&entry, &posted, ip, user_agent) {
        Ok(a) => a,
        Err(rejected) => {
            // The time trap: a re-shown form keeps the token it was first served with.
            let form_token = rejected.bot.form_token.unwrap_or_else(|| state.actions.form_token());
            return Err(WebError::Invalid {
                form: entry.slug.clone(),
                values: rejected.values,
                errors: rejected.errors,
                form_token,
            });
        }
    };
    // A bot filter's catch is stored as spam and answered exactly like any other post.
    let spam = state.actions.bot_verdict(&accepted.bot, entry.require_form_token);
    let msg = accepted.msg;
    let submitted = state
        .run_to_completion(move |a| async move { a.submit_as(msg, spam).await })
        .await?;
    tracing::Span::current().record("message_id", display(submitted.id));
    // Only now, after the commit, does the visitor hear "success".
    Ok(match format {
        Format::Json => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "pending", "id": submitted.id, "receipt": submitted.receipt, "form": entry.slug })),
        )
            .into_response(),
        Format::Html => {
            Redirect::to(&format!("{}?r={}", form_path(&entry, "/sent"), submitted.receipt)).into_response()
        }
    })
}

#[derive(Deserialize)]
struct SentQuery {
    r: Option<String>,
    resent: Option<String>,
}

async fn default_sent_page(State(state): State<WebState>, Query(q): Query<SentQuery>) -> Response {
    show_sent(&state, &state.default_entry(), q)
}

async fn sent_page(
    State(state): State<WebState>,
    Path(form): Path<String>,
    Query(q): Query<SentQuery>,
) -> Result<Response, WebError> {
    let entry = state.entry(&form)?;
    Ok(show_sent(&state, &entry, q))
}

#[tracing::instrument(level = "debug", skip_all)]
fn show_sent(state: &WebState, entry: &Entry, q: SentQuery) -> Response {
    state.form_page(
        entry,
        StatusCode::OK,
        "sent",
        minijinja::context! { receipt => q.r, resent => q.resent.is_some() },
    )
}

async fn default_confirmed_page(State(state): State<WebState>) -> Response {
    state.form_page(&state.default_entry(), StatusCode::OK, "confirmed", ())
}

async fn confirmed_page(State(state): State<WebState>, Path(form): Path<String>) -> Result<Response, WebError> {
    let entry = state.entry(&form)?;
    Ok(state.form_page(&entry, StatusCode::OK, "confirmed", ()))
}

/// What a browser sees once its message is confirmed: a 303 to the form's `thank_you_url`
/// (configuration, never the request), else the form's own "confirmed" page.
pub fn after_confirming(state: &WebState, confirmed: &Confirmed) -> Response {
    let entry = state.entry_or_default(Some(&confirmed.form));
    match &entry.thank_you_url {
        Some(url) => Redirect::to(url).into_response(),
        None => state.form_page(&entry, StatusCode::OK, "confirmed", ()),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    code: String,
    /// The form whose "check your inbox" page this was (only picks which page shows an error).
    #[serde(default)]
    form: Option<String>,
}

#[tracing::instrument(level = "debug", skip_all, fields(message_id))]
async fn code(
    State(state): State<WebState>,
    format: Format,
    Submission(CodeForm { receipt, code, form }): Submission<CodeForm>,
) -> Result<Response, WebError> {
    let r = receipt.clone();
    let confirmed = state
        .run_to_completion(move |a| async move { a.confirm_code(&r, &code).await })
        .await;
    let confirmed = match confirmed {
        Ok(c) => c,
        // A wrong code is answered on the same page, with the field marked.
        Err(error @ (ActionError::WrongCode { .. } | ActionError::CodeLocked)) => {
            let form = form.filter(|f| state.actions.forms().get(f).is_some());
            return Err(WebError::CodeNotAccepted { receipt, form, error });
        }
        Err(e) => return Err(e.into()),
    };
    tracing::Span::current().record("message_id", display(confirmed.id));
    Ok(match format {
        Format::Json => Json(json!({ "status": "verified", "id": confirmed.id })).into_response(),
        // Post/Redirect/Get, as before: the form's "confirmed" page, or its thank-you URL.
        Format::Html => {
            let entry = state.entry_or_default(Some(&confirmed.form));
            let to = entry
                .thank_you_url
                .clone()
                .unwrap_or_else(|| form_path(&entry, "/confirmed"));
            Redirect::to(&to).into_response()
        }
    })
}

#[derive(Deserialize)]
struct ResendForm {
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    form: Option<String>,
}

#[tracing::instrument(level = "debug", skip_all)]
async fn resend(
    State(state): State<WebState>,
    format: Format,
    Submission(ResendForm { receipt, form }): Submission<ResendForm>,
) -> Result<Response, WebError> {
    let resent = state
        .run_to_completion(move |a| async move { a.resend_for_visitor(&receipt).await })
        .await;
    let entry = state.entry_or_default(form.as_deref());
    match (resent, format) {
        (Ok(receipt), Format::Json) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "status": "pending", "receipt": receipt })),
        )
            .into_response()),
        (Ok(receipt), Format::Html) => {
            Ok(Redirect::to(&format!("{}?r={receipt}&resent=1", form_path(&entry, "/sent"))).into_response())
        }
        // Already confirmed: nothing to resend, and nothing wrong either.
        (Err(ActionError::Illegal(_)), Format::Html) => {
            Ok(Redirect::to(&form_path(&entry, "/confirmed")).into_response())
        }
        (Err(e), _) => Err(e.into()),
    }
}
