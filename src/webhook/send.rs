//! How a webhook delivery leaves: an HTTP POST of the queued body, signed per the Standard
//! Webhooks specification v1, to an address that is not inside the network formgate runs in.
//!
//! The outcome follows the specification's advice: `2xx` delivered; `410 Gone` dead at once;
//! another `4xx` (but `408`, `429`) dead at once, since sending the same bytes again will get the
//! same answer; `3xx` (never followed: a redirect could point inside), `408`, `429`, `5xx`,
//! timeouts and connection errors retried on [`RETRY_SCHEDULE`], never sooner than `Retry-After`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Webhook, WebhookSecret, WebhookSettings};
use crate::forms::Catalog;
use crate::mail::queue::{MailBody, OutboxItem, SendOutcome};
use crate::metrics::SendClass;

/// Seconds before the n-th retry (after the n-th failure): the Standard Webhooks schedule after
/// the first, immediate attempt; every 10 hours after the last, until the delivery's lifetime.
pub const RETRY_SCHEDULE: [i64; 6] = [5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600];

/// The longest `Retry-After` believed: a receiver asking for more is retried after a day.
const MAX_RETRY_AFTER: i64 = 86_400;

/// How much of a failing answer is kept as the delivery's last error.
const ERROR_BODY_BYTES: usize = 1024;

/// Seconds to wait after the `failures`-th failed attempt.
pub fn retry_delay(failures: i64) -> i64 {
    let i = usize::try_from(failures.max(1) - 1).unwrap_or(usize::MAX);
    RETRY_SCHEDULE.get(i).copied().unwrap_or(10 * 3600)
}

/// Sends webhook deliveries; one for the whole process, shared by the webhook worker's lanes.
pub struct WebhookSender {
    forms: Arc<Catalog>,
    settings: WebhookSettings,
    client: reqwest::Client,
}

impl WebhookSender {
    /// Checks every configured webhook's address (a host inside the network stops `serve` here,
    /// unless `webhook_allow_private`) and builds the one HTTP client they share.
    pub async fn new(forms: Arc<Catalog>, settings: WebhookSettings) -> anyhow::Result<WebhookSender> {
        check_addresses(forms.iter().map(|e| &e.form), settings.allow_private).await?;
        let client = reqwest::Client::builder()
            // A redirect could lead anywhere, the network inside included: a 3xx is a failure.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would do the resolving, and so the guard's job: connect directly.
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .dns_resolver(Arc::new(Guarded {
                allow_private: settings.allow_private,
            }))
            .user_agent(concat!("formgate/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .build()?;
        Ok(WebhookSender {
            forms,
            settings,
            client,
        })
    }

    /// One attempt at delivering `item` (a `webhook` outbox row), and how it ended.
    #[tracing::instrument(level = "debug", name = "send_webhook", skip_all, fields(outbox = item.id, attempt = item.attempts + 1))]
    pub async fn deliver(&self, item: &OutboxItem, now: i64) -> (SendClass, SendOutcome) {
        let MailBody::Rendered(body) = &item.body else {
            let error = "a webhook row without a body".into();
            return (SendClass::Unsendable, SendOutcome::Dead { error });
        };
        let Some(webhook) = self.webhook_of(item) else {
            return (
                SendClass::Unsendable,
                SendOutcome::Dead {
                    error: format!(
                        "form `{}` no longer lists the webhook {}; nothing to sign it with",
                        item.sender,
                        crate::mail::destination::shown_recipient(item.kind, &item.recipient)
                    ),
                },
            );
        };
        match self.post(webhook, &item.message_id_header, body, now).await {
            Answer::Delivered => (SendClass::Delivered, SendOutcome::Sent),
            Answer::Dead(class, error) => (class, SendOutcome::Dead { error }),
            Answer::Again {
                class,
                error,
                retry_after,
            } => {
                let failures = item.attempts + 1;
                let delay = retry_delay(failures).max(retry_after.unwrap_or(0).min(MAX_RETRY_AFTER));
                let at = now + delay;
                let outcome = if at > item.give_up_at {
                    SendOutcome::Dead {
                        error: format!("gave up after {failures} attempts; last error: {error}"),
                    }
                } else {
                    SendOutcome::Retry { at, error }
                };
                (class, outcome)
            }
        }
    }

    /// The configured webhook this row was queued for (its form's, by URL), with the secrets it
    /// is signed with now: a rotated secret signs the retries of older deliveries too.
    fn webhook_of(&self, item: &OutboxItem) -> Option<&Webhook> {
        let entry = self.forms.get(&item.sender)?;
        entry.webhooks.iter().find(|w| w.url.as_str() == item.recipient)
    }

    async fn post(&self, webhook: &Webhook, id: &str, body: &[u8], now: i64) -> Answer {
        if let Err(refusal) = guard(&webhook.url, self.settings.allow_private).await {
            return match refusal {
                Refusal::Internal(why) => Answer::Dead(
                    SendClass::Unsendable,
                    format!(
                        "{} {why}; refused (set `webhook_allow_private = true` for an intranet receiver)",
                        super::shown_url(&webhook.url)
                    ),
                ),
                Refusal::Unresolved(why) => Answer::Again {
                    class: SendClass::Connection,
                    error: why,
                    retry_after: None,
                },
            };
        }
        let mut request = self
            .client
            .post(webhook.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .body(body.to_vec());
        if !webhook.secrets.is_empty() {
            request = request.header("webhook-signature", signature(&webhook.secrets, id, now, body));
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer::Again {
                    class: if e.is_timeout() {
                        SendClass::Timeout
                    } else {
                        SendClass::Connection
                    },
                    error: describe(&e),
                    retry_after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Delivered;
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after_seconds(v, now));
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| clean(l.as_bytes(), 200));
        let head = first_bytes(response).await;
        let mut error = format!("HTTP {status}");
        if let Some(location) = location.filter(|_| status.is_redirection()) {
            error.push_str(&format!(
                " (a redirect to {location}, not followed: fix the webhook's url)"
            ));
        }
        if !head.is_empty() {
            error.push_str(": ");
            error.push_str(&head);
        }
        let class = match status.as_u16() {
            400..=499 => SendClass::Reply4xx,
            500..=599 => SendClass::Reply5xx,
            _ => SendClass::OtherReply,
        };
        match status.as_u16() {
            410 => Answer::Dead(class, format!("{error} — the receiver says it is gone for good")),
            408 | 429 => Answer::Again {
                class,
                error,
                retry_after,
            },
            400..=499 => Answer::Dead(
                class,
                format!("{error} — the receiver refused it; it would refuse it again"),
            ),
            _ => Answer::Again {
                class,
                error,
                retry_after,
            },
        }
    }
}

/// The check `serve` and `check-config` make at start: a webhook whose host is, or resolves to,
/// an internal address is an error (unless `allow_private`); one that does not resolve now is a
/// warning, since DNS may be down at start and every attempt checks again.
pub async fn check_addresses<'a>(
    forms: impl Iterator<Item = &'a crate::forms::Form>,
    allow_private: bool,
) -> anyhow::Result<()> {
    if allow_private {
        return Ok(());
    }
    for form in forms {
        for w in &form.webhooks {
            match guard(&w.url, false).await {
                Ok(()) => {}
                Err(Refusal::Internal(why)) => anyhow::bail!(
                    "form `{}`: webhook {} {why}; formgate does not post inside its own network \
                     unless `webhook_allow_private = true`",
                    form.slug,
                    super::shown_url(&w.url)
                ),
                Err(Refusal::Unresolved(why)) => tracing::warn!(
                    form = %form.slug, url = %super::shown_url(&w.url), %why,
                    "a webhook's host does not resolve now; its deliveries will retry"
                ),
            }
        }
    }
    Ok(())
}

/// How a post ended: what to do next, and the class the metrics count it in.
enum Answer {
    Delivered,
    Again {
        class: SendClass,
        error: String,
        retry_after: Option<i64>,
    },
    Dead(SendClass, String),
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret, space-separated.
pub fn signature(secrets: &[WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            // HMAC takes a key of any length.
            #[allow(clippy::expect_used)]
            let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC accepts any key length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Retry-After` as seconds from `now`: delta-seconds or an HTTP date.
fn retry_after_seconds(value: &str, now: i64) -> Option<i64> {
    if let Ok(secs) = value.trim().parse::<i64>() {
        return Some(secs.max(0));
    }
    let when = httpdate::parse_http_date(value.trim()).ok()?;
    let unix = i64::try_from(when.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs()).ok()?;
    Some((unix - now).max(0))
}

/// The first KiB of a failing answer, as one line of text.
async fn first_bytes(mut response: reqwest::Response) -> String {
    let mut head: Vec<u8> = Vec::new();
    while head.len() < ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            _ => break,
        }
    }
    clean(&head, ERROR_BODY_BYTES)
}

/// At most `max` bytes of `bytes` as text with every control character a space: a receiver's
/// answer lands in logs and the moderators' terminals.
fn clean(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    line.trim().to_string()
}

/// A send error without the URL reqwest puts in it (we name the destination elsewhere) and with
/// its causes, which say what actually went wrong.
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let cause = s.to_string();
        // hyper's wrapper ("client error (Connect)") says nothing the first word does not.
        if !cause.starts_with("client error") {
            causes.push(cause);
        }
        source = s.source();
    }
    clean(format!("{what}: {}", causes.join(": ")).as_bytes(), ERROR_BODY_BYTES)
}

enum Refusal {
    /// The host is, or resolves to, an address inside the network.
    Internal(String),
    /// The host does not resolve (now).
    Unresolved(String),
}

/// Whether `url` may be posted to: its host, and every address its name resolves to, outside
/// loopback, private, link-local, multicast and unspecified ranges. The client's resolver checks
/// again on connect (the addresses it connects to are the ones it checked, so a name that
/// changes its answer between the two cannot slip through).
async fn guard(url: &url::Url, allow_private: bool) -> Result<(), Refusal> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check(IpAddr::V4(ip), allow_private),
        Some(url::Host::Ipv6(ip)) => check(IpAddr::V6(ip), allow_private),
        Some(url::Host::Domain(name)) => resolve(name, allow_private).await.map(|_| ()),
        None => Err(Refusal::Internal("has no host".into())),
    }
}

fn check(ip: IpAddr, allow_private: bool) -> Result<(), Refusal> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(Refusal::Internal(format!("is {ip}, an internal address")))
    }
}

async fn resolve(name: &str, allow_private: bool) -> Result<Vec<SocketAddr>, Refusal> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
        .await
        .map_err(|e| Refusal::Unresolved(format!("cannot resolve {name}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Refusal::Unresolved(format!("{name} has no address")));
    }
    if let Some(inside) = addrs.iter().find(|a| !allow_private && !is_public(a.ip())) {
        return Err(Refusal::Internal(format!(
            "resolves to {}, an internal address",
            inside.ip()
        )));
    }
    Ok(addrs)
}

/// The resolver the client connects through: the guard's resolution, so what is connected to is
/// what was checked.
struct Guarded {
    allow_private: bool,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            match resolve(name.as_str(), allow_private).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(Refusal::Internal(why) | Refusal::Unresolved(why)) => Err(
                    Box::<dyn std::error::Error + Send + Sync>::from(format!("{name:?} {why}")),
                ),
            }
        })
    }
}

/// An address on the internet at large: not loopback, private (RFC 1918, unique-local), shared
/// (CGNAT), link-local, multicast, broadcast, unspecified or "this network".
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_the_specifications() {
        let delays: Vec<i64> = (1..=8).map(retry_delay).collect();
        assert_eq!(delays, [5, 300, 1800, 7200, 18000, 36000, 36000, 36000]);
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// What the sender checks before every attempt: a name resolving inside (here `localhost`,
    /// from /etc/hosts, no network needed) or an internal literal is refused; with
    /// `webhook_allow_private` both pass.
    #[tokio::test]
    async fn every_attempt_is_guarded_against_internal_addresses() {
        for url in [
            "http://localhost:9/h",
            "http://127.0.0.1/h",
            "http://[::ffff:10.0.0.1]/h",
            "http://[fe80::1]/h",
        ] {
            let url = url::Url::parse(url).unwrap();
            assert!(matches!(guard(&url, false).await, Err(Refusal::Internal(_))), "{url}");
            assert!(guard(&url, true).await.is_ok(), "{url}");
        }
        let public = url::Url::parse("http://93.184.216.34/h").unwrap();
        assert!(guard(&public, false).await.is_ok());
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(retry_after_seconds("7", 1000), Some(7));
        assert_eq!(retry_after_seconds("Thu, 01 Jan 1970 00:20:00 GMT", 1000), Some(200));
        assert_eq!(retry_after_seconds("soon", 1000), None);
    }

    #[test]
    fn the_signature_is_hmac_of_id_timestamp_body() {
        // The example from the Standard Webhooks specification.
        let secret = WebhookSecret(STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
        let sig = signature(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
