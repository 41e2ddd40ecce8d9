//! Fixed data for the dashboard's tests: a clock that does not move and messages that do not change.

use crate::actions::Details;
use crate::domain::{Field, FieldValue, Message, MessageId, Status};
use crate::forms::{FieldKind, FieldSpec, Form};
use crate::mail::destination::Destination;
use crate::mail::queue::{MailKind, OutboxRecord, OutboxState};
use crate::store::{AuditRecord, MailSummary, MessageSummary};

use super::state::{State, Tab};

/// 2027-01-15 08:00:00 UTC.
pub const NOW: i64 = 1_800_000_000;

/// Creation time of the generic row `i`: one a minute, newest with the highest id.
pub fn created(i: i64) -> i64 {
    NOW - 60 * (10_000 - i)
}

pub fn row(i: i64, status: Status) -> MessageSummary {
    MessageSummary {
        id: MessageId(i),
        form: "contact".into(),
        status,
        name: format!("Visitor {i}"),
        email: format!("v{i}@example.org"),
        subject: Some(format!("Subject {i}")),
        preview: format!("Message {i}"),
        created_at: created(i),
        verified_at: None,
        released_at: None,
        deleted_at: None,
        mail: None,
    }
}

fn mail(kind: MailKind, state: OutboxState, attempts: i64, error: Option<&str>) -> Option<MailSummary> {
    Some(MailSummary {
        kind,
        state,
        attempts,
        last_error: error.map(str::to_string),
        next_attempt_at: NOW + 120,
    })
}

#[allow(clippy::too_many_arguments)]
fn summary(
    id: i64,
    status: Status,
    name: &str,
    email: &str,
    subject: Option<&str>,
    preview: &str,
    age: i64,
    mail: Option<MailSummary>,
) -> MessageSummary {
    MessageSummary {
        id: MessageId(id),
        form: "contact".into(),
        status,
        name: name.into(),
        email: email.into(),
        subject: subject.map(str::to_string),
        preview: preview.into(),
        created_at: NOW - age,
        verified_at: (status != Status::Pending).then_some(NOW - age + 60),
        released_at: (status == Status::Released).then_some(NOW - age + 600),
        deleted_at: (status == Status::Deleted).then_some(NOW - 300),
        mail,
    }
}

/// What each tab shows in the snapshots: every mail state, ages from seconds to weeks, a
/// subject-less message, long names and a hostile one.
pub fn rows(tab: Tab) -> Vec<MessageSummary> {
    use MailKind::{Release, Verify};
    use OutboxState::{Dead, Queued, Sent};
    let s = tab.status();
    match tab {
        Tab::Pending => vec![
            summary(
                112,
                s,
                "Lin Wei",
                "lin.wei@example.cn",
                Some("Quote for 40 units"),
                "Hello, we would like a quote",
                42,
                mail(Verify, Queued, 0, None),
            ),
            summary(
                111,
                s,
                "Jörg Müller",
                "joerg@example.de",
                None,
                "Guten Tag,\nich habe eine Frage zu Ihrer Rechnung",
                300,
                mail(Verify, Sent, 1, None),
            ),
            summary(
                109,
                s,
                "Pat",
                "pat@mailhost.invalid-example.org",
                Some("Partnership"),
                "Hi there",
                3 * 3600,
                mail(Verify, Queued, 3, Some("connection refused (os error 111)")),
            ),
            summary(
                104,
                s,
                "Sam Doe",
                "nobody@example.net",
                Some("Broken link on /pricing"),
                "The pricing page 404s",
                2 * 86_400,
                mail(Verify, Dead, 1, Some("550 5.1.1 no such user")),
            ),
            summary(
                97,
                s,
                "Evil \u{1b}]0;pwned\u{7}",
                "x@example.com",
                Some("\u{1b}[2Jcleared"),
                "\u{9b}31mred",
                16 * 86_400,
                mail(Verify, Sent, 1, None),
            ),
        ],
        Tab::Verified => vec![
            summary(
                110,
                s,
                "Ada Lovelace",
                "ada@example.org",
                Some("Analytical engine"),
                "I have notes on the engine",
                600,
                mail(Verify, Sent, 1, None),
            ),
            summary(
                108,
                s,
                "Grace Hopper",
                "grace@navy.example.mil",
                Some("Compilers"),
                "A question about COBOL",
                5 * 3600,
                mail(Verify, Sent, 1, None),
            ),
            summary(
                103,
                s,
                "Alan Turing",
                "alan@example.ac.uk",
                None,
                "Could a machine think?\nI wonder.",
                3 * 86_400,
                mail(Verify, Sent, 2, None),
            ),
        ],
        Tab::Released => vec![
            summary(
                107,
                s,
                "Katherine Johnson",
                "kj@example.gov",
                Some("Trajectories"),
                "Numbers attached",
                7200,
                mail(Release, Sent, 1, None),
            ),
            summary(
                105,
                s,
                "Edsger Dijkstra",
                "ewd@example.nl",
                Some("Goto considered"),
                "Please read",
                86_400,
                mail(Release, Queued, 2, Some("421 4.7.0 try again later")),
            ),
            summary(
                99,
                s,
                "Barbara Liskov",
                "liskov@example.edu",
                Some("Substitution"),
                "Subtypes",
                9 * 86_400,
                mail(Release, Dead, 5, Some("554 5.7.1 relay denied")),
            ),
            summary(
                98,
                s,
                "Donald Knuth",
                "dek@example.edu",
                Some("A cheque"),
                "$2.56",
                10 * 86_400,
                None,
            ),
        ],
        Tab::Trash => vec![summary(
            106,
            s,
            "Spammy McSpam",
            "win@prize.example",
            Some("You won!!!"),
            "Click here",
            4 * 86_400,
            mail(Verify, Sent, 1, None),
        )],
        Tab::Spam => vec![summary(
            105,
            s,
            "Best Prices",
            "seo@bots.example",
            Some("Rank #1 on Google"),
            "Cheap backlinks",
            3600,
            None,
        )],
    }
}

pub fn counts() -> Vec<(Status, i64)> {
    vec![
        (Status::Pending, 12),
        (Status::Verified, 3),
        (Status::Released, 40),
        (Status::Deleted, 2),
        (Status::Spam, 1),
    ]
}

/// An app on `tab` with its fixed rows and counts, as if just loaded.
pub fn app(tab: Tab) -> State {
    let mut app = State::new("alice", NOW, 80, 24);
    app.tab = tab;
    app.rows = rows(tab);
    app.counts = counts();
    app.loaded = true;
    app
}

pub fn details(id: i64, status: Status) -> Details {
    let created = NOW - 3 * 3600;
    let body = "Dear team,\n\nI would like to ask about the analytical engine: could it compose elaborate \
                and scientific pieces of music of any degree of complexity or extent?\n\nI have attached my \
                notes (A to G) and would be glad of any corrections.\n\nKind regards,\nAda";
    Details {
        message: Message {
            id: MessageId(id),
            form: "contact".into(),
            fields: Vec::new(),
            status,
            name: "Ada Lovelace".into(),
            email: "ada@example.org".into(),
            subject: Some("Analytical engine".into()),
            body: body.into(),
            ip: Some("192.0.2.44".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into()),
            created_at: created,
            updated_at: created + 900,
            nonce: "n".into(),
            confirmed_nonce: Some("n0".into()),
            verify_expires_at: created + 72 * 3600,
            verify_mails: 1,
            code_failures: 0,
            link_opened_at: Some(created + 840),
            verified_at: Some(created + 900),
            released_at: None,
            deleted_at: None,
            status_before_delete: None,
        },
        audit: vec![
            AuditRecord {
                at: created,
                actor: "visitor".into(),
                action: "submit".into(),
                from_status: None,
                to_status: Some(Status::Pending),
                detail: None,
            },
            AuditRecord {
                at: created + 900,
                actor: "visitor".into(),
                action: "verify".into(),
                from_status: Some(Status::Pending),
                to_status: Some(Status::Verified),
                detail: Some("confirmed by link".into()),
            },
        ],
        outbox: Destination::list(vec![
            OutboxRecord {
                id: 31,
                kind: MailKind::Verify,
                recipient: "ada@example.org".into(),
                message_id_header: "<verify-110@example.org>".into(),
                state: OutboxState::Sent,
                attempts: 2,
                created_at: created,
                next_attempt_at: created + 30,
                last_error: Some("421 4.3.2 service not available".into()),
                last_attempt_at: Some(created + 35),
                sent_at: Some(created + 35),
                lease_owner: None,
            },
            OutboxRecord {
                id: 32,
                kind: MailKind::Webhook,
                recipient: "https://hooks.example.com/formgate?token=s3cret".into(),
                message_id_header: "msg_0123456789abcdef".into(),
                state: OutboxState::Dead,
                attempts: 5,
                created_at: created + 60,
                next_attempt_at: created + 3600,
                last_error: Some("HTTP 503 Service Unavailable".into()),
                last_attempt_at: Some(created + 3600),
                sent_at: None,
                lease_owner: None,
            },
        ]),
    }
}

/// Everything a visitor (or anyone with write access to the database) could put in the way of a
/// terminal, in every field the dashboard shows.
pub const HOSTILE: &str = "clear\u{1b}[2J clip\u{1b}]52;c;cm0gLXJmIH4=\u{7} title\u{1b}]0;owned\u{7} csi\u{1b}[31m c1\u{9b}1;1H bidi\u{202e}txt.exe\u{202c} iso\u{2066}x\u{2069} del\u{7f} bell\u{7}";

pub fn hostile_row(id: i64) -> MessageSummary {
    MessageSummary {
        id: MessageId(id),
        form: "contact".into(),
        status: Status::Pending,
        name: HOSTILE.into(),
        email: format!("{HOSTILE}@example.org"),
        subject: Some(HOSTILE.into()),
        preview: HOSTILE.into(),
        created_at: NOW - 60,
        verified_at: None,
        released_at: None,
        deleted_at: None,
        mail: Some(MailSummary {
            kind: MailKind::Verify,
            state: OutboxState::Queued,
            attempts: 2,
            last_error: Some(HOSTILE.into()),
            next_attempt_at: NOW,
        }),
    }
}

pub fn hostile_details(id: i64) -> Details {
    let mut d = details(id, Status::Pending);
    let m = &mut d.message;
    m.name = HOSTILE.into();
    m.email = HOSTILE.into();
    m.subject = Some(HOSTILE.into());
    m.body = format!("{HOSTILE}\n{HOSTILE}\r\n\u{1b}P+q\u{1b}\\ end");
    m.ip = Some(HOSTILE.into());
    m.user_agent = Some(HOSTILE.into());
    for a in &mut d.audit {
        a.actor = HOSTILE.into();
        a.detail = Some(HOSTILE.into());
    }
    d.outbox[0].row.last_error = Some(HOSTILE.into());
    d.outbox[0].row.recipient = HOSTILE.into();
    d
}

// --- a site with several forms -------------------------------------------------------------------

fn form(slug: &str, title: &str, fields: Option<Vec<FieldSpec>>) -> Form {
    Form {
        fields,
        ..Form::open(slug, title, "Example")
    }
}

fn spec(name: &str, kind: FieldKind, label: &str) -> FieldSpec {
    FieldSpec {
        name: name.into(),
        kind,
        label: label.into(),
        required: false,
        max_length: None,
        options: Vec::new(),
        min: None,
        max: None,
        help: None,
        verify: kind == FieldKind::Email,
    }
}

/// Three forms in configuration order: the open `contact`, a declared `quote` whose fields are
/// of every kind that shows differently, and `jobs` (open).
pub fn forms() -> Vec<Form> {
    use FieldKind::{Checkbox, Checkboxes, Email, Select, Text, Textarea};
    let quote = vec![
        spec("name", Text, "Your name"),
        spec("email", Email, "Your email"),
        spec("company", Text, "Company"),
        spec("budget", Select, "Budget"),
        spec("topics", Checkboxes, "What do you need?"),
        spec("details", Textarea, "Anything else we should know"),
        spec("newsletter", Checkbox, "Send me the newsletter"),
        spec("message", Textarea, "Your message"),
    ];
    vec![
        form("contact", "Contact", None),
        form("quote", "Quote requests", Some(quote)),
        form("jobs", "Job applications", None),
    ]
}

/// The form each Pending row of [`rows`] was posted to on the several-forms site.
fn form_of_row(id: i64) -> &'static str {
    match id {
        112 | 104 => "quote",
        109 => "jobs",
        // 97: a form since removed from the configuration (shown by its slug).
        97 => "events",
        _ => "contact",
    }
}

/// [`app`] on a site with several forms; the rows belong to different forms.
pub fn several_forms_app(tab: Tab) -> State {
    let mut app = app(tab);
    app.forms = forms();
    for r in &mut app.rows {
        r.form = form_of_row(r.id.0).into();
    }
    app
}

/// The counts of the `quote` form alone.
pub fn quote_counts() -> Vec<(Status, i64)> {
    vec![(Status::Pending, 2), (Status::Verified, 1), (Status::Released, 7)]
}

/// A quote request's details: every kind of field, and a company name that tries to talk to the
/// terminal.
pub fn quote_details(id: i64) -> Details {
    let mut d = details(id, Status::Pending);
    d.message.form = "quote".into();
    d.message.subject = None;
    d.message.body = "We are planning a new site for the spring.".into();
    d.message.fields = vec![
        // In the order they were posted, not the form's: the pane uses the form's.
        Field::new("newsletter", FieldValue::Flag(false)),
        Field::new("topics", FieldValue::List(vec!["Design".into(), "Hosting".into()])),
        Field::new("company", FieldValue::Text(format!("Acme {HOSTILE}"))),
        Field::new("budget", FieldValue::Text("10 000 – 25 000 EUR".into())),
        Field::new(
            "details",
            FieldValue::Text(
                "We need it before the trade fair in April, and the current site must stay up \
                 until then.\nCall after 2 pm."
                    .into(),
            ),
        ),
        // Posted when the form still declared it: shown under its name, after the form's fields.
        Field::new("referrer", FieldValue::Text("a friend".into())),
    ];
    d
}
