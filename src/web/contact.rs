//! The contact form: show it, take posts (form-encoded or JSON), and the "check your inbox" page
//! with its code field and resend button.

use axum::extract::{Query, State};
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
use super::extract::{Format, Submission};
use crate::actions::ActionError;
use crate::domain::{ContactForm, FieldErrors, NewMessage};
use crate::templates::STYLESHEET;

pub fn router(state: &WebState) -> Router<WebState> {
    let pages = Router::new()
        .route("/", get(form_page))
        .route("/contact", get(form_page))
        .route("/contact/sent", get(sent_page))
        .route("/contact/confirmed", get(confirmed_page))
        .route("/assets/formgate.css", get(stylesheet));
    // Posts that send a mail spend the `contact` budget; a typed code is a confirmation attempt.
    let sends_mail = Router::new()
        .route("/contact", post(submit))
        .route("/contact/resend", post(resend))
        .route_layer(from_fn_with_state(Guard::new(state, Bucket::Contact), edge::guard));
    let confirms = Router::new()
        .route("/contact/code", post(code))
        .route_layer(from_fn_with_state(Guard::new(state, Bucket::Verify), edge::guard));
    // Merged into `pages`, not the other way round: `/contact` keeps the guarded router's 405
    // fallback, so its CORS preflight (OPTIONS) reaches the guard.
    pages.merge(sends_mail).merge(confirms)
}

#[tracing::instrument(level = "debug", skip_all)]
async fn form_page(State(state): State<WebState>) -> Response {
    let form_token = state.actions.form_token();
    state.page(
        StatusCode::OK,
        "form",
        minijinja::context! { form => ContactForm::default(), errors => FieldErrors::new(), form_token },
    )
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

#[tracing::instrument(level = "debug", skip_all, fields(message_id))]
async fn submit(
    State(state): State<WebState>,
    format: Format,
    client: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    Submission(form): Submission<ContactForm>,
) -> Result<Response, WebError> {
    // The client as the edge resolved it (behind `trusted_proxies`), for the consent record.
    let ip = client.map(|Extension(ClientIp(ip))| ip.to_string());
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let new = match NewMessage::parse(&form, ip, user_agent) {
        Ok(m) => m,
        Err(errors) => {
            // The time trap: a re-shown form keeps the token it was first served with.
            let form_token = form.form_token.clone().unwrap_or_else(|| state.actions.form_token());
            return Err(WebError::Invalid {
                form: Box::new(form),
                errors,
                form_token,
            });
        }
    };
    // A bot filter's catch is stored as spam and answered exactly like any other post.
    let spam = state.actions.bot_verdict(&form);
    let submitted = state
        .run_to_completion(move |a| async move { a.submit_as(new, spam).await })
        .await?;
    tracing::Span::current().record("message_id", display(submitted.id));
    // Only now, after the commit, does the visitor hear "success".
    Ok(match format {
        Format::Json => (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "pending", "id": submitted.id, "receipt": submitted.receipt })),
        )
            .into_response(),
        Format::Html => Redirect::to(&format!("/contact/sent?r={}", submitted.receipt)).into_response(),
    })
}

#[derive(Deserialize)]
struct SentQuery {
    r: Option<String>,
    resent: Option<String>,
}

#[tracing::instrument(level = "debug", skip_all)]
async fn sent_page(State(state): State<WebState>, Query(q): Query<SentQuery>) -> Response {
    state.page(
        StatusCode::OK,
        "sent",
        minijinja::context! { receipt => q.r, resent => q.resent.is_some() },
    )
}

#[tracing::instrument(level = "debug", skip_all)]
async fn confirmed_page(State(state): State<WebState>) -> Response {
    state.page(StatusCode::OK, "confirmed", ())
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    code: String,
}

#[tracing::instrument(level = "debug", skip_all, fields(message_id))]
async fn code(
    State(state): State<WebState>,
    format: Format,
    Submission(CodeForm { receipt, code }): Submission<CodeForm>,
) -> Result<Response, WebError> {
    let r = receipt.clone();
    let confirmed = state
        .run_to_completion(move |a| async move { a.confirm_code(&r, &code).await })
        .await;
    let id = match confirmed {
        Ok(id) => id,
        // A wrong code is answered on the same page, with the field marked.
        Err(error @ (ActionError::WrongCode { .. } | ActionError::CodeLocked)) => {
            return Err(WebError::CodeNotAccepted { receipt, error });
        }
        Err(e) => return Err(e.into()),
    };
    tracing::Span::current().record("message_id", display(id));
    Ok(match format {
        Format::Json => Json(json!({ "status": "verified", "id": id })).into_response(),
        Format::Html => Redirect::to("/contact/confirmed").into_response(),
    })
}

#[derive(Deserialize)]
struct ResendForm {
    #[serde(default)]
    receipt: String,
}

#[tracing::instrument(level = "debug", skip_all)]
async fn resend(
    State(state): State<WebState>,
    format: Format,
    Submission(ResendForm { receipt }): Submission<ResendForm>,
) -> Result<Response, WebError> {
    let resent = state
        .run_to_completion(move |a| async move { a.resend_for_visitor(&receipt).await })
        .await;
    match (resent, format) {
        (Ok(receipt), Format::Json) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "status": "pending", "receipt": receipt })),
        )
            .into_response()),
        (Ok(receipt), Format::Html) => Ok(Redirect::to(&format!("/contact/sent?r={receipt}&resent=1")).into_response()),
        // Already confirmed: nothing to resend, and nothing wrong either.
        (Err(ActionError::Illegal(_)), Format::Html) => Ok(Redirect::to("/contact/confirmed").into_response()),
        (Err(e), _) => Err(e.into()),
    }
}
