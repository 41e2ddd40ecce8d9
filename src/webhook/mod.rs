//! Webhooks: where a message goes besides mail. Each webhook of a form is one more destination
//! of its release (and, if it asks, of its confirmation): a JSON event queued in the outbox in
//! the same transaction, then delivered over HTTP by a worker of its own (`send.rs`), signed per
//! the Standard Webhooks specification, retried on its schedule, never lost.
//!
//! - `body.rs`: what a delivery says (the event, or a Slack-style text), rendered once when queued.
//! - `send.rs`: how it leaves: the signature, the guard against internal addresses, the outcome.

pub mod body;
pub mod send;

use std::fmt;

pub use send::WebhookSender;

/// One configured webhook (`[[webhooks]]`, `[[forms.NAME.webhooks]]`).
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `http` or `https`; where the event is POSTed.
    pub url: url::Url,
    /// The secrets it is signed with: one signature each (two while rotating). None: unsigned
    /// (only a chat format may go without).
    pub secrets: Vec<WebhookSecret>,
    /// What it is told about.
    pub events: Vec<Event>,
    pub format: Format,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &shown_url(&self.url))
            .field("secrets", &self.secrets.len())
            .field("events", &self.events)
            .field("format", &self.format)
            .finish()
    }
}

impl Webhook {
    pub fn wants(&self, event: Event) -> bool {
        self.events.contains(&event)
    }
}

/// Path segments this long are cut when a URL is shown: Slack's and Discord's webhook URLs carry
/// their secret in the path.
const LONG_SEGMENT: usize = 20;

/// A webhook URL as it may be printed (logs, `formgate forms`, `show`, the dashboard): scheme,
/// host, port and path, without user name, password, query or fragment (where tokens go), and
/// long path segments cut to their first four characters.
pub fn shown_url(url: &url::Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    for segment in url.path().split('/').skip(1) {
        shown.push('/');
        if segment.chars().count() >= LONG_SEGMENT {
            shown.extend(segment.chars().take(4));
            shown.push('…');
        } else {
            shown.push_str(segment);
        }
    }
    shown
}

/// A signing secret's key bytes (`whsec_` + base64 in the configuration). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// What happened to a message, as a webhook's `type` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The visitor confirmed their address.
    Verified,
    /// A moderator (or auto-release) released it to the team.
    Released,
}

impl Event {
    pub const ALL: [Event; 2] = [Event::Released, Event::Verified];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Verified => "message.verified",
            Event::Released => "message.released",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The body a webhook gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Standard Webhooks event: `{"type", "timestamp", "data": {…}}`.
    Standard,
    /// `{"text": …}`: Slack's incoming webhooks, and Mattermost, Rocket.Chat, Discord's `/slack`.
    Slack,
}

/// The settings every webhook shares.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// How long a delivery is retried before it is dead (seconds).
    pub lifetime: i64,
    /// Lets webhooks reach loopback, private and link-local addresses (intranets; the tests).
    pub allow_private: bool,
    /// How long one attempt may take, connection to last byte.
    pub timeout: std::time::Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            lifetime: 3 * 86_400,
            allow_private: false,
            timeout: std::time::Duration::from_secs(15),
        }
    }
}
