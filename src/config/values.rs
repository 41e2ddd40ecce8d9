//! The value types of the configuration, each with its one parse function ([`Value::from_text`];
//! [`Value::from_toml`] where the file holds a number, a boolean or a list). Messages say what is
//! wrong and how to fix it; the layering step adds the key and where the value came from.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;

use super::layers::{Value, toml_kind};
use super::smtp::SmtpUrl;

/// An address block from `trusted_proxies`: `10.0.0.0/8`, `::1`, `fd00::/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block; write e.g. 10.0.0.1 or 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{s}`: the prefix length must be a number from 0 to {max}")),
            },
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u32::from(net).into(), 32, self.prefix) == mask(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(net), 128, self.prefix) == mask(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn mask(bits: u128, width: u32, prefix: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let keep = u128::MAX << (width - u32::from(prefix));
    bits & keep & (u128::MAX >> (128 - width))
}

/// `5/10m`: at most 5 requests per client in each 10-minute window. `0` turns the limit off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max: i64,
    pub window_secs: i64,
}

impl RateLimit {
    pub fn parse(s: &str) -> Result<Option<Self>, String> {
        let s = s.trim();
        if s == "0" || s.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || format!("`{s}` is not a rate limit; write e.g. 5/10m (5 requests per 10 minutes), or 0 for none");
        let (max, window) = s.split_once('/').ok_or_else(bad)?;
        let max: i64 = max.trim().parse().map_err(|_| bad())?;
        let window = parse_duration(window).map_err(|_| bad())?;
        if max <= 0 || window.is_zero() {
            return Err(bad());
        }
        let window_secs = i64::try_from(window.as_secs()).map_err(|_| bad())?;
        Ok(Some(Self { max, window_secs }))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.max, self.window_secs)
    }
}

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Parses `15s`, `90m`, `72h`, `3d` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration; write e.g. 15s, 30m, 72h or 3d"))?;
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}` has an unknown unit; use s, m, h or d")),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

/// `1/24h` → (1, 24 h); `0` or `off` → None (no cap).
pub fn parse_per_window(s: &str) -> Result<Option<(u32, Duration)>, String> {
    let s = s.trim();
    if s == "0" || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let (n, window) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not a rate; write e.g. 1/24h (or 0 for no cap)"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a rate; write e.g. 1/24h (or 0 for no cap)"))?;
    let window = parse_duration(window)?;
    if n == 0 || window.is_zero() {
        return Ok(None);
    }
    Ok(Some((n, window)))
}

// ---- the types the table's settings have --------------------------------------------------

/// `host:port`.
impl Value for SocketAddr {
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not an address; write host:port, e.g. 127.0.0.1:8080"))
    }
}

/// A duration setting (`15s`, `3d`, …); every one of them must be more than zero.
impl Value for Duration {
    fn from_text(text: &str) -> Result<Self, String> {
        let d = parse_duration(text)?;
        if d.is_zero() {
            return Err("must be more than zero".into());
        }
        Ok(d)
    }
}

/// A boolean: `true`/`false` in the file; `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`
/// (any case) in the environment, where blank is `false`.
impl Value for bool {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            _ => Err(format!("`{text}` is not a boolean; write true or false")),
        }
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        value
            .as_bool()
            .ok_or_else(|| format!("is {}; write true or false, without quotes", toml_kind(value)))
    }

    const BLANK_IS_UNSET: bool = false;
}

/// A path, taken as written.
impl Value for PathBuf {
    fn from_text(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
}

/// `Example Forms <forms@example.org>` or a bare address.
impl Value for Mailbox {
    fn from_text(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| format!("`{text}` is not a mailbox; write e.g. `Example Forms <forms@example.org>`"))
    }
}

impl Value for SmtpUrl {
    fn from_text(text: &str) -> Result<Self, String> {
        SmtpUrl::parse(text)
    }
}

/// `5/10m`; `0` or `off`: no limit.
impl Value for Option<RateLimit> {
    fn from_text(text: &str) -> Result<Self, String> {
        RateLimit::parse(text)
    }
}

impl Value for IpNet {
    fn from_text(text: &str) -> Result<Self, String> {
        IpNet::parse(text)
    }
}

/// A whole number from the file (a TOML integer).
fn integer(value: &toml::Value) -> Result<i64, String> {
    value
        .as_integer()
        .ok_or_else(|| format!("is {}; write a whole number, without quotes", toml_kind(value)))
}

/// A whole number from `MIN` to `MAX`: `smtp_connections` (1 to 64), `ssh_max_sessions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounded<const MIN: usize, const MAX: usize>(pub usize);

/// `smtp_connections`: 1 to 64.
pub type Connections = Bounded<1, 64>;
/// `ssh_max_sessions`: 1 to 1000.
pub type SessionCap = Bounded<1, 1000>;

impl<const MIN: usize, const MAX: usize> Bounded<MIN, MAX> {
    fn range() -> String {
        format!("must be between {MIN} and {MAX}")
    }

    fn check(n: usize) -> Result<Self, String> {
        if (MIN..=MAX).contains(&n) {
            Ok(Bounded(n))
        } else {
            Err(Self::range())
        }
    }
}

impl<const MIN: usize, const MAX: usize> Value for Bounded<MIN, MAX> {
    fn from_text(text: &str) -> Result<Self, String> {
        let n = text.trim().parse().map_err(|_| format!("`{text}` is not a number"))?;
        Self::check(n)
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let n = integer(value)?;
        Self::check(usize::try_from(n).map_err(|_| Self::range())?)
    }

    const BLANK_IS_UNSET: bool = false;
}

/// A count where `0` means no cap (`max_mails_per_hour`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap(pub Option<u32>);

impl Value for Cap {
    fn from_text(text: &str) -> Result<Self, String> {
        let n: u32 = text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a whole number"))?;
        Ok(Cap((n > 0).then_some(n)))
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let n = integer(value)?;
        let n = u32::try_from(n).map_err(|_| format!("`{n}` is not a whole number from 0 to {}", u32::MAX))?;
        Ok(Cap((n > 0).then_some(n)))
    }

    const BLANK_IS_UNSET: bool = false;
}

/// A number of days where `0` means never (`purge_after_days`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Days(pub Option<Duration>);

impl Days {
    fn of(n: u32) -> Self {
        Days((n > 0).then(|| Duration::from_secs(u64::from(n) * 86_400)))
    }
}

impl Value for Days {
    fn from_text(text: &str) -> Result<Self, String> {
        let n = text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a whole number of days"))?;
        Ok(Days::of(n))
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let n = integer(value)?;
        let n = u32::try_from(n).map_err(|_| format!("`{n}` is not a whole number of days"))?;
        Ok(Days::of(n))
    }

    const BLANK_IS_UNSET: bool = false;
}

/// `N/window` (`1/24h`): at most N per window; `0` or `off`: no cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerWindow(pub Option<(u32, Duration)>);

impl Value for PerWindow {
    fn from_text(text: &str) -> Result<Self, String> {
        parse_per_window(text).map(PerWindow)
    }
}

/// `public_url`: an http(s) URL, kept as written without a trailing `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl(pub String);

impl Value for PublicUrl {
    fn from_text(text: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(text)
            .map_err(|e| format!("`{text}` is not a URL ({e}); write e.g. https://forms.example.org"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("must start with http:// or https://".into());
        }
        Ok(PublicUrl(text.trim_end_matches('/').to_string()))
    }
}

/// `database_url`: `sqlite:…` or `postgres(ql)://…`, kept as written. A refusal names only the
/// scheme: the rest of a database URL may carry a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseUrl(pub String);

impl Value for DatabaseUrl {
    fn from_text(text: &str) -> Result<Self, String> {
        let supported = ["sqlite:", "postgres://", "postgresql://"];
        if supported.iter().any(|prefix| text.starts_with(prefix)) {
            return Ok(DatabaseUrl(text.to_string()));
        }
        let shown = match text.split_once(':') {
            Some((scheme, _)) => format!("`{scheme}:` URLs are"),
            None => format!("`{text}` is"),
        };
        Err(format!(
            "{shown} not supported; use sqlite://PATH or postgres://USER@HOST/DATABASE"
        ))
    }
}

/// `staff_inbox`: one mailbox or several, as a TOML list or (also in the environment) comma-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inboxes(pub Vec<Mailbox>);

impl Value for Inboxes {
    fn from_text(text: &str) -> Result<Self, String> {
        let list: lettre::message::Mailboxes = text.parse().map_err(|_| {
            format!("`{text}` is not a mailbox or a comma-separated list of them; write e.g. `Team <team@example.org>`")
        })?;
        Ok(Inboxes(list.into_iter().collect()))
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        match value {
            toml::Value::String(text) => Self::from_text(text),
            _ => toml_strings(value)?
                .into_iter()
                .map(Mailbox::from_text)
                .collect::<Result<_, _>>()
                .map(Inboxes),
        }
    }
}

/// A web address to send visitors to (`thank_you_url`): http or https, kept as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebAddress(pub String);

impl Value for WebAddress {
    fn from_text(text: &str) -> Result<Self, String> {
        match url::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(WebAddress(u.to_string())),
            _ => Err(format!(
                "`{text}` is not a web address; write e.g. https://www.example.org/thanks"
            )),
        }
    }
}

/// A form's name (`default_form`): 1–40 lower-case letters, digits or `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormSlug(pub String);

impl Value for FormSlug {
    fn from_text(text: &str) -> Result<Self, String> {
        if super::forms::is_slug(text) {
            Ok(FormSlug(text.to_string()))
        } else {
            Err(format!(
                "`{text}` is not a form's name: 1–40 lower-case letters, digits or `-`"
            ))
        }
    }
}

/// A DNS name (`dkim_domain`, `dkim_selector`): dot-separated labels of letters, digits and `-`,
/// lower-cased, without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsName(pub String);

impl Value for DnsName {
    fn from_text(text: &str) -> Result<Self, String> {
        let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!(
                "`{text}` is not a DNS name; write e.g. `example.org` (letters, digits, `-`, dots)"
            ));
        }
        Ok(DnsName(name))
    }
}

/// How log lines are written (`log_format`): for people, or one JSON object per line for a log
/// collector (journald, Loki, Elasticsearch) that would otherwise have to parse prose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Value for LogFormat {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("`{other}` is not a log format; write `text` or `json`")),
        }
    }
}

/// One line of text without control characters (`site_name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneLine(pub String);

impl Value for OneLine {
    fn from_text(text: &str) -> Result<Self, String> {
        if text.chars().any(char::is_control) {
            return Err("must be one line without control characters".into());
        }
        Ok(OneLine(text.to_string()))
    }
}

/// A folder that exists (`ui_dir`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folder(pub PathBuf);

impl Value for Folder {
    fn from_text(text: &str) -> Result<Self, String> {
        let dir = PathBuf::from(text);
        if !dir.is_dir() {
            return Err(format!("`{}` is not a folder", dir.display()));
        }
        Ok(Folder(dir))
    }
}

/// An origin another site's pages post from (`allowed_origins`): `scheme://host[:port]`,
/// normalised to its ASCII form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin(pub String);

impl Origin {
    /// `https://example.org:8443/path` → `https://example.org:8443` (default ports dropped), as
    /// browsers send it in an `Origin` header; None for anything that is not an http(s) URL,
    /// `null` included.
    pub fn of(url: &str) -> Option<String> {
        let u = url::Url::parse(url).ok()?;
        matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
    }
}

impl Value for Origin {
    fn from_text(text: &str) -> Result<Self, String> {
        let origin =
            Origin::of(text).ok_or_else(|| format!("`{text}` is not an origin; write e.g. https://www.example.org"))?;
        if origin != text.trim_end_matches('/') {
            return Err(format!(
                "`{text}` has a path; an origin is only scheme://host[:port], e.g. {origin}"
            ));
        }
        Ok(Origin(origin))
    }
}

/// The items of a list in the environment: comma-separated, trimmed, blanks dropped.
fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The items of a list in the file: a TOML array of strings, taken as written.
fn toml_strings(value: &toml::Value) -> Result<Vec<&str>, String> {
    let shape = || format!("is {}; write a list of strings, e.g. [\"a\", \"b\"]", toml_kind(value));
    let items = value.as_array().ok_or_else(shape)?;
    items.iter().map(|v| v.as_str().ok_or_else(shape)).collect()
}

/// A list: a TOML array of strings in the file, comma-separated in the environment. An empty
/// environment variable is an empty list (it does not fall back to the file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct List<T>(pub Vec<T>);

impl<T: Value> Value for List<T> {
    fn from_text(text: &str) -> Result<Self, String> {
        split_list(text).map(T::from_text).collect::<Result<_, _>>().map(List)
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        toml_strings(value)?
            .into_iter()
            .map(T::from_text)
            .collect::<Result<_, _>>()
            .map(List)
    }

    const BLANK_IS_UNSET: bool = false;
}

/// `secret_keys`: at least one key, each at least 32 characters; the first signs.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKeys(pub Vec<Secret>);

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} redacted]", self.0.len())
    }
}

impl SecretKeys {
    fn check<'s>(keys: impl Iterator<Item = &'s str>) -> Result<Self, String> {
        let keys: Vec<&str> = keys.collect();
        if keys.is_empty() {
            return Err("is empty; give at least one key, or unset it to use secret_key_file".into());
        }
        if let Some(short) = keys.iter().position(|k| k.len() < 32) {
            return Err(format!(
                "key #{} is shorter than 32 characters; generate one with `openssl rand -base64 32`",
                short + 1
            ));
        }
        Ok(SecretKeys(keys.into_iter().map(|k| Secret(k.to_string())).collect()))
    }
}

impl Value for SecretKeys {
    fn from_text(text: &str) -> Result<Self, String> {
        Self::check(split_list(text))
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        Self::check(toml_strings(value)?.into_iter())
    }

    const BLANK_IS_UNSET: bool = false;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file's value `toml` (`"10s"`, `4`, `["a"]`), read as a `T`.
    fn from_file<T: Value>(toml: &str) -> Result<T, String> {
        let table: toml::Table = toml::from_str(&format!("v = {toml}")).unwrap();
        T::from_toml(&table["v"])
    }

    /// Each input is refused with a message that contains the given text (the fix, mostly).
    fn refuses<T: Value + fmt::Debug>(cases: &[(&str, &str)]) {
        for (input, says) in cases {
            let e = T::from_text(input).expect_err(input);
            assert!(e.contains(says), "`{input}`: {e}");
        }
    }

    fn refuses_in_file<T: Value + fmt::Debug>(cases: &[(&str, &str)]) {
        for (toml, says) in cases {
            let e = from_file::<T>(toml).expect_err(toml);
            assert!(e.contains(says), "{toml}: {e}");
        }
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("15s", 15),
            ("90", 90),
            ("30m", 1800),
            ("72h", 259_200),
            ("3d", 259_200),
            (" 10s ", 10),
            ("5 m", 300),
        ] {
            assert_eq!(Duration::from_text(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        assert_eq!(from_file::<Duration>("\"2h\""), Ok(Duration::from_secs(7200)));
        refuses::<Duration>(&[
            ("0s", "must be more than zero"),
            ("0", "must be more than zero"),
            ("h", "write e.g. 15s, 30m, 72h or 3d"),
            ("", "is not a duration"),
            ("-5s", "is not a duration"),
            ("3 weeks", "unknown unit; use s, m, h or d"),
            ("5w", "unknown unit"),
        ]);
        refuses_in_file::<Duration>(&[("10", "is an integer; write it as a string, in quotes")]);
    }

    #[test]
    fn per_window() {
        let day = Duration::from_secs(86_400);
        for (text, want) in [
            ("1/24h", Some((1, day))),
            ("3/1h", Some((3, Duration::from_secs(3600)))),
            (" 2 / 1d ", Some((2, day))),
            ("0", None),
            ("off", None),
            ("OFF", None),
            ("0/1h", None),
            ("5/0s", None),
        ] {
            assert_eq!(PerWindow::from_text(text), Ok(PerWindow(want)), "{text}");
        }
        refuses::<PerWindow>(&[
            ("lots", "is not a rate; write e.g. 1/24h (or 0 for no cap)"),
            ("x/1h", "write e.g. 1/24h"),
            ("-1/1h", "write e.g. 1/24h"),
            ("1/5w", "unknown unit"),
        ]);
    }

    #[test]
    fn rate_limits() {
        let limit = |max, window_secs| Some(RateLimit { max, window_secs });
        for (text, want) in [
            ("5/10m", limit(5, 600)),
            ("30/10m", limit(30, 600)),
            (" 1 / 1s ", limit(1, 1)),
            ("0", None),
            ("off", None),
        ] {
            assert_eq!(<Option<RateLimit>>::from_text(text), Ok(want), "{text}");
        }
        let fix = "write e.g. 5/10m (5 requests per 10 minutes), or 0 for none";
        refuses::<Option<RateLimit>>(&[
            ("lots", fix),
            ("0/10m", fix),
            ("-1/10m", fix),
            ("5/0s", fix),
            ("5/10w", fix),
            ("5", fix),
            // A window too long for the i64 the limiter counts in.
            ("1/99999999999999999d", fix),
        ]);
    }

    #[test]
    fn address_blocks() {
        for (text, shown) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.0.0.1", "10.0.0.1/32"),
            (" 10.0.0.1 ", "10.0.0.1/32"),
            ("::1", "::1/128"),
            ("fd00::/8", "fd00::/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
        ] {
            assert_eq!(
                IpNet::from_text(text).map(|n| n.to_string()),
                Ok(shown.to_string()),
                "{text}"
            );
        }
        refuses::<IpNet>(&[
            ("10.0.0.0/40", "the prefix length must be a number from 0 to 32"),
            ("::/129", "from 0 to 128"),
            ("10.0.0.0/x", "from 0 to 32"),
            (
                "example.org",
                "is not an IP address or CIDR block; write e.g. 10.0.0.1 or 10.0.0.0/8",
            ),
        ]);
    }

    #[test]
    fn origins() {
        for (text, want) in [
            ("https://www.example.org", "https://www.example.org"),
            ("https://www.example.org/", "https://www.example.org"),
            ("http://localhost:3000", "http://localhost:3000"),
        ] {
            assert_eq!(Origin::from_text(text), Ok(Origin(want.into())), "{text}");
        }
        refuses::<Origin>(&[
            (
                "www.example.org",
                "is not an origin; write e.g. https://www.example.org",
            ),
            ("ftp://example.org", "is not an origin"),
            (
                "https://x.org/form",
                "has a path; an origin is only scheme://host[:port], e.g. https://x.org",
            ),
        ]);
    }

    #[test]
    fn lists() {
        let nets = |r: Result<List<IpNet>, String>| r.map(|l| l.0.len());
        for (text, n) in [("127.0.0.1, 10.0.0.0/8", 2), ("::1", 1), ("", 0), (" , ", 0)] {
            assert_eq!(nets(List::from_text(text)), Ok(n), "{text}");
        }
        for (toml, n) in [("[\"10.0.0.0/8\", \"::1\"]", 2), ("[]", 0)] {
            assert_eq!(nets(from_file(toml)), Ok(n), "{toml}");
        }
        refuses::<List<IpNet>>(&[("127.0.0.1, nowhere", "`nowhere` is not an IP address")]);
        refuses_in_file::<List<IpNet>>(&[
            ("\"10.0.0.0/8\"", "is a string; write a list of strings"),
            ("[1]", "is an array; write a list of strings"),
            ("[\"\"]", "is not an IP address"),
        ]);
    }

    #[test]
    fn secret_keys() {
        let k32 = "k".repeat(32);
        let count = |r: Result<SecretKeys, String>| r.map(|k| k.0.len());
        assert_eq!(count(SecretKeys::from_text(&format!("{k32}, {k32},"))), Ok(2));
        assert_eq!(count(from_file(&format!("[\"{k32}\"]"))), Ok(1));
        refuses::<SecretKeys>(&[
            (
                "",
                "is empty; give at least one key, or unset it to use secret_key_file",
            ),
            (
                "short",
                "key #1 is shorter than 32 characters; generate one with `openssl rand -base64 32`",
            ),
            (&format!("{k32},short"), "key #2 is shorter"),
        ]);
        refuses_in_file::<SecretKeys>(&[("[]", "is empty")]);
        let keys = SecretKeys::from_text(&k32).unwrap();
        assert_eq!(format!("{keys:?}"), "[1 redacted]");
    }

    #[test]
    fn booleans() {
        for (text, want) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            (" on ", true),
            ("false", false),
            ("0", false),
            ("no", false),
            ("Off", false),
            ("", false),
        ] {
            assert_eq!(bool::from_text(text), Ok(want), "{text}");
        }
        assert_eq!(from_file::<bool>("true"), Ok(true));
        refuses::<bool>(&[("maybe", "`maybe` is not a boolean; write true or false")]);
        refuses_in_file::<bool>(&[("\"true\"", "is a string; write true or false, without quotes")]);
    }

    #[test]
    fn numbers() {
        for (text, want) in [("4", 4), (" 64 ", 64), ("1", 1)] {
            assert_eq!(Connections::from_text(text), Ok(Bounded(want)), "{text}");
        }
        assert_eq!(from_file::<Connections>("8"), Ok(Bounded(8)));
        refuses::<Connections>(&[
            ("0", "must be between 1 and 64"),
            ("65", "must be between 1 and 64"),
            ("four", "`four` is not a number"),
            ("", "is not a number"),
        ]);
        refuses_in_file::<Connections>(&[
            ("-1", "must be between 1 and 64"),
            ("\"4\"", "is a string; write a whole number, without quotes"),
        ]);

        for (text, want) in [("500", Some(500)), ("0", None)] {
            assert_eq!(Cap::from_text(text), Ok(Cap(want)), "{text}");
        }
        assert_eq!(from_file::<Cap>("0"), Ok(Cap(None)));
        refuses::<Cap>(&[
            ("lots", "`lots` is not a whole number"),
            ("-1", "is not a whole number"),
        ]);
        refuses_in_file::<Cap>(&[("99999999999", "is not a whole number from 0 to 4294967295")]);

        let days = |n: u64| Days(Some(Duration::from_secs(n * 86_400)));
        for (text, want) in [("30", days(30)), ("1", days(1)), ("0", Days(None))] {
            assert_eq!(Days::from_text(text), Ok(want), "{text}");
        }
        assert_eq!(from_file::<Days>("7"), Ok(days(7)));
        refuses::<Days>(&[("a month", "`a month` is not a whole number of days")]);
        refuses_in_file::<Days>(&[("-1", "is not a whole number of days")]);
    }

    #[test]
    fn addresses_mailboxes_and_urls() {
        assert_eq!(SocketAddr::from_text("127.0.0.1:8080").map(|a| a.port()), Ok(8080));
        assert_eq!(SocketAddr::from_text("[::1]:80").map(|a| a.port()), Ok(80));
        refuses::<SocketAddr>(&[
            (
                "nowhere",
                "`nowhere` is not an address; write host:port, e.g. 127.0.0.1:8080",
            ),
            ("127.0.0.1", "write host:port"),
        ]);

        for text in ["Example Forms <forms@example.org>", "forms@example.org"] {
            assert!(Mailbox::from_text(text).is_ok(), "{text}");
        }
        refuses::<Mailbox>(&[(
            "not a mailbox",
            "is not a mailbox; write e.g. `Example Forms <forms@example.org>`",
        )]);

        for (text, want) in [
            ("https://forms.example.org/", "https://forms.example.org"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ] {
            assert_eq!(PublicUrl::from_text(text), Ok(PublicUrl(want.into())), "{text}");
        }
        refuses::<PublicUrl>(&[
            ("forms.example.org", "is not a URL"),
            ("forms.example.org", "write e.g. https://forms.example.org"),
            ("ftp://forms.example.org", "must start with http:// or https://"),
        ]);

        for text in [
            "sqlite://x.db",
            "sqlite:x.db",
            "postgres://u@db/f",
            "postgresql://u:pw@db:5432/f",
        ] {
            assert_eq!(DatabaseUrl::from_text(text), Ok(DatabaseUrl(text.into())), "{text}");
        }
        refuses::<DatabaseUrl>(&[
            (
                "mysql://u:hunter2@db/x",
                "`mysql:` URLs are not supported; use sqlite://PATH or postgres://",
            ),
            ("formgate.db", "`formgate.db` is not supported"),
        ]);
        assert!(
            !DatabaseUrl::from_text("mysql://u:hunter2@db/x")
                .unwrap_err()
                .contains("hunter2")
        );

        refuses::<SmtpUrl>(&[
            ("http://x", "scheme `http` is not supported; use smtp:// or smtps://"),
            ("mail.example.org", "not a URL"),
            ("smtp://h?tls=bogus", "unknown parameter `tls=bogus`"),
            (
                "smtps://h?tls=required",
                "smtps:// is always TLS; drop the tls= parameter",
            ),
        ]);
    }

    #[test]
    fn text_and_folders() {
        assert_eq!(OneLine::from_text("Example Forms"), Ok(OneLine("Example Forms".into())));
        refuses::<OneLine>(&[("a\nb", "must be one line without control characters")]);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        assert_eq!(Folder::from_text(path), Ok(Folder(dir.path().to_path_buf())));
        let missing = dir.path().join("missing");
        let e = Folder::from_text(missing.to_str().unwrap()).unwrap_err();
        assert_eq!(e, format!("`{}` is not a folder", missing.display()));
        assert_eq!(PathBuf::from_text("./mail-outbox"), Ok(PathBuf::from("./mail-outbox")));
    }
}
