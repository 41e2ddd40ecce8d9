//! The HTTP face for visitors. Handlers are thin: extract the request (`extract`), call
//! `actions`, pick a page; a failure is a [`WebError`] (`error`). One router per concern, each
//! with the edge's guard attached to the posts it protects (`edge`), merged here with the layers
//! every response passes: error bodies, security headers, the request log.

pub mod edge;
mod error;
mod extract;
mod forms;
mod health;
mod respond;
pub mod serve;
mod verify;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use tracing::Instrument;

use crate::actions::UseCases;
use crate::templates::Templates;

pub use error::WebError;
pub use extract::{Format, Submission};

/// The largest request body accepted anywhere (contact form included).
pub const MAX_BODY: usize = 32 * 1024;

#[derive(Clone)]
pub struct WebState {
    pub actions: Arc<UseCases>,
    pub templates: Arc<Templates>,
    pub site_name: Arc<str>,
    /// Client address, origin checks and rate limits (see `edge`).
    pub edge: Arc<edge::Edge>,
    /// Set when shutdown begins: `/readyz` answers `stopping` while requests drain.
    pub stopping: Arc<AtomicBool>,
}

impl WebState {
    /// Runs a use-case to its end even if the visitor disconnects. axum drops a handler's future
    /// when its connection closes; a write cancelled half-way (sqlx 0.8's `begin` on PostgreSQL is
    /// not cancel-safe) can strand a pooled connection inside an open transaction, whose locks
    /// then block the outbox and a clean shutdown. A spawned task is not cancelled with the
    /// request, and the visitor's write completes (or fails) as a whole.
    pub async fn run_to_completion<T, Fut>(&self, work: impl FnOnce(Arc<UseCases>) -> Fut) -> T
    where
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        // In the request's span, so the use-case's log lines carry its request id.
        match tokio::spawn(work(self.actions.clone()).in_current_span()).await {
            Ok(out) => out,
            // Nothing aborts these tasks, so the only failure is a panic: let it propagate as if
            // it had happened in the handler.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

pub fn router(state: WebState) -> Router {
    let csp = Arc::new(content_security_policy(state.actions.forms()));
    Router::new()
        .merge(forms::router(&state))
        .merge(verify::router(&state))
        .merge(health::router())
        .layer(middleware::from_fn_with_state(state.clone(), respond::answer_errors))
        .layer(middleware::from_fn_with_state(csp, security_headers))
        .layer(middleware::from_fn_with_state(state.edge.clone(), log_request))
        .with_state(state)
}

/// Our own stylesheet only, and forms posting back to us. A form with a `thank_you_url` on
/// another site adds that origin to `form-action`: browsers hold the redirect after a confirming
/// post to it too.
fn content_security_policy(forms: &crate::forms::Catalog) -> HeaderValue {
    let mut targets: Vec<String> = forms
        .iter()
        .filter_map(|f| f.thank_you_url.as_deref().and_then(crate::config::Origin::of))
        .collect();
    targets.sort();
    targets.dedup();
    let extra: String = targets.iter().map(|o| format!(" {o}")).collect();
    let csp = CSP_OWN_ONLY.replacen("form-action 'self'", &format!("form-action 'self'{extra}"), 1);
    // Origins are ASCII serialisations (`https://host:port`): always a valid header value.
    HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(CSP_OWN_ONLY))
}

const CSP_OWN_ONLY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Sent with every response. `same-origin`: no other site ever gets a Referer (tokens in page URLs
/// stay ours), while our own forms' posts carry their real `Origin` — under `no-referrer` a browser
/// sends `Origin: null` with a form's POST, which the edge refuses (found by the browser tests:
/// no form on formgate's own pages could be sent from Chromium).
async fn security_headers(State(csp): State<Arc<HeaderValue>>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    h.insert(header::CONTENT_SECURITY_POLICY, (*csp).clone());
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// Logs the route *template* (`/verify/{token}`), never the URI: tokens must not reach logs. The
/// handler's own span (and every event inside it) sits inside this request's span, which carries
/// the request's id; the answer carries it too (`X-Request-Id`), so a visitor's or a proxy's
/// report can be matched with our lines.
async fn log_request(State(edge): State<Arc<edge::Edge>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "(unmatched)".into());
    let method = req.method().clone();
    let id = request_id(&req, &edge);
    let span = tracing::info_span!("request", %method, route, request_id = %id);
    let started = Instant::now();
    let mut res = next.run(req).instrument(span).await;
    let elapsed = started.elapsed();
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let status = res.status().as_u16();
    tracing::debug!(%method, route, request_id = %id, status, micros, "request");
    count_request(route, &method, status, elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    res
}

/// `formgate_http_requests_total` and its latency histogram. A method outside the standard ones
/// is counted as `other`: clients choose methods, and each new word would be a new series.
fn count_request(route: String, method: &axum::http::Method, status: u16, seconds: f64) {
    use axum::http::Method;
    let method = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    };
    let m = crate::metrics::metrics();
    m.request_duration
        .get_or_create(&crate::metrics::RouteLabels { route: route.clone() })
        .observe(seconds);
    m.requests
        .get_or_create(&crate::metrics::RequestLabels { route, method, status })
        .inc();
}

const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// A trusted proxy's `X-Request-Id`, so one id follows the request through the proxy's log and
/// ours; anyone else's is ignored (it would let a client forge lines into another request's
/// story). Kept only if it is 1–128 characters of letters, digits and `._:-`, so it can neither
/// break a log line nor a header. Otherwise a new one: 16 hex digits, a random half chosen once
/// per process (so ids stay apart across instances and restarts) and a counter: nothing to draw
/// or format byte by byte on every request.
fn request_id(req: &Request, edge: &edge::Edge) -> String {
    let from_proxy = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .is_some_and(|peer| edge.trusts(peer.0.ip()));
    let given = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok());
    match given {
        Some(id)
            if from_proxy
                && (1..=128).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)) =>
        {
            id.to_string()
        }
        _ => {
            static PROCESS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
            static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let process = *PROCESS.get_or_init(|| u32::from_be_bytes(crate::token::random_bytes::<4>()));
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("{process:08x}{n:08x}")
        }
    }
}
