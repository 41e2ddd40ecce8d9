//! The one error type at the HTTP boundary. Each variant knows its status code, its JSON answer
//! (the API's `error` strings are written here, and only here) and which page shows it; the
//! pages' wording lives in `ui/pages/` (`error.html` for most), where a site owner can change it.
//! A database failure is logged with its causes and never shown to the visitor.
//!
//! A `WebError` becomes a response without seeing the request or the templates: it sets its
//! status and headers and attaches an [`ErrorAnswer`], and [`super::respond::answer_errors`]
//! (a layer over every route, the edge's included) gives it a body in the format the client wants.

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::MAX_BODY;
use crate::actions::ActionError;
use crate::domain::FieldErrors;

#[derive(Debug)]
pub enum WebError {
    /// A use-case said no (or the database did not answer).
    Action(ActionError),
    /// A form's fields did not pass its checks: the form again, input kept, errors beside fields.
    Invalid {
        /// The form's slug.
        form: String,
        /// What was posted, by name, to fill the inputs again.
        values: std::collections::BTreeMap<String, Vec<String>>,
        errors: FieldErrors,
        /// The time trap's token the form is re-shown with (the one it was first served with).
        form_token: String,
    },
    /// A code typed on the "check your inbox" page was wrong (or too many were): that page again,
    /// with the field marked.
    CodeNotAccepted {
        receipt: String,
        /// The form the page belongs to (its slug), as the page posted it.
        form: Option<String>,
        error: ActionError,
    },
    /// `/f/{form}` names no configured form.
    NoSuchForm(String),
    /// The body is over [`MAX_BODY`] (declared or counted).
    TooLarge,
    /// The client stopped sending before the body was complete (`body_timeout`).
    TimedOut,
    UnsupportedType,
    BadJson(serde_json::Error),
    BadForm(serde_urlencoded::de::Error),
    /// A JSON post whose shape no form takes (not an object, a nested value): what is wrong.
    BadFields(String),
    NotUtf8,
    /// A browser post from a site not in `allowed_origins` (the Origin as sent).
    ForeignOrigin(String),
    /// Over a per-client rate limit; the window ends in `retry_after` seconds.
    RateLimited {
        retry_after: i64,
    },
}

impl From<ActionError> for WebError {
    fn from(e: ActionError) -> Self {
        WebError::Action(e)
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Action(e) => match e {
                ActionError::InvalidLink => StatusCode::BAD_REQUEST,
                ActionError::Expired { .. } => StatusCode::GONE,
                ActionError::NotFound(_) | ActionError::NoSuchDestination { .. } => StatusCode::NOT_FOUND,
                ActionError::Illegal(_)
                | ActionError::Conflict(_)
                | ActionError::AlreadyDone { .. }
                | ActionError::StillUnderWay { .. }
                | ActionError::NothingDead(_) => StatusCode::CONFLICT,
                ActionError::WrongCode { .. } | ActionError::CodeLocked => StatusCode::UNPROCESSABLE_ENTITY,
                ActionError::TooManyMails(_) => StatusCode::TOO_MANY_REQUESTS,
                ActionError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            WebError::Invalid { .. } | WebError::CodeNotAccepted { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            WebError::UnsupportedType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            WebError::BadJson(_) | WebError::BadForm(_) | WebError::BadFields(_) | WebError::NotUtf8 => {
                StatusCode::BAD_REQUEST
            }
            WebError::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            WebError::NoSuchForm(_) => StatusCode::NOT_FOUND,
            WebError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The JSON API's answer: `{"errors": {field: message}}` for a form that did not parse,
    /// `{"error": message}` for everything else. These strings are API contract.
    fn json(&self) -> serde_json::Value {
        let message = match self {
            WebError::Invalid { errors, .. } => return json!({ "errors": errors }),
            WebError::Action(ActionError::Store(_)) => "temporarily unavailable; please retry".to_string(),
            WebError::Action(e) | WebError::CodeNotAccepted { error: e, .. } => e.to_string(),
            WebError::TooLarge => format!("The submission is too large (at most {} KiB).", MAX_BODY / 1024),
            WebError::TimedOut => "The submission took too long to arrive; please send it again.".to_string(),
            WebError::UnsupportedType => {
                "Send the form as application/x-www-form-urlencoded or application/json.".to_string()
            }
            WebError::BadJson(e) => format!("the JSON body could not be read: {e}"),
            WebError::BadForm(e) => format!("the form data could not be read: {e}"),
            WebError::BadFields(e) => e.clone(),
            WebError::NotUtf8 => "the form data is not valid UTF-8".to_string(),
            WebError::NoSuchForm(slug) => format!("There is no form `{slug}`."),
            WebError::ForeignOrigin(origin) => format!(
                "This form does not accept posts from {origin}. The site owner can add that origin to `allowed_origins`."
            ),
            WebError::RateLimited { retry_after } => {
                let minutes = minutes(*retry_after);
                format!(
                    "Too many requests from your address. Please try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )
            }
        };
        json!({ "error": message })
    }

    /// The page that shows this error (`pages/NAME.html`) and what it is rendered with. For
    /// `error.html`, `reason` picks the wording; `detail` is the use-case's own sentence.
    fn page(&self) -> (&'static str, minijinja::Value) {
        use minijinja::context;
        let error = |reason: &str| ("error", context! { reason });
        let detail = |reason: &str, e: &ActionError| ("error", context! { reason, detail => e.to_string() });
        match self {
            WebError::Action(e) => match e {
                ActionError::InvalidLink => ("invalid", context! {}),
                ActionError::Expired { receipt } => ("expired", context! { receipt }),
                ActionError::NotFound(_) | ActionError::NoSuchDestination { .. } => error("not_found"),
                ActionError::Illegal(_)
                | ActionError::Conflict(_)
                | ActionError::AlreadyDone { .. }
                | ActionError::StillUnderWay { .. }
                | ActionError::NothingDead(_) => detail("already_handled", e),
                ActionError::WrongCode { .. } | ActionError::CodeLocked => detail("code_not_accepted", e),
                ActionError::TooManyMails(_) => detail("too_many_mails", e),
                ActionError::Store(_) => error("unavailable"),
            },
            WebError::Invalid {
                values,
                errors,
                form_token,
                ..
            } => {
                // `form`: each field's first value, as overrides written for one form read them.
                let first: std::collections::BTreeMap<&str, &str> = values
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.first()?.as_str())))
                    .collect();
                ("form", context! { values, form => first, errors, form_token })
            }
            WebError::CodeNotAccepted { receipt, error, .. } => {
                ("sent", context! { receipt, error => error.to_string() })
            }
            WebError::NoSuchForm(_) => error("not_found"),
            WebError::TooLarge => ("error", context! { reason => "too_large", max_kib => MAX_BODY / 1024 }),
            WebError::TimedOut => error("timed_out"),
            WebError::UnsupportedType => error("unsupported_type"),
            WebError::BadJson(e) => ("error", context! { reason => "bad_json", detail => e.to_string() }),
            WebError::BadForm(e) => ("error", context! { reason => "bad_form", detail => e.to_string() }),
            WebError::BadFields(e) => ("error", context! { reason => "bad_json", detail => e }),
            WebError::NotUtf8 => error("not_utf8"),
            WebError::ForeignOrigin(origin) => ("error", context! { reason => "foreign_origin", origin }),
            WebError::RateLimited { retry_after } => (
                "error",
                context! { reason => "rate_limited", minutes => minutes(*retry_after) },
            ),
        }
    }
}

/// Whole minutes, rounded up, until a rate-limit window ends.
fn minutes(retry_after: i64) -> i64 {
    (retry_after + 59) / 60
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::Action(ActionError::Store(cause)) = &self {
            tracing::error!(error = %Chain(cause), "storage failed");
        }
        let (page, ctx) = self.page();
        let mut res = self.status().into_response();
        if let WebError::RateLimited { retry_after } = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        let form = match &self {
            WebError::Invalid { form, .. } => Some(form.clone()),
            WebError::CodeNotAccepted { form, .. } => form.clone(),
            _ => None,
        };
        res.extensions_mut().insert(ErrorAnswer {
            json: self.json(),
            page,
            ctx,
            form,
        });
        res
    }
}

/// A [`WebError`]'s answer in both formats, waiting for [`super::respond::answer_errors`] to pick one.
#[derive(Clone)]
pub struct ErrorAnswer {
    pub json: serde_json::Value,
    pub page: &'static str,
    pub ctx: minijinja::Value,
    /// The form whose page this is (its templates and its values are used), if any.
    pub form: Option<String>,
}

/// Displays an error with its causes: `outer: inner: innermost`. A cause that its error's own
/// message already spells out (`#[error("database error: {0}")]`) is not repeated.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        f.write_str(&shown)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !shown.contains(&text) {
                write!(f, ": {text}")?;
            }
            shown = text;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A storage failure, built only from `sqlx` (the store's own error type is being reshaped).
    fn database_down() -> ActionError {
        ActionError::from(crate::store::StoreError::from(sqlx::Error::PoolTimedOut))
    }

    /// `error.html` as it was when the titles and messages were written in Rust.
    const ERROR_PAGE_BEFORE: &str = r#"{% extends "pages/layout.html" %}
{% block title %}{{ title }} · {{ site_name }}{% endblock %}
{% block content %}
<h1>{{ title }}</h1>
<p>{{ message }}</p>
{% endblock %}
"#;

    #[test]
    fn error_pages_read_as_they_did_when_their_wording_was_in_rust() {
        let templates = crate::templates::Templates::load(None).unwrap();
        let mut before = minijinja::Environment::new();
        before
            .add_template("pages/layout.html", include_str!("../../ui/pages/layout.html"))
            .unwrap();
        before.add_template("pages/error.html", ERROR_PAGE_BEFORE).unwrap();
        let bad_json = serde_json::from_str::<serde_json::Value>("{not json").unwrap_err();
        let json_detail = bad_json.to_string();
        let bad_form = serde_urlencoded::from_str::<crate::domain::ContactForm>("email=a&email=b").unwrap_err();
        let form_detail = bad_form.to_string();
        let cases: Vec<(WebError, &str, String)> = vec![
            (
                ActionError::NotFound(crate::domain::MessageId(7)).into(),
                "Not found",
                "There is no such message.".into(),
            ),
            (
                ActionError::Conflict(crate::domain::MessageId(7)).into(),
                "Already handled",
                "message 7 was changed by someone else meanwhile; look again".into(),
            ),
            (
                ActionError::WrongCode { remaining: 2 }.into(),
                "Code not accepted",
                "that code is not right; 2 tries left".into(),
            ),
            (
                ActionError::TooManyMails(5).into(),
                "No more emails",
                "we've already sent 5 emails for this message; please use the newest one".into(),
            ),
            (
                database_down().into(),
                "Please try again",
                "We could not save that right now. Nothing was lost on your side: please try again in a minute."
                    .into(),
            ),
            (
                WebError::TooLarge,
                "We could not read that",
                "The submission is too large (at most 32 KiB).".into(),
            ),
            (
                WebError::TimedOut,
                "We could not read that",
                "The submission took too long to arrive; please send it again.".into(),
            ),
            (
                WebError::UnsupportedType,
                "We could not read that",
                "Send the form as application/x-www-form-urlencoded or application/json.".into(),
            ),
            (
                WebError::BadJson(bad_json),
                "We could not read that",
                format!("the JSON body could not be read: {json_detail}"),
            ),
            (
                WebError::BadForm(bad_form),
                "We could not read that",
                format!("the form data could not be read: {form_detail}"),
            ),
            (
                WebError::NotUtf8,
                "We could not read that",
                "the form data is not valid UTF-8".into(),
            ),
            (
                WebError::ForeignOrigin("https://evil.example/<x>".into()),
                "Not accepted from this site",
                "This form does not accept posts from https://evil.example/<x>. The site owner can add that origin to `allowed_origins`.".into(),
            ),
            (
                WebError::RateLimited { retry_after: 60 },
                "Please slow down",
                "Too many requests from your address. Please try again in 1 minute.".into(),
            ),
            (
                WebError::RateLimited { retry_after: 61 },
                "Please slow down",
                "Too many requests from your address. Please try again in 2 minutes.".into(),
            ),
        ];
        // The old page escaped `/` inside the message (`&#x2f;`); a browser shows both the same.
        let text = |html: String| html.replace("&#x2f;", "/");
        for (error, title, message) in cases {
            let (page, ctx) = error.page();
            assert_eq!(page, "error");
            let now = templates
                .render("pages/error.html", minijinja::context! { site_name => "S", ..ctx })
                .unwrap();
            let then = before
                .get_template("pages/error.html")
                .unwrap()
                .render(minijinja::context! { site_name => "S", title, message })
                .unwrap();
            assert_eq!(text(now), text(then), "{title}: {message}");
        }
    }

    #[test]
    fn a_site_owner_can_reword_an_error_page() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("pages")).unwrap();
        std::fs::write(
            dir.path().join("pages/error.html"),
            "{% if reason == 'rate_limited' %}Doucement : réessayez dans {{ minutes }} min.{% endif %}",
        )
        .unwrap();
        let templates = crate::templates::Templates::load(Some(dir.path())).unwrap();
        let (page, ctx) = WebError::RateLimited { retry_after: 90 }.page();
        let html = templates.render(&format!("pages/{page}.html"), ctx).unwrap();
        assert_eq!(html, "Doucement : réessayez dans 2 min.");
    }

    #[test]
    fn a_rate_limit_names_whole_minutes_rounded_up() {
        let message = |s| WebError::RateLimited { retry_after: s }.json()["error"].to_string();
        assert!(message(1).contains("in 1 minute."), "{}", message(1));
        assert!(message(60).contains("in 1 minute."));
        assert!(message(61).contains("in 2 minutes."));
    }

    #[test]
    fn a_cause_chain_names_each_cause_once() {
        let io = std::io::Error::other("disk on fire");
        let e = crate::templates::TemplateError::Read {
            path: "x".into(),
            source: io,
        };
        assert_eq!(Chain(&e).to_string(), "cannot read template override x: disk on fire");
    }

    #[test]
    fn a_database_failure_is_never_shown() {
        let e = WebError::from(database_down());
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.json(), json!({ "error": "temporarily unavailable; please retry" }));
        let (page, ctx) = e.page();
        assert_eq!(page, "error");
        assert!(ctx.get_attr("detail").is_ok_and(|d| d.is_undefined()));
    }
}
