//! The value types of the configuration, each with its one parse function ([`Value::from_text`];
//! [`Value::from_toml`] where the file holds a number, a boolean or a list). Messages say what is
//! wrong and how to fix it; the layering step adds the key and where the value came from.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;

use super::layers::{Value, a};
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
            .ok_or_else(|| format!("is {}; write true or false, without quotes", a(value)))
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
        .ok_or_else(|| format!("is {}; write a whole number, without quotes", a(value)))
}

/// `smtp_connections`: 1 to 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connections(pub usize);

impl Connections {
    fn check(n: usize) -> Result<Self, String> {
        if (1..=64).contains(&n) {
            Ok(Connections(n))
        } else {
            Err("must be between 1 and 64".into())
        }
    }
}

impl Value for Connections {
    fn from_text(text: &str) -> Result<Self, String> {
        let n = text.trim().parse().map_err(|_| format!("`{text}` is not a number"))?;
        Self::check(n)
    }

    fn from_toml(value: &toml::Value) -> Result<Self, String> {
        let n = integer(value)?;
        Self::check(usize::try_from(n).map_err(|_| "must be between 1 and 64".to_string())?)
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

impl Value for Origin {
    fn from_text(text: &str) -> Result<Self, String> {
        let origin = url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| u.origin().ascii_serialization())
            .ok_or_else(|| format!("`{text}` is not an origin; write e.g. https://www.example.org"))?;
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
    let shape = || format!("is {}; write a list of strings, e.g. [\"a\", \"b\"]", a(value));
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
