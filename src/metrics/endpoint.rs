//! `GET /metrics` on `metrics_listen`: a listener of its own, never the public one (the series
//! say how busy the site is and which forms exist; a reverse proxy in front of `listen` must not
//! be able to expose them by accident). The gauges that need the database are read here, at
//! most once per [`GAUGE_MAX_AGE`] whoever scrapes, so a scrape every second costs two indexed
//! queries every few seconds and nothing in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Mutex;

use super::{KindLabels, StateLabels, StatusLabels, metrics};
use crate::clock::SharedClock;
use crate::domain::Status;
use crate::mail::queue::MailKind;
use crate::store::SharedStore;

/// How long a database-backed gauge is shown before it is read again.
pub const GAUGE_MAX_AGE: Duration = Duration::from_secs(5);

/// The gauges read from the database, and when they last were.
pub struct Gauges {
    store: SharedStore,
    clock: SharedClock,
    /// None: never read. Held across the read, so concurrent scrapes share one.
    read_at: Mutex<Option<Instant>>,
}

impl Gauges {
    pub fn new(store: SharedStore, clock: SharedClock) -> Arc<Gauges> {
        Arc::new(Gauges {
            store,
            clock,
            read_at: Mutex::new(None),
        })
    }

    /// Reads the database if the gauges are older than [`GAUGE_MAX_AGE`]. A failed read keeps
    /// the last values (and counts in `formgate_database_errors_total`); the next scrape after
    /// the wait tries again.
    pub async fn refresh(&self) {
        let mut read_at = self.read_at.lock().await;
        if read_at.is_some_and(|t| t.elapsed() < GAUGE_MAX_AGE) {
            return;
        }
        *read_at = Some(Instant::now());
        let now = self.clock.now();
        let m = metrics();
        match self.store.outbox_gauges(now).await {
            Ok(rows) => {
                for kind in MailKind::ALL {
                    let row = rows.iter().find(|r| r.kind == kind);
                    let value = |f: fn(&crate::store::OutboxGauge) -> i64| row.map_or(0, f);
                    let kind = kind.as_str();
                    for (state, n) in [
                        ("queued", value(|r| r.queued)),
                        ("due", value(|r| r.due)),
                        ("leased", value(|r| r.leased)),
                        ("retrying", value(|r| r.retrying)),
                        ("dead", value(|r| r.dead)),
                    ] {
                        m.outbox.get_or_create(&StateLabels { kind, state }).set(n);
                    }
                    let age = row.and_then(|r| r.oldest_due).map_or(0, |due| (now - due).max(0));
                    m.outbox_oldest_due.get_or_create(&KindLabels { kind }).set(age);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the outbox's gauges"),
        }
        match self.store.counts().await {
            Ok(counts) => {
                for status in Status::ALL {
                    let n = counts.iter().find(|(s, _)| *s == status).map_or(0, |(_, n)| *n);
                    m.messages
                        .get_or_create(&StatusLabels {
                            status: status.as_str(),
                        })
                        .set(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot count messages"),
        }
    }
}

pub fn router(gauges: Arc<Gauges>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(gauges)
}

async fn scrape(State(gauges): State<Arc<Gauges>>) -> Response {
    gauges.refresh().await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics().encode(),
    )
        .into_response()
}
