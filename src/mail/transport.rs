//! How a rendered mail leaves: over SMTP, or into an `.eml` file.
//!
//! SMTP connections are built here rather than by lettre's transport, for speed: lettre never sets
//! TCP_NODELAY and writes the final `\r\n.\r\n` on its own, so with Nagle's algorithm every message
//! waits ~40 ms for the server's delayed ACK (about 23 mails/s per connection). We open the socket
//! ourselves with `set_nodelay(true)`, add TLS where the URL asks for it, hand the stream to
//! `AsyncSmtpConnection::connect_with_transport`, and keep the connection for the next mail.
//!
//! With DKIM configured, [`Lane::send`] signs each mail as its last step, whichever way it leaves:
//! an `.eml` file holds exactly what SMTP would have carried.

use crate::metrics::SendClass;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::dkim::DkimSigner;
use super::queue::OutboxItem;
use crate::config::{MailTarget, SmtpTls, SmtpUrl};

/// Why a send failed, as the outbox needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A 4xx reply: try again later.
    #[error("{0}")]
    Transient(String),
    /// Could not reach the server, or it broke off: try again later.
    #[error("{0}")]
    Connection(String),
    /// The server did not answer in time: try again later.
    #[error("{0}")]
    Timeout(String),
    /// A 5xx reply: never going to work. Dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
    /// Never going to work, and no server was asked: an address lettre refuses, a signing
    /// error, a TLS name that cannot be one. Dead-lettered at once.
    #[error("{0}")]
    Unsendable(String),
}

impl SendError {
    fn from_smtp(e: lettre::transport::smtp::Error) -> Self {
        if e.is_permanent() {
            SendError::Permanent(e.to_string())
        } else if e.is_transient() {
            SendError::Transient(e.to_string())
        } else if e.is_timeout() {
            SendError::Timeout(e.to_string())
        } else {
            SendError::Connection(e.to_string())
        }
    }

    /// Whether retrying could ever help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_) | SendError::Unsendable(_))
    }

    /// The class the metrics count it in.
    pub fn class(&self) -> SendClass {
        match self {
            SendError::Transient(_) => SendClass::Reply4xx,
            SendError::Connection(_) => SendClass::Connection,
            SendError::Timeout(_) => SendClass::Timeout,
            SendError::Permanent(_) => SendClass::Reply5xx,
            SendError::Unsendable(_) => SendClass::Unsendable,
        }
    }
}

/// Where mail goes, and who signs it; cheap to clone (one per outbox lane).
#[derive(Clone)]
pub struct Transport {
    target: Target,
    dkim: Option<Arc<DkimSigner>>,
}

#[derive(Clone)]
enum Target {
    Smtp(Arc<SmtpSettings>),
    Dir(PathBuf),
}

pub struct SmtpSettings {
    url: SmtpUrl,
    timeout: Duration,
    hello: ClientId,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Transport {
    /// `dkim`: the signer every mail goes through before it leaves; None sends mail unsigned.
    pub fn new(target: &MailTarget, timeout: Duration, dkim: Option<Arc<DkimSigner>>) -> Transport {
        let target = match target {
            MailTarget::Dir(dir) => Target::Dir(dir.clone()),
            MailTarget::Smtp(url) => {
                let tls = (url.tls != SmtpTls::None).then(|| Arc::new(tls_config()));
                Target::Smtp(Arc::new(SmtpSettings {
                    url: url.clone(),
                    timeout,
                    hello: ClientId::default(),
                    tls,
                }))
            }
        };
        Transport { target, dkim }
    }

    /// Connects as a send would (EHLO, STARTTLS and AUTH as `smtp_url` asks), then says QUIT:
    /// no mail leaves. None when mail goes to a folder.
    pub async fn check_smtp(&self) -> Option<Result<(), SendError>> {
        let Target::Smtp(settings) = &self.target else {
            return None;
        };
        Some(match connect(settings).await {
            Ok(mut conn) => tokio::time::timeout(settings.timeout, conn.quit())
                .await
                .map_err(|_| SendError::Timeout("no answer to QUIT".into()))
                .and_then(|quit| quit.map(|_| ()).map_err(SendError::from_smtp)),
            Err(e) => Err(e),
        })
    }

    /// A sending lane: one reused connection (SMTP) or a folder (files).
    pub fn lane(&self) -> Lane {
        Lane {
            transport: self.clone(),
            conn: None,
            last_used: None,
        }
    }
}

fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    // ring implements every protocol version rustls defaults to: this cannot fail.
    #[allow(clippy::expect_used)]
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// One sender: keeps its SMTP connection open between mails and reconnects after any failure.
pub struct Lane {
    transport: Transport,
    conn: Option<AsyncSmtpConnection>,
    last_used: Option<tokio::time::Instant>,
}

/// A connection idle longer than this is checked with NOOP before use (servers drop idle clients).
const IDLE_CHECK_AFTER: Duration = Duration::from_secs(5);

impl Lane {
    /// Sends `message` (the complete mail) to the row's recipient.
    #[tracing::instrument(level = "debug", name = "send_mail", skip_all, fields(outbox = item.id, kind = item.kind.as_str(), attempt = item.attempts + 1))]
    pub async fn send(&mut self, item: &OutboxItem, message: &[u8]) -> Result<(), SendError> {
        let signed;
        let message = match &self.transport.dkim {
            Some(signer) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                // Signing fails only on a ring-internal error: retrying would fail the same way.
                signed = signer.sign(message, now).map_err(SendError::Unsendable)?;
                &signed[..]
            }
            None => message,
        };
        match &self.transport.target {
            Target::Dir(dir) => write_eml(dir, item, message)
                .await
                // The folder is this target's server: a full disk is an outage, retried.
                .map_err(|e| SendError::Connection(format!("writing .eml: {e}"))),
            Target::Smtp(settings) => {
                let settings = settings.clone();
                let result = tokio::time::timeout(settings.timeout * 2, self.send_smtp(&settings, item, message)).await;
                let result = result.unwrap_or_else(|_| {
                    Err(SendError::Timeout(format!(
                        "SMTP timed out after {:?}",
                        settings.timeout * 2
                    )))
                });
                if result.is_err() {
                    // lettre aborts the session on an error reply; never reuse a connection in doubt.
                    self.conn = None;
                }
                result
            }
        }
    }

    async fn send_smtp(&mut self, s: &SmtpSettings, item: &OutboxItem, message: &[u8]) -> Result<(), SendError> {
        let envelope = Envelope::new(
            Some(
                item.sender
                    .parse()
                    .map_err(|e| SendError::Unsendable(format!("bad sender address: {e}")))?,
            ),
            // A staff mail to several inboxes keeps them comma-separated (addresses hold no comma).
            item.recipient
                .split(',')
                .map(|a| {
                    a.trim()
                        .parse()
                        .map_err(|e| SendError::Unsendable(format!("bad recipient address: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        )
        .map_err(|e| SendError::Unsendable(e.to_string()))?;
        // A connection kept idle may have been closed by the server: test it cheaply first.
        let idle = self.last_used.is_none_or(|t| t.elapsed() > IDLE_CHECK_AFTER);
        if let Some(conn) = &mut self.conn
            && (conn.has_broken()
                || (idle
                    && !tokio::time::timeout(s.timeout, conn.test_connected())
                        .await
                        .unwrap_or(false)))
        {
            self.conn = None;
        }
        self.last_used = Some(tokio::time::Instant::now());
        let conn = match self.conn {
            Some(ref mut conn) => conn,
            None => self.conn.insert(connect(s).await?),
        };
        match tokio::time::timeout(s.timeout, conn.send(&envelope, message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(SendError::from_smtp(e)),
            Err(_) => Err(SendError::Timeout(format!(
                "SMTP server did not answer within {:?}",
                s.timeout
            ))),
        }
    }

    /// Says goodbye politely (QUIT) if a connection is open.
    pub async fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.quit()).await;
        }
    }
}

async fn connect(s: &SmtpSettings) -> Result<AsyncSmtpConnection, SendError> {
    let broken = |what: &str, e: &dyn std::fmt::Display| {
        SendError::Connection(format!("{what} {}:{}: {e}", s.url.host, s.url.port))
    };
    let silent = |what: &str| SendError::Timeout(format!("{what} {}:{}: no answer", s.url.host, s.url.port));
    let tcp = tokio::time::timeout(s.timeout, TcpStream::connect((s.url.host.as_str(), s.url.port)))
        .await
        .map_err(|_| silent("timed out connecting to"))?
        .map_err(|e| broken("cannot connect to", &e))?;
    tcp.set_nodelay(true)
        .map_err(|e| broken("cannot configure socket for", &e))?;

    let stream: Box<dyn AsyncTokioStream> = match (s.url.tls, &s.tls) {
        (SmtpTls::Implicit, Some(config)) => {
            let name = rustls::pki_types::ServerName::try_from(s.url.host.clone())
                .map_err(|e| SendError::Unsendable(format!("smtp_url host is not a valid TLS name: {e}")))?;
            let tls = tokio::time::timeout(
                s.timeout,
                tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp),
            )
            .await
            .map_err(|_| silent("TLS handshake timed out with"))?
            .map_err(|e| broken("TLS handshake failed with", &e))?;
            Box::new(TlsStream(tls))
        }
        _ => Box::new(tcp),
    };
    let setup = async {
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &s.hello)
            .await
            .map_err(SendError::from_smtp)?;
        let starttls = match s.url.tls {
            SmtpTls::Required => true,
            SmtpTls::Opportunistic => conn.can_starttls(),
            SmtpTls::None | SmtpTls::Implicit => false,
        };
        if starttls {
            let params =
                TlsParameters::new(s.url.host.clone()).map_err(|e| SendError::Unsendable(format!("TLS setup: {e}")))?;
            conn.starttls(params, &s.hello)
                .await
                .map_err(|e| SendError::Connection(format!("STARTTLS: {e}")))?;
        }
        if let Some((user, pass)) = &s.url.credentials {
            let creds = Credentials::new(user.clone(), pass.0.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                .await
                .map_err(SendError::from_smtp)?;
        }
        Ok::<_, SendError>(conn)
    };
    tokio::time::timeout(s.timeout, setup)
        .await
        .map_err(|_| silent("SMTP greeting timed out from"))?
}

/// Writes `<outbox id>-<kind>.eml` atomically (temp file, then rename): a crash never leaves half a
/// mail, and a resend after a crash overwrites the same file instead of making a duplicate.
async fn write_eml(dir: &PathBuf, item: &OutboxItem, message: &[u8]) -> io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let name = format!("{:08}-{}.eml", item.id, item.kind.as_str());
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, message).await?;
    tokio::fs::rename(&tmp, dir.join(name)).await
}

/// A TLS stream lettre can drive (it takes any `AsyncTokioStream`).
#[derive(Debug)]
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
