//! What formgate counts, for Prometheus: one registry per process ([`metrics()`]), filled where
//! things happen (the web edge, the use-cases, the intake, the outbox lanes, the store's errors)
//! and served by `serve` on its own listener when `metrics_listen` is set (`endpoint`). Gauges
//! that need the database (the outbox's rows, the messages by status) are read at scrape time
//! and cached for a few seconds (`endpoint::Gauges`).
//!
//! Why `prometheus-client`: the Prometheus project's own Rust client, three small crates (it and
//! its derive macro, dtoa), typed label sets, no global recorder to install and no HTTP server of
//! its own; `metrics-exporter-prometheus` brings a recorder facade, a hyper server and quantile
//! sketches formgate does not need.
//!
//! Every label value is bounded: route templates (never paths: tokens live in paths), forms from
//! the configuration (an unknown slug is `(unknown)`), and words this module or its callers chose.

pub mod endpoint;

use std::sync::LazyLock;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubmissionLabels {
    pub form: String,
    pub outcome: SubmissionOutcome,
    /// Why it was caught, held or refused ("" when accepted).
    pub reason: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // the label values, as Prometheus shows them
pub enum SubmissionOutcome {
    /// Stored, verification mail queued.
    accepted,
    /// Caught by a bot filter: stored as spam, never mailed.
    spam,
    /// Stored, but its verification mail withheld (suppressed address, a mail cap).
    held,
    /// Not stored: the visitor got an error (the reason is the status code).
    refused,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunnelLabels {
    pub form: String,
    pub step: FunnelStep,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FunnelStep {
    submitted,
    link_opened,
    verified,
    released,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SendLabels {
    pub kind: &'static str,
    pub outcome: SendClass,
}

/// How one delivery attempt ended, in the classes an operator acts on differently.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SendClass {
    Delivered,
    /// The server answered with a 4xx code (SMTP: try later, retried; HTTP: refused, dead, but
    /// for 408 and 429).
    Reply4xx,
    /// The server answered with a 5xx code (SMTP: refused, dead; HTTP: retried).
    Reply5xx,
    /// Any other answer that is not a success (an HTTP redirect, which is never followed).
    OtherReply,
    /// Could not reach the server, or it broke off (retried).
    Connection,
    /// The server did not answer in time (retried).
    Timeout,
    /// Never sent: formgate could not make or sign it, or the receiver is not allowed.
    Unsendable,
}

impl SendClass {
    pub fn as_str(self) -> &'static str {
        match self {
            SendClass::Delivered => "delivered",
            SendClass::Reply4xx => "4xx",
            SendClass::Reply5xx => "5xx",
            SendClass::OtherReply => "other",
            SendClass::Connection => "connection",
            SendClass::Timeout => "timeout",
            SendClass::Unsendable => "unsendable",
        }
    }
}

impl EncodeLabelValue for SendClass {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub kind: &'static str,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BucketLabels {
    pub bucket: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Builds a histogram family's members with fixed buckets (a fn pointer: `Family` clones it).
#[derive(Clone)]
pub struct Buckets(fn() -> Histogram);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        (self.0)()
    }
}

/// 0.5 ms to 16 s: a page render at the low end, a stalled database at the top.
fn request_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// 2 ms to 65 s: a local relay at the low end, `smtp_timeout` and webhook timeouts at the top.
fn send_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.002, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Family<RouteLabels, Histogram, Buckets>,
    pub submissions: Family<SubmissionLabels, Counter>,
    pub intake_batch: Histogram,
    pub funnel: Family<FunnelLabels, Counter>,
    pub sends: Family<SendLabels, Counter>,
    pub send_duration: Family<KindLabels, Histogram, Buckets>,
    pub outbox: Family<StateLabels, Gauge>,
    pub outbox_oldest_due: Family<KindLabels, Gauge>,
    pub messages: Family<StatusLabels, Gauge>,
    pub rate_limited: Family<BucketLabels, Counter>,
    pub database_errors: Family<ErrorLabels, Counter>,
    pub ssh_logins: Family<OutcomeLabels, Counter>,
    pub ssh_sessions: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("formgate");
        let m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(Buckets(request_seconds)),
            submissions: Family::default(),
            intake_batch: Histogram::new(exponential_buckets(1.0, 2.0, 8)),
            funnel: Family::default(),
            sends: Family::default(),
            send_duration: Family::new_with_constructor(Buckets(send_seconds)),
            outbox: Family::default(),
            outbox_oldest_due: Family::default(),
            messages: Family::default(),
            rate_limited: Family::default(),
            database_errors: Family::default(),
            ssh_logins: Family::default(),
            ssh_sessions: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            m.requests.clone(),
        );
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by route template",
            Unit::Seconds,
            m.request_duration.clone(),
        );
        registry.register(
            "submissions",
            "Form posts by form and outcome: accepted, spam (reason: the filter), held (reason: why no mail), refused (reason: the status code)",
            m.submissions.clone(),
        );
        registry.register(
            "intake_batch_size",
            "Submissions stored per group-commit transaction",
            m.intake_batch.clone(),
        );
        registry.register(
            "funnel",
            "The verification funnel by form: submitted, link_opened, verified, released (by this process)",
            m.funnel.clone(),
        );
        registry.register(
            "sends",
            "Delivery attempts by kind (verify, release, confirmation, webhook) and outcome",
            m.sends.clone(),
        );
        registry.register_with_unit(
            "send_duration",
            "Time of one delivery attempt, by kind",
            Unit::Seconds,
            m.send_duration.clone(),
        );
        registry.register(
            "outbox_rows",
            "Outbox rows by kind and state: queued (all waiting), due (waiting and sendable now), leased (being sent), retrying (failed before, waiting), dead",
            m.outbox.clone(),
        );
        registry.register_with_unit(
            "outbox_oldest_due_age",
            "How long the longest-waiting sendable row has been due, by kind (0: none due)",
            Unit::Seconds,
            m.outbox_oldest_due.clone(),
        );
        registry.register("messages", "Messages by status", m.messages.clone());
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit, by bucket",
            m.rate_limited.clone(),
        );
        registry.register(
            "database_errors",
            "Errors from the database, by kind",
            m.database_errors.clone(),
        );
        registry.register(
            "ssh_logins",
            "SSH login attempts by outcome: accepted, refused (an unknown key, a password, …), throttled (an address over the failure limit)",
            m.ssh_logins.clone(),
        );
        registry.register(
            "ssh_sessions",
            "SSH session channels open now (dashboards and verbs)",
            m.ssh_sessions.clone(),
        );
        registry.register(
            "build",
            "The running formgate",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text format (OpenMetrics 1.0) of everything counted so far.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn funnel(&self, form: &str, step: FunnelStep) {
        self.funnel
            .get_or_create(&FunnelLabels {
                form: form.to_owned(),
                step,
            })
            .inc();
    }

    pub fn submission(&self, form: &str, outcome: SubmissionOutcome, reason: &str) {
        self.submissions
            .get_or_create(&SubmissionLabels {
                form: form.to_owned(),
                outcome,
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// One delivery attempt of `kind` that took `seconds`.
    pub fn send(&self, kind: &'static str, outcome: SendClass, seconds: f64) {
        self.sends.get_or_create(&SendLabels { kind, outcome }).inc();
        self.send_duration.get_or_create(&KindLabels { kind }).observe(seconds);
    }

    pub fn ssh_login(&self, outcome: &'static str) {
        self.ssh_logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn database_error(&self, e: &sqlx::Error) {
        let kind = match e {
            sqlx::Error::PoolTimedOut => "pool_timeout",
            sqlx::Error::PoolClosed => "pool_closed",
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => "connection",
            sqlx::Error::Database(db) if db.kind() != sqlx::error::ErrorKind::Other => "constraint",
            sqlx::Error::Database(_) => "database",
            sqlx::Error::RowNotFound
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => "decode",
            _ => "other",
        };
        self.database_errors.get_or_create(&ErrorLabels { kind }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_named_and_described_once() {
        let m = Metrics::new();
        m.funnel("contact", FunnelStep::verified);
        m.send("verify", SendClass::Reply4xx, 0.01);
        let text = m.encode();
        assert!(text.contains("# TYPE formgate_funnel counter"), "{text}");
        assert!(
            text.contains("formgate_funnel_total{form=\"contact\",step=\"verified\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("formgate_sends_total{kind=\"verify\",outcome=\"4xx\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("formgate_build_info{version=\"") || text.contains("formgate_build_info{version="),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
