//! `smtp_url`: where mail goes when it goes over SMTP. The password never prints.

use std::fmt;

use super::values::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain text (a local relay, or tests).
    None,
    /// STARTTLS if the server offers it.
    Opportunistic,
    /// STARTTLS or fail.
    Required,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub credentials: Option<(String, Secret)>,
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = self
            .credentials
            .as_ref()
            .map(|(u, _)| format!("{u}:***@"))
            .unwrap_or_default();
        write!(f, "{}{}:{} ({:?})", user, self.host, self.port, self.tls)
    }
}

impl SmtpUrl {
    /// `smtp://[user:pass@]host[:port][?tls=required|opportunistic]` or `smtps://…` (the same
    /// conventions as lettre's `from_url`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url =
            url::Url::parse(raw).map_err(|e| format!("not a URL ({e}); expected smtp://host:port or smtps://host"))?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => {
                return Err(format!("scheme `{other}` is not supported; use smtp:// or smtps://"));
            }
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let mut tls = if implicit { SmtpTls::Implicit } else { SmtpTls::None };
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref(), implicit) {
                ("tls", "required", false) => tls = SmtpTls::Required,
                ("tls", "opportunistic", false) => tls = SmtpTls::Opportunistic,
                ("tls", "none", false) => tls = SmtpTls::None,
                ("tls", _, true) => {
                    return Err("smtps:// is always TLS; drop the tls= parameter".into());
                }
                _ => {
                    return Err(format!(
                        "unknown parameter `{k}={v}`; use tls=required, tls=opportunistic or tls=none"
                    ));
                }
            }
        }
        let port = url.port().unwrap_or(if implicit { 465 } else { 25 });
        let decode = |s: &str| percent_decode(s);
        let credentials = (!url.username().is_empty())
            .then(|| (decode(url.username()), Secret(decode(url.password().unwrap_or("")))));
        Ok(SmtpUrl {
            host,
            port,
            tls,
            credentials,
        })
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
