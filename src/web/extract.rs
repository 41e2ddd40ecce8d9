//! What a handler takes from a request, read once and under the edge's rules: the answer format
//! the client wants ([`Format`]) and a posted body in either encoding ([`Submission`]).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use super::error::WebError;
use super::{MAX_BODY, WebState};
use crate::forms::Posted;

/// How the client wants its answer: JSON when it sends JSON or asks for it, a page otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
}

impl Format {
    pub fn of(headers: &HeaderMap) -> Self {
        let has = |name, needle: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains(needle))
        };
        if has(header::CONTENT_TYPE, "application/json") || has(header::ACCEPT, "application/json") {
            Format::Json
        } else {
            Format::Html
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Format::of(&parts.headers))
    }
}

/// A posted body, form-encoded or JSON, decoded into `T`. At most [`MAX_BODY`] bytes (a declared
/// length is refused before a byte is read; a chunked body is cut off there), and the whole body
/// within `body_timeout`. Form data must be valid UTF-8, and a field given twice is refused
/// (serde's duplicate-field check), never silently first- or last-wins.
pub struct Submission<T>(pub T);

impl<T: DeserializeOwned> FromRequest<WebState> for Submission<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, WebError> {
        let (parts, body) = req.into_parts();
        read_body(&parts.headers, body, state.edge.body_timeout)
            .await
            .map(Submission)
    }
}

/// A post to a form: every field, in order, in either encoding (see [`Posted`]); read under the
/// same rules as [`Submission`].
pub struct PostedForm(pub Posted);

impl FromRequest<WebState> for PostedForm {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, WebError> {
        let (parts, body) = req.into_parts();
        let (bytes, json) = read_bytes(&parts.headers, body, state.edge.body_timeout).await?;
        if json {
            Posted::from_json(&bytes).map(PostedForm).map_err(WebError::BadFields)
        } else {
            strict_utf8_form(&bytes)?;
            Ok(PostedForm(Posted::from_form(&bytes)))
        }
    }
}

async fn read_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    timeout: std::time::Duration,
) -> Result<T, WebError> {
    let (bytes, json) = read_bytes(headers, body, timeout).await?;
    if json {
        serde_json::from_slice(&bytes).map_err(WebError::BadJson)
    } else {
        strict_utf8_form(&bytes)?;
        serde_urlencoded::from_bytes(&bytes).map_err(WebError::BadForm)
    }
}

/// The body's bytes, and whether they are JSON (else form-encoded).
async fn read_bytes(
    headers: &HeaderMap,
    body: Body,
    timeout: std::time::Duration,
) -> Result<(axum::body::Bytes, bool), WebError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| usize::try_from(n).map_or(true, |n| n > MAX_BODY)) {
        return Err(WebError::TooLarge);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mime = content_type.split(';').next().unwrap_or("").trim();
    let json = match mime {
        "application/json" => true,
        "application/x-www-form-urlencoded" => false,
        _ => return Err(WebError::UnsupportedType),
    };
    // The timeout cuts off a client that trickles bytes to hold a connection open.
    let bytes = tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY))
        .await
        .map_err(|_| WebError::TimedOut)?
        .map_err(|_| WebError::TooLarge)?;
    Ok((bytes, json))
}

/// `serde_urlencoded` replaces invalid UTF-8 with U+FFFD; a visitor's text silently changed is
/// worse than a clear error, so decode every key and value strictly first.
fn strict_utf8_form(bytes: &[u8]) -> Result<(), WebError> {
    for pair in bytes.split(|b| *b == b'&') {
        for part in pair.splitn(2, |b| *b == b'=') {
            percent_encoding::percent_decode(part)
                .decode_utf8()
                .map_err(|_| WebError::NotUtf8)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn json_is_wanted_when_sent_or_asked_for() {
        assert_eq!(Format::of(&HeaderMap::new()), Format::Html);
        assert_eq!(
            Format::of(&headers(&[(header::CONTENT_TYPE, "Application/JSON; charset=utf-8")])),
            Format::Json
        );
        assert_eq!(
            Format::of(&headers(&[(header::ACCEPT, "text/html, application/json")])),
            Format::Json
        );
        assert_eq!(
            Format::of(&headers(&[(header::CONTENT_TYPE, "application/x-www-form-urlencoded")])),
            Format::Html
        );
    }

    #[test]
    fn form_data_must_be_valid_utf8() {
        assert!(strict_utf8_form(b"name=%C3%89lodie&message=hi").is_ok());
        assert!(matches!(strict_utf8_form(b"message=%FF%FE"), Err(WebError::NotUtf8)));
        assert!(matches!(strict_utf8_form(b"%FF=x"), Err(WebError::NotUtf8)));
    }
}
