//! The web edge, before any handler runs: who the client is (believing forwarding headers only
//! from trusted proxies), where a browser post comes from (Origin allowlist and CORS), and how often
//! one client may post (fixed-window counters in the database, so every instance shares them).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::error::{Chain, WebError};
use crate::config::{Config, IpNet, Origin, RateLimit};
use crate::forms::Catalog;

/// The client's address as formgate believes it; set by [`guard`] on the routes it guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// What the edge needs from the configuration, resolved once at start.
pub struct Edge {
    trusted_proxies: Vec<IpNet>,
    /// Cross-origin sites allowed to post, as ASCII origins (`https://www.example.org`), per form.
    origins: FormOrigins,
    /// The origin of `public_url`: formgate's own pages.
    own_origin: Option<String>,
    contact: Option<RateLimit>,
    verify: Option<RateLimit>,
    pub body_timeout: Duration,
    last_prune: AtomicI64,
}

/// Which other sites may post where: a form's post takes its form's `allowed_origins`; a post
/// that names no form (a typed code, a resend, a confirmation) takes any form's, since the
/// visitor's page may be any of them.
struct FormOrigins {
    forms: Arc<Catalog>,
    /// Every form's, together.
    any: Vec<String>,
}

impl FormOrigins {
    fn for_request(&self, route: &str, path: &str) -> &[String] {
        match route {
            "/contact" => &self.forms.default_entry().allowed_origins,
            "/f/{form}" => path
                .strip_prefix("/f/")
                .and_then(|slug| self.forms.get(slug))
                .map_or(&[][..], |f| f.allowed_origins.as_slice()),
            _ => &self.any,
        }
    }
}

/// How often stale counters are deleted (by whichever request comes first after that).
const PRUNE_EVERY: i64 = 600;
/// How long a browser may cache a CORS preflight answer.
const PREFLIGHT_MAX_AGE: &str = "600";

impl Edge {
    pub fn new(config: &Config, forms: &Arc<Catalog>, public_url: &str) -> Self {
        let mut any: Vec<String> = forms.iter().flat_map(|f| f.allowed_origins.clone()).collect();
        any.sort();
        any.dedup();
        Self {
            trusted_proxies: config.trusted_proxies.clone(),
            origins: FormOrigins {
                forms: forms.clone(),
                any,
            },
            own_origin: Origin::of(public_url),
            contact: config.rate_limit_contact,
            verify: config.rate_limit_verify,
            body_timeout: config.body_timeout,
            last_prune: AtomicI64::new(0),
        }
    }
}

impl Edge {
    /// Whether `peer` is one of `trusted_proxies`, whose forwarding headers are believed.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|n| n.contains(peer))
    }
}

/// The client behind the TCP peer `peer`. Forwarding headers are believed only when the peer is
/// a trusted proxy; then the hops are walked from the right (the one the nearest proxy appended)
/// past every trusted proxy, and the first untrusted hop is the client. `X-Forwarded-For` wins
/// over `Forwarded` when both are present.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let mut hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if hops.is_empty() {
        hops = headers
            .get_all(header::FORWARDED)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| v.trim().trim_matches('"'))
                })
            })
            .collect();
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An unreadable hop (`unknown`, an obfuscated name) ends the walk at the last address
        // we could read: everything left of it is the client's own say-so.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<Ipv6Addr>().ok())
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The key a client is counted under: its IPv4 address, or its IPv6 /64 (one household or
/// server typically holds a whole /64, so per-address counting would be no limit at all).
pub fn limit_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{net}/64")
        }
    }
}

/// Is `origin` the page's own site? Either `public_url`'s origin or the origin of the `Host` the
/// browser addressed (which a cross-site page cannot make equal to its own origin).
fn same_origin(origin: &str, own: Option<&str>, host: Option<&str>) -> bool {
    if own == Some(origin) {
        return true;
    }
    let (Ok(u), Some(host)) = (url::Url::parse(origin), host) else {
        return false;
    };
    let Some(name) = u.host_str() else { return false };
    let host = host.to_ascii_lowercase();
    let explicit = match u.port() {
        Some(p) => format!("{name}:{p}"),
        None => name.to_string(),
    };
    let with_default = u.port_or_known_default().map(|p| format!("{name}:{p}"));
    host == explicit || Some(host) == with_default
}

/// A per-client budget, counted in the database under its name: posts that send mail (`contact`)
/// and attempts to confirm a message (`verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Contact,
    Verify,
}

impl Bucket {
    /// The bucket's key in the `rate_limits` table (shared by every instance: never rename).
    fn name(self) -> &'static str {
        match self {
            Bucket::Contact => "contact",
            Bucket::Verify => "verify",
        }
    }
}

/// What [`guard`] does on the routes it is attached to (with `route_layer`): which budget their
/// posts count against, and whether a cross-origin page may ask first (a CORS preflight).
#[derive(Clone)]
pub struct Guard {
    state: WebState,
    bucket: Bucket,
    preflight: bool,
}

impl Guard {
    /// Posts that an allowed site's pages may send (its own copy of the form): preflights answered.
    pub fn new(state: &WebState, bucket: Bucket) -> Self {
        Self {
            state: state.clone(),
            bucket,
            preflight: true,
        }
    }

    /// Posts only formgate's own pages send: a preflight gets the router's 405.
    pub fn without_preflight(self) -> Self {
        Self {
            preflight: false,
            ..self
        }
    }
}

/// The edge for the posts that change something (and their CORS preflights): who the client is,
/// where a browser post comes from, and the client's budget. Other methods pass untouched.
pub async fn guard(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if !(method == Method::POST || method == Method::OPTIONS) {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let state = &guard.state;
    let edge = &state.edge;
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let ip = peer.map(|p| client_ip(p, req.headers(), &edge.trusted_proxies));
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
    }

    // Browsers say where a post comes from; scripts and curl send no Origin and are let through.
    let mut cors_origin: Option<HeaderValue> = None;
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let text = origin.to_str().unwrap_or("");
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
        if same_origin(text, edge.own_origin.as_deref(), host) {
            // Our own pages: no CORS needed.
        } else if Origin::of(text).is_some_and(|o| edge.origins.for_request(&route, req.uri().path()).contains(&o)) {
            cors_origin = Some(origin.clone());
        } else {
            tracing::info!(route, origin = text, "post from a site not in allowed_origins refused");
            return with_vary(WebError::ForeignOrigin(text.to_owned()).into_response());
        }
    }

    if method == Method::OPTIONS {
        return match cors_origin {
            Some(origin) if guard.preflight => preflight(origin),
            // No cross-origin caller to answer: the router's own 405.
            _ => with_vary(next.run(req).await),
        };
    }

    let limit = match guard.bucket {
        Bucket::Contact => edge.contact,
        Bucket::Verify => edge.verify,
    };
    if let (Some(limit), Some(ip)) = (limit, ip)
        && let Some(retry_after) = over_limit(state, guard.bucket, limit, ip).await
    {
        tracing::info!(route, bucket = guard.bucket.name(), key = limit_key(ip), "rate limited");
        crate::metrics::metrics()
            .rate_limited
            .get_or_create(&crate::metrics::BucketLabels {
                bucket: guard.bucket.name(),
            })
            .inc();
        let res = WebError::RateLimited { retry_after }.into_response();
        return with_cors(with_vary(res), cors_origin);
    }

    with_cors(with_vary(next.run(req).await), cors_origin)
}

/// Counts this request; Some(seconds until the window ends) when it is one too many. A database
/// failure lets the request through (the handler will meet the same database and answer 503).
async fn over_limit(state: &WebState, bucket: Bucket, limit: RateLimit, ip: IpAddr) -> Option<i64> {
    let now = state.actions.now();
    let window_start = now - now.rem_euclid(limit.window_secs);
    let window_end = window_start + limit.window_secs;
    let store = state.actions.store();
    let edge = &state.edge;
    let last = edge.last_prune.load(Ordering::Relaxed);
    if now - last >= PRUNE_EVERY
        && edge
            .last_prune
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        && let Err(e) = store.prune_rate_limits(now).await
    {
        tracing::warn!(error = %Chain(&e), "pruning rate-limit windows failed");
    }
    let bucket = bucket.name();
    match store
        .count_request(bucket, &limit_key(ip), window_start, window_end)
        .await
    {
        Ok(count) if count > limit.max => Some((window_end - now).max(1)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %Chain(&e), bucket, "rate limit not checked: the database did not answer");
            None
        }
    }
}

fn preflight(origin: HeaderValue) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE),
    );
    with_vary(res)
}

/// Answers on these routes depend on the Origin: caches must not mix them.
fn with_vary(mut res: Response) -> Response {
    res.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    res
}

fn with_cors(mut res: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(origin) = origin {
        res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| IpNet::parse(s).unwrap()).collect()
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn cidr_blocks() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.9.9.9".parse().unwrap()), "IPv4-mapped");
        let v6 = IpNet::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(IpNet::parse("::1").unwrap().contains("::1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::/129"] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &xff("1.2.3.4"), &[]), peer, "no proxies trusted");
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(proxy, &xff("1.2.3.4"), &trusted).to_string(), "1.2.3.4");
        // A client's own (spoofed) entry sits left of the address the proxy appended.
        assert_eq!(
            client_ip(proxy, &xff("6.6.6.6, 1.2.3.4, 10.0.0.7"), &trusted).to_string(),
            "1.2.3.4"
        );
        assert_eq!(
            client_ip(proxy, &xff("garbage, 1.2.3.4"), &trusted).to_string(),
            "1.2.3.4"
        );
        assert_eq!(client_ip(proxy, &xff("1.2.3.4, unknown"), &trusted), proxy);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        let mut fwd = HeaderMap::new();
        fwd.insert(
            header::FORWARDED,
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\""
                .parse()
                .unwrap(),
        );
        assert_eq!(client_ip(proxy, &fwd, &trusted).to_string(), "2001:db8:cafe::17");
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        assert_eq!(limit_key("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(
            limit_key("2001:db8:1:2:bbbb::9".parse().unwrap()),
            limit_key("2001:db8:1:2::1".parse().unwrap())
        );
        assert_eq!(limit_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(limit_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!(
            RateLimit::parse("5/10m").unwrap(),
            Some(RateLimit {
                max: 5,
                window_secs: 600
            })
        );
        assert_eq!(RateLimit::parse("0").unwrap(), None);
        for bad in ["5", "x/10m", "5/10w", "-1/1m", "0/1m", "5/0s"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_origin_by_public_url_or_host() {
        let own = Some("https://forms.example.org");
        assert!(same_origin("https://forms.example.org", own, None));
        assert!(same_origin("http://127.0.0.1:8080", own, Some("127.0.0.1:8080")));
        assert!(same_origin("http://localhost", None, Some("localhost:80")));
        assert!(!same_origin("https://evil.example", own, Some("forms.example.org")));
        assert!(!same_origin("null", own, Some("forms.example.org")));
    }
}
