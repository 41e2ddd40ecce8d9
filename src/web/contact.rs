//! The contact form: show it, take posts (form-encoded or JSON), and the "check your inbox" page
//! with its code field and resend button.

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::edge::ClientIp;
use super::{MAX_BODY, WebState, wants_json};
use crate::actions::ActionError;
use crate::domain::{ContactForm, FieldErrors, NewMessage};
use crate::templates::STYLESHEET;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(form_page))
        .route("/contact", get(form_page).post(submit))
        .route("/contact/sent", get(sent_page))
        .route("/contact/code", post(code))
        .route("/contact/resend", post(resend))
        .route("/contact/confirmed", get(confirmed_page))
        .route("/assets/formgate.css", get(stylesheet))
}

async fn form_page(State(state): State<WebState>) -> Response {
    render_form(&state, StatusCode::OK, &ContactForm::default(), &FieldErrors::new())
}

fn render_form(state: &WebState, status: StatusCode, form: &ContactForm, errors: &FieldErrors) -> Response {
    // The time trap: a re-shown form keeps the token it was first served with.
    let form_token = form.form_token.clone().unwrap_or_else(|| state.actions.form_token());
    state.page(status, "form", minijinja::context! { form, errors, form_token })
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

/// Why a body could not be read, before any field is looked at.
enum BodyError {
    TooLarge,
    /// The client stopped sending before the body was complete (`body_timeout`).
    TimedOut,
    UnsupportedType,
    Unreadable(String),
}

/// Reads at most [`MAX_BODY`] bytes and decodes them by content type.
async fn read_body<T: serde::de::DeserializeOwned>(
    state: &WebState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, BodyError> {
    // Refuse a declared oversize body before reading a byte of it.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(BodyError::TooLarge);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mime = content_type.split(';').next().unwrap_or("").trim().to_string();
    if mime != "application/x-www-form-urlencoded" && mime != "application/json" {
        return Err(BodyError::UnsupportedType);
    }
    // A chunked body has no declared length: the limit cuts it off at MAX_BODY bytes, and the
    // timeout cuts off a client that trickles bytes to hold a connection open.
    let bytes = tokio::time::timeout(state.edge.body_timeout, axum::body::to_bytes(body, MAX_BODY))
        .await
        .map_err(|_| BodyError::TimedOut)?
        .map_err(|_| BodyError::TooLarge)?;
    if mime == "application/json" {
        serde_json::from_slice(&bytes)
            .map_err(|e| BodyError::Unreadable(format!("the JSON body could not be read: {e}")))
    } else {
        strict_utf8_form(&bytes)?;
        serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| BodyError::Unreadable(format!("the form data could not be read: {e}")))
    }
}

/// `serde_urlencoded` replaces invalid UTF-8 with U+FFFD; a visitor's text silently changed is
/// worse than a clear error, so decode every key and value strictly first.
fn strict_utf8_form(bytes: &[u8]) -> Result<(), BodyError> {
    let bad = || BodyError::Unreadable("the form data is not valid UTF-8".into());
    for pair in bytes.split(|b| *b == b'&') {
        for part in pair.splitn(2, |b| *b == b'=') {
            percent_encoding::percent_decode(part)
                .decode_utf8()
                .map_err(|_| bad())?;
        }
    }
    Ok(())
}

fn body_error(state: &WebState, e: BodyError, json: bool) -> Response {
    let (status, message) = match e {
        BodyError::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The submission is too large (at most {} KiB).", MAX_BODY / 1024),
        ),
        BodyError::TimedOut => (
            StatusCode::REQUEST_TIMEOUT,
            "The submission took too long to arrive; please send it again.".to_string(),
        ),
        BodyError::UnsupportedType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the form as application/x-www-form-urlencoded or application/json.".to_string(),
        ),
        BodyError::Unreadable(m) => (StatusCode::BAD_REQUEST, m),
    };
    if json {
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    } else {
        state.error_page(status, "We could not read that", &message)
    }
}

async fn submit(State(state): State<WebState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let json = wants_json(&parts.headers);
    let form: ContactForm = match read_body(&state, &parts.headers, body).await {
        Ok(f) => f,
        Err(e) => return body_error(&state, e, json),
    };
    // The client as the edge resolved it (behind `trusted_proxies`), for the consent record.
    let ip = parts.extensions.get::<ClientIp>().map(|c| c.0.to_string());
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let new = match NewMessage::parse(&form, ip, user_agent) {
        Ok(m) => m,
        Err(errors) if json => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(serde_json::json!({ "errors": errors })),
            )
                .into_response();
        }
        Err(errors) => {
            return render_form(&state, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors);
        }
    };
    // A bot filter's catch is stored as spam and answered exactly like any other post.
    let spam = state.actions.bot_verdict(&form);
    match state
        .run_to_completion(move |a| async move { a.submit_as(new, spam).await })
        .await
    {
        // Only now, after the commit, does the visitor hear "success".
        Ok(s) if json => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "status": "pending", "id": s.id, "receipt": s.receipt })),
        )
            .into_response(),
        Ok(s) => Redirect::to(&format!("/contact/sent?r={}", s.receipt)).into_response(),
        Err(e) => state.action_error(e, json),
    }
}

#[derive(Deserialize)]
struct SentQuery {
    r: Option<String>,
    resent: Option<String>,
}

async fn sent_page(State(state): State<WebState>, Query(q): Query<SentQuery>) -> Response {
    let notice = q
        .resent
        .is_some()
        .then_some("A new email is on its way; the links and code in older ones no longer work.");
    state.page(
        StatusCode::OK,
        "sent",
        minijinja::context! { receipt => q.r, notice, error => None::<String> },
    )
}

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

async fn code(State(state): State<WebState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let json = wants_json(&parts.headers);
    let f: CodeForm = match read_body(&state, &parts.headers, body).await {
        Ok(f) => f,
        Err(e) => return body_error(&state, e, json),
    };
    let (receipt, typed) = (f.receipt.clone(), f.code.clone());
    match state
        .run_to_completion(move |a| async move { a.confirm_code(&receipt, &typed).await })
        .await
    {
        Ok(id) if json => axum::Json(serde_json::json!({ "status": "verified", "id": id })).into_response(),
        Ok(_) => Redirect::to("/contact/confirmed").into_response(),
        // A wrong code is answered on the same page, with the field marked.
        Err(e @ (ActionError::WrongCode { .. } | ActionError::CodeLocked)) if !json => state.page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "sent",
            minijinja::context! { receipt => f.receipt, notice => None::<String>, error => e.to_string() },
        ),
        Err(e) => state.action_error(e, json),
    }
}

#[derive(Deserialize)]
struct ResendForm {
    #[serde(default)]
    receipt: String,
}

async fn resend(State(state): State<WebState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let json = wants_json(&parts.headers);
    let f: ResendForm = match read_body(&state, &parts.headers, body).await {
        Ok(f) => f,
        Err(e) => return body_error(&state, e, json),
    };
    let receipt = f.receipt.clone();
    match state
        .run_to_completion(move |a| async move { a.resend_for_visitor(&receipt).await })
        .await
    {
        Ok(receipt) if json => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "status": "pending", "receipt": receipt })),
        )
            .into_response(),
        Ok(receipt) => Redirect::to(&format!("/contact/sent?r={receipt}&resent=1")).into_response(),
        // Already confirmed: nothing to resend, and nothing wrong either.
        Err(ActionError::Illegal(_)) if !json => Redirect::to("/contact/confirmed").into_response(),
        Err(e) => state.action_error(e, json),
    }
}
