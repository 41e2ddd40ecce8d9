//! What a webhook delivery says, rendered once when it is queued (every retry sends the same
//! bytes): the Standard Webhooks event, or a short text for a team chat.

use serde_json::json;

use super::{Event, Format, Webhook};
use crate::clock::rfc3339;
use crate::domain::Message;
use crate::forms::{Form, shown_fields};
use crate::mail::queue::{MailBody, MailKind, OutgoingMail};

/// How much of the message a chat line quotes.
const CHAT_QUOTE_CHARS: usize = 500;

/// What happened, for the event's `data`.
pub struct Happened<'a> {
    pub event: Event,
    pub at: i64,
    /// Who released it (a moderator's name, `auto-release`); None for `message.verified`.
    pub by: Option<&'a str>,
}

/// The outbox rows that tell `form`'s webhooks what happened to `m`: one per webhook that asked
/// for this event, each with its own `webhook-id` (stable for this event and destination: every
/// retry and a redelivery carry it, so receivers can drop duplicates).
pub fn deliveries(form: &Form, m: &Message, what: &Happened<'_>, give_up_at: i64) -> Vec<OutgoingMail> {
    form.webhooks
        .iter()
        .filter(|w| w.wants(what.event))
        .map(|w| OutgoingMail {
            kind: MailKind::Webhook,
            recipient: w.url.to_string(),
            // Where the sender finds the webhook's secrets again: its form.
            sender: form.slug.clone(),
            message_id_header: webhook_id(),
            body: MailBody::Rendered(render(w, form, m, what)),
            give_up_at,
        })
        .collect()
}

/// `msg_` and 128 random bits: the Standard Webhooks spelling of an event id.
fn webhook_id() -> String {
    let r = crate::token::random_bytes::<16>();
    format!("msg_{}", r.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The body `webhook` gets for `m` (posted to `form`).
pub fn render(webhook: &Webhook, form: &Form, m: &Message, what: &Happened<'_>) -> Vec<u8> {
    let value = match webhook.format {
        Format::Standard => event(form, m, what),
        Format::Slack => json!({ "text": chat_text(form, m, what) }),
    };
    // Serialising a `Value` cannot fail.
    serde_json::to_vec(&value).unwrap_or_default()
}

/// `{"type", "timestamp", "data"}` as the Standard Webhooks specification lays an event out.
fn event(form: &Form, m: &Message, what: &Happened<'_>) -> serde_json::Value {
    let released = what.event == Event::Released;
    let fields: Vec<serde_json::Value> = shown_fields(form, &m.fields)
        .into_iter()
        .map(|f| json!({ "name": f.name, "label": f.label, "value": f.value }))
        .collect();
    json!({
        "type": what.event.as_str(),
        "timestamp": rfc3339(what.at),
        "data": {
            "id": m.id.0,
            "form": m.form,
            "name": m.name,
            "email": m.email,
            "subject": m.subject,
            "message": m.body,
            "fields": fields,
            "submitted_at": rfc3339(m.created_at),
            "verified_at": m.verified_at.or((!released).then_some(what.at)).map(rfc3339),
            "released_at": released.then(|| rfc3339(what.at)),
            "released_by": if released { what.by } else { None },
        }
    })
}

/// A few lines for a chat channel. Everything the visitor wrote is escaped for Slack's markup
/// (`&`, `<`, `>`: no `<!channel>`, no `<https://evil|your bank>`), and an `@` is kept from
/// starting a mention (`@everyone`, `@here`, `@channel` ping on Discord and Mattermost even as
/// plain text) by an invisible word joiner (U+2060) after it.
pub fn chat_text(form: &Form, m: &Message, what: &Happened<'_>) -> String {
    let headline = match what.event {
        Event::Released => "New message",
        Event::Verified => "Message confirmed by its sender",
    };
    let mut text = format!(
        "*{headline}* on {} from {} ({})\n",
        escape(&form.title),
        escape(&m.name),
        escape(&m.email)
    );
    if let Some(subject) = m.subject.as_deref().filter(|s| !s.is_empty()) {
        text.push_str(&format!("*Subject:* {}\n", escape(subject)));
    }
    let mut quote: String = m.body.chars().take(CHAT_QUOTE_CHARS).collect();
    if m.body.chars().count() > CHAT_QUOTE_CHARS {
        quote.push('…');
    }
    for line in escape(&quote).lines() {
        text.push_str("> ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!("formgate message #{}", m.id.0));
    text
}

/// Slack's three control characters as entities, and every `@` defused.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{2060}"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_markup_in_visitor_text_is_inert() {
        let e = escape("<!channel> @everyone <https://evil.example|your bank> & co");
        assert!(!e.contains('<') && !e.contains('>'));
        assert!(!e.contains("@everyone"));
        assert!(e.starts_with("&lt;!channel&gt; @\u{2060}everyone &lt;https://evil.example|your bank&gt; &amp; co"));
    }
}
