//! Turns a template and its values into a complete RFC 5322 message: a staff mail or a visitor's
//! copy once, when it is queued (the outbox sends those bytes on every retry); a verification
//! mail each time the outbox sends it, from what its row keeps (see `verify.rs`).
//!
//! Header safety: every header value goes through lettre's typed headers, which encode anything
//! that is not plain printable ASCII; the visitor's address was parsed at the edge and cannot
//! carry CR/LF. The verification mail never includes the visitor's name or message, so the form
//! cannot be used to send a stranger text of the sender's choosing. The visitor's copy does
//! quote them, which is why it is only ever queued once the address has confirmed the message.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use lettre::Message as Email;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::context;

use super::queue::{MailBody, MailKind, OutgoingMail};
use crate::clock::human_time;
use crate::domain::{Message, MessageId};
use crate::forms::{Entry, shown_fields};
use crate::templates::Templates;

/// RFC 3834: tells auto-responders not to answer (no vacation-reply loops with the form).
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_string())
    }
}

pub struct Composer {
    templates: std::sync::Arc<Templates>,
    site_name: String,
    public_url: String,
    from: Mailbox,
    mail_lifetime: i64,
}

/// What the verification mail needs.
pub struct VerifyMail<'a> {
    pub id: MessageId,
    pub to: &'a str,
    pub token: &'a str,
    pub code: &'a str,
    /// For the "I didn't send this" link.
    pub suppress_token: &'a str,
    pub expires_at: i64,
    pub now: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("building the mail: {0}")]
    Build(String),
}

impl Composer {
    pub fn new(
        templates: std::sync::Arc<Templates>,
        site_name: String,
        public_url: String,
        from: Mailbox,
        mail_lifetime: Duration,
    ) -> Self {
        Self {
            templates,
            site_name,
            public_url,
            from,
            mail_lifetime: crate::clock::seconds(mail_lifetime),
        }
    }

    pub fn link(&self, path: &str) -> String {
        format!("{}{}", self.public_url, path)
    }

    pub fn verify_link(&self, token: &str) -> String {
        self.link(&format!("/verify/{token}"))
    }

    /// The sender's address (the envelope's MAIL FROM).
    pub fn sender(&self) -> &lettre::Address {
        &self.from.email
    }

    /// How long the outbox keeps trying a mail, in seconds.
    pub fn mail_lifetime(&self) -> i64 {
        self.mail_lifetime
    }

    /// A recipient as lettre takes it; the error names what is wrong.
    pub fn mailbox(address: &str) -> Result<Mailbox, ComposeError> {
        let address = address
            .parse()
            .map_err(|e| ComposeError::Build(format!("recipient address: {e}")))?;
        Ok(Mailbox::new(None, address))
    }

    /// A Message-ID unique to this mail: `<formgate.KIND.ID.RANDOM@sender-domain>`.
    pub fn new_message_id(&self, kind: MailKind, id: MessageId) -> String {
        let r = crate::token::random_bytes::<9>();
        let domain = self.from.email.domain();
        format!(
            "<formgate.{}.{}.{}@{}>",
            kind.as_str(),
            id,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r),
            domain
        )
    }

    /// The mail to the team for a released message, to every inbox of its form. `Reply-To` is
    /// the visitor, so staff answer with one click; `From` stays formgate's own sender (mail from
    /// the visitor's domain sent by us would fail SPF/DMARC). The subject names the form; the
    /// form's own fields are listed in its order, with their labels. Only the visitor's
    /// `subject` can reach the Subject header (it was parsed as one line at the edge).
    pub fn release(&self, m: &Message, form: &Entry, now: i64) -> Result<OutgoingMail, ComposeError> {
        let first_line = m.body.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        let subject_line = match &m.subject {
            Some(s) => s.clone(),
            None if !first_line.is_empty() => first_line.chars().take(60).collect::<String>(),
            None => format!("Message #{} from {}", m.id, m.name),
        };
        let ctx = context! {
            subject => &subject_line,
            subject_line => &subject_line,
            verified => m.verified_at.map(human_time).unwrap_or_else(|| "(not recorded)".into()),
            ip => m.ip.as_deref().unwrap_or("(unknown)"),
            ..message_context(form, m)
        };
        let (subject, text, html) = render_mail(form, "release", &ctx)?;
        let reply_to = visitor(m)?;
        self.build(
            MailKind::Release,
            m.id,
            &form.staff_inbox,
            Some(reply_to),
            &subject,
            text,
            html,
            now,
        )
    }

    /// The visitor's copy, once they confirmed: "we've received your message", with everything
    /// they sent (the form's fields in its order, with its labels). Only ever queued after the
    /// address proved to be theirs, so it relays nothing to a stranger. Rendered now, like the
    /// staff mail: the message may be purged before a retry. `From` is formgate's sender and
    /// there is no `Reply-To`: an answer to a receipt goes to the site, never to a third party.
    pub fn confirmation(&self, m: &Message, form: &Entry, now: i64) -> Result<OutgoingMail, ComposeError> {
        let ctx = context! {
            subject => &m.subject,
            confirmed => human_time(now),
            ..message_context(form, m)
        };
        let (subject, text, html) = render_mail(form, "confirmation", &ctx)?;
        let to = visitor(m)?;
        self.build(MailKind::Confirmation, m.id, &[to], None, &subject, text, html, now)
    }

    /// The verification mail's complete message, under the Message-ID its outbox row keeps.
    pub fn verify(&self, m: &VerifyMail<'_>, message_id: &str) -> Result<Vec<u8>, ComposeError> {
        let ctx = context! {
            site_name => &self.site_name,
            link => self.verify_link(m.token),
            suppress_link => self.link(&format!("/suppress/{}", m.suppress_token)),
            code => m.code,
            expires => human_time(m.expires_at),
        };
        let subject = self.templates.render("email/verify.subject.txt", &ctx)?;
        let text = self.templates.render("email/verify.txt", &ctx)?;
        let html = self.templates.render("email/verify.html", &ctx)?;
        let mut email = self.email(&[Self::mailbox(m.to)?], None, &subject, text, html, message_id, m.now)?;
        if let Some(one_click) = self.one_click_unsubscribe(m.suppress_token) {
            for (name, value) in one_click {
                email
                    .headers_mut()
                    .insert_raw(HeaderValue::new(HeaderName::new_from_ascii_str(name), value));
            }
        }
        Ok(email.formatted())
    }

    /// RFC 8058 one-click "never mail me": the mail provider's own unsubscribe button POSTs
    /// `List-Unsubscribe=One-Click` to the suppress link, which suppresses the address at once.
    /// Only over https: RFC 8058 requires it, and providers ignore plain http links.
    fn one_click_unsubscribe(&self, suppress_token: &str) -> Option<[(&'static str, String); 2]> {
        if !self.public_url.starts_with("https://") {
            return None;
        }
        Some([
            (
                "List-Unsubscribe",
                format!("<{}>", self.link(&format!("/suppress/{suppress_token}"))),
            ),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_string()),
        ])
    }

    /// A rendered mail for the outbox, with a Message-ID of its own.
    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        kind: MailKind,
        id: MessageId,
        to: &[Mailbox],
        reply_to: Option<Mailbox>,
        subject: &str,
        text: String,
        html: String,
        now: i64,
    ) -> Result<OutgoingMail, ComposeError> {
        let message_id = self.new_message_id(kind, id);
        let email = self.email(to, reply_to, subject, text, html, &message_id, now)?;
        Ok(OutgoingMail {
            kind,
            // Every address, comma-separated: the envelope's RCPT TOs (see `transport`).
            recipient: to.iter().map(|m| m.email.to_string()).collect::<Vec<_>>().join(", "),
            sender: self.from.email.to_string(),
            message_id_header: message_id,
            body: MailBody::Rendered(email.formatted()),
            give_up_at: now + self.mail_lifetime,
        })
    }

    /// One multipart/alternative mail from formgate's sender.
    #[allow(clippy::too_many_arguments)]
    fn email(
        &self,
        to: &[Mailbox],
        reply_to: Option<Mailbox>,
        subject: &str,
        text: String,
        html: String,
        message_id: &str,
        now: i64,
    ) -> Result<Email, ComposeError> {
        let mut builder = Email::builder().from(self.from.clone());
        for mailbox in to {
            builder = builder.to(mailbox.clone());
        }
        if let Some(reply_to) = reply_to {
            builder = builder.reply_to(reply_to);
        }
        builder
            // Subject lines fold; a newline can never come from the parsed visitor fields anyway.
            .subject(subject.replace(['\r', '\n'], " ").trim())
            .message_id(Some(message_id.to_string()))
            .date(UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0)))
            .header(AutoSubmitted)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
            )
            .map_err(|e| ComposeError::Build(e.to_string()))
    }
}

/// What every mail about a message tells its templates: the site, the form, the sender and
/// everything they sent.
fn message_context(form: &Entry, m: &Message) -> minijinja::Value {
    let fields: Vec<minijinja::Value> = shown_fields(form, &m.fields)
        .into_iter()
        .map(|f| context! { name => f.name, label => f.label, value => f.value.display() })
        .collect();
    context! {
        site_name => &form.site_name,
        form => &form.slug,
        form_title => &form.title,
        tag => &form.mail_tag,
        id => m.id.0,
        name => &m.name,
        email => &m.email,
        submitted => human_time(m.created_at),
        body => &m.body,
        fields,
    }
}

/// `email/{name}.subject.txt`, `.txt` and `.html` from the form's templates.
fn render_mail(form: &Entry, name: &str, ctx: &minijinja::Value) -> Result<(String, String, String), ComposeError> {
    let t = &form.templates;
    Ok((
        t.render(&format!("email/{name}.subject.txt"), ctx)?,
        t.render(&format!("email/{name}.txt"), ctx)?,
        t.render(&format!("email/{name}.html"), ctx)?,
    ))
}

/// The visitor as a mailbox: their name and the address parsed at the edge.
fn visitor(m: &Message) -> Result<Mailbox, ComposeError> {
    let address = m
        .email
        .parse()
        .map_err(|e| ComposeError::Build(format!("visitor address: {e}")))?;
    Ok(Mailbox::new(Some(m.name.clone()), address))
}
