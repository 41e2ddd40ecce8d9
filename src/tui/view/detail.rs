//! The detail pane (Enter): a fixed header line, then the subject, the form's own fields (in the
//! form's order, with its labels), the message wrapped, its consent record, its audit trail and
//! its destinations (each delivery, numbered; one may be picked to send again), scrolled as one.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::{age, bold, datetime, dim, error, heading, warn, width, wrap};
use crate::actions::Details;
use crate::domain::{MessageId, Status};
use crate::forms::{ShownField, shown_fields};
use crate::mail::destination::{Delivery, Destination};
use crate::tui::safe::{display_safe, safe, safe_lines};
use crate::tui::state::State;
use crate::tui::text;

/// Indent of values under a label ("  User agent    …").
const LABEL: usize = 14;
/// The same under a destination ("  ▸3 verification …").
const DESTINATION: usize = 16;

pub fn render(app: &State, area: Rect, buf: &mut Buffer) {
    let Some(pane) = &app.detail else { return };
    if area.is_empty() {
        return;
    }
    let header = header(app, pane.id, pane.details.as_ref());
    buf.set_style(
        Rect { height: 1, ..area },
        Style::new().add_modifier(Modifier::REVERSED),
    );
    buf.set_line(area.x, area.y, &header, area.width);
    let content = Rect {
        y: area.y + 1,
        height: area.height - 1,
        ..area
    };
    let lines = match (&pane.details, &pane.error) {
        (Some(d), Some(e)) => {
            // Shown above what was read last (the message may have been purged meanwhile).
            let mut all = vec![Line::styled(
                safe(&text::detail_failed(pane.id, e)).into_owned(),
                error(),
            )];
            all.extend(lines(app, d, content.width as usize));
            all
        }
        (Some(d), None) => lines(app, d, content.width as usize),
        (None, Some(e)) => vec![Line::styled(
            safe(&text::detail_failed(pane.id, e)).into_owned(),
            error(),
        )],
        (None, None) => vec![Line::styled(text::detail_loading(pane.id), dim())],
    };
    let scroll = pane.scroll.min(lines.len().saturating_sub(content.height as usize));
    for (i, line) in lines.iter().skip(scroll).take(content.height as usize).enumerate() {
        buf.set_line(content.x, content.y + super::cells(i), line, content.width);
    }
}

/// How far the pane can scroll (`update` clamps with it).
pub fn max_scroll(app: &State) -> usize {
    let Some(details) = app.detail.as_ref().and_then(|p| p.details.as_ref()) else {
        return 0;
    };
    let rows = app.body_height().saturating_sub(1);
    let error_line = usize::from(app.detail.as_ref().is_some_and(|p| p.error.is_some()));
    (lines(app, details, app.width as usize).len() + error_line).saturating_sub(rows)
}

fn header(app: &State, id: MessageId, details: Option<&Details>) -> Line<'static> {
    let (status, name, email, form) = match details {
        Some(d) => (
            Some(d.message.status),
            d.message.name.as_str(),
            d.message.email.as_str(),
            Some(d.message.form.as_str()),
        ),
        None => match app.rows.iter().find(|r| r.id == id) {
            Some(r) => (Some(r.status), r.name.as_str(), r.email.as_str(), Some(r.form.as_str())),
            None => (None, "", "", None),
        },
    };
    let mut spans = vec![Span::styled(format!(" #{id} "), bold())];
    if let Some(s) = status {
        spans.push(Span::styled(format!("{s} "), bold()));
    }
    if let Some(slug) = form.filter(|_| app.several_forms()) {
        let shown = text::form_name(&safe(app.form_title(slug)), &safe(slug));
        spans.push(Span::raw(format!("· {shown} ")));
    }
    if !name.is_empty() {
        spans.push(Span::raw(format!("· {} <{}>", safe(name), safe(email))));
    }
    Line::from(spans)
}

/// The message's own fields as the form names them: its form's order and labels, or (its form is
/// no longer configured, as `Catalog::entry_of` treats it: an open form) as they were posted.
fn own_fields(app: &State, m: &crate::domain::Message) -> Vec<ShownField> {
    match app.form_of(&m.form) {
        Some(form) => shown_fields(form, &m.fields),
        None => m
            .fields
            .iter()
            .map(|f| ShownField {
                name: f.name.clone(),
                label: f.name.clone(),
                value: f.value.clone(),
            })
            .collect(),
    }
}

/// Everything below the header, wrapped to `cols`.
pub fn lines(app: &State, d: &Details, cols: usize) -> Vec<Line<'static>> {
    let now = app.now;
    let m = &d.message;
    let mut out: Vec<Line<'static>> = Vec::new();
    let (body, body_flagged) = safe_lines(&m.body);
    let own = own_fields(app, m);
    // A textarea's value keeps its line breaks, as the body does.
    let values: Vec<String> = own.iter().map(|f| f.value.display()).collect();
    let values: Vec<(Vec<std::borrow::Cow<'_, str>>, bool)> = values.iter().map(|v| safe_lines(v)).collect();
    let fields = [
        Some(&m.name),
        Some(&m.email),
        m.subject.as_ref(),
        m.ip.as_ref(),
        m.user_agent.as_ref(),
    ];
    let flagged = body_flagged
        || fields.into_iter().flatten().any(|s| display_safe(s).1)
        || own.iter().any(|f| display_safe(&f.label).1)
        || values.iter().any(|(_, f)| *f);
    if flagged {
        for l in wrap(text::FLAGGED_NOTE, cols) {
            out.push(Line::styled(l, warn().add_modifier(Modifier::BOLD)));
        }
    }
    let subject = match m.subject.as_deref() {
        Some(s) if !s.trim().is_empty() => safe(s).into_owned(),
        _ => text::NO_SUBJECT.to_string(),
    };
    labelled(&mut out, text::SUBJECT, &subject, cols, bold());
    if !own.is_empty() {
        section(&mut out, text::FIELDS);
        for (f, (value, _)) in own.iter().zip(&values) {
            field(&mut out, &safe(&f.label), value, cols);
        }
    }
    out.push(Line::styled("─".repeat(cols), dim()));
    for line in &body {
        for l in wrap(line, cols) {
            out.push(Line::raw(l));
        }
    }
    out.push(Line::raw(""));

    section(&mut out, text::CONSENT);
    let when = |t: Option<i64>| match t {
        Some(t) => format!("{} ({})", datetime(t), text::ago(&age(now, t))),
        None => text::NOT_YET.to_string(),
    };
    let or_unknown = |s: Option<&String>| s.map(|s| safe(s).into_owned()).unwrap_or_else(|| text::UNKNOWN.into());
    labelled(&mut out, text::IP, &or_unknown(m.ip.as_ref()), cols, Style::new());
    labelled(
        &mut out,
        text::USER_AGENT,
        &or_unknown(m.user_agent.as_ref()),
        cols,
        Style::new(),
    );
    labelled(&mut out, text::SUBMITTED, &when(Some(m.created_at)), cols, Style::new());
    labelled(&mut out, text::LINK_OPENED, &when(m.link_opened_at), cols, Style::new());
    labelled(&mut out, text::VERIFIED, &when(m.verified_at), cols, Style::new());
    if m.released_at.is_some() || m.status == Status::Released {
        labelled(&mut out, text::RELEASED, &when(m.released_at), cols, Style::new());
    }
    if m.deleted_at.is_some() || m.status == Status::Deleted {
        labelled(&mut out, text::DELETED, &when(m.deleted_at), cols, Style::new());
    }
    out.push(Line::raw(""));

    section(&mut out, text::AUDIT);
    for a in &d.audit {
        let mut what = format!(
            "{}  {}  {}",
            safe(&a.actor),
            safe(&a.action),
            text::status_change(a.from_status, a.to_status)
        );
        if let Some(detail) = &a.detail {
            what.push_str(&format!("  ({})", safe(detail)));
        }
        hanging(&mut out, &datetime(a.at), 22, &what, cols, Style::new());
    }
    out.push(Line::raw(""));

    section(&mut out, text::OUTBOX);
    if d.outbox.is_empty() {
        out.push(Line::styled(format!("  {}", text::NO_MAIL), dim()));
    }
    let picked = app.detail.as_ref().and_then(|p| p.destination);
    for (i, o) in d.outbox.iter().enumerate() {
        destination(&mut out, o, picked == Some(i), cols);
    }
    if d.outbox.iter().any(|o| o.delivery.ended()) {
        for l in wrap(text::REDELIVER_HINT, cols.saturating_sub(2).max(10)) {
            out.push(Line::styled(format!("  {l}"), dim()));
        }
    }
    out
}

/// `▸3 webhook    dead, 5 attempts · https://hooks.example.com/in · … · last error: 503`: its
/// number (what `D` and `redeliver --to` name), what it is, how it stands, where to; the picked
/// one marked and reversed.
fn destination(out: &mut Vec<Line<'static>>, o: &Destination, picked: bool, cols: usize) {
    let r = &o.row;
    let state = match o.delivery {
        Delivery::Queued => text::MAIL_QUEUED.to_string(),
        Delivery::Sending => text::MAIL_SENDING.to_string(),
        Delivery::Retrying => format!(
            "{}, {}",
            text::mail_retrying(r.attempts, None),
            text::next_attempt(&datetime(r.next_attempt_at))
        ),
        Delivery::Sent => format!("{}, {}", text::MAIL_SENT, text::attempts(r.attempts)),
        Delivery::Dead => format!("{}, {}", text::MAIL_DEAD, text::attempts(r.attempts)),
    };
    let mut what = format!("{state} · {} · {}", safe(&r.recipient), datetime(r.created_at));
    if let Some(e) = &r.last_error {
        what.push_str(&format!(" · {} {}", text::LAST_ERROR, safe(e)));
    }
    let mut style = match o.delivery {
        Delivery::Dead => error(),
        Delivery::Retrying => warn(),
        _ => Style::new(),
    };
    if picked {
        style = style.add_modifier(Modifier::REVERSED);
    }
    let label = format!("{}{} {}", if picked { "▸" } else { " " }, o.number, o.destination);
    hanging(out, &label, DESTINATION, &what, cols, style);
}

/// `  Label: value`, wrapped like the body, each of the value's lines on its own, continuation
/// lines indented under the label. Label and lines already safe.
fn field<S: AsRef<str>>(out: &mut Vec<Line<'static>>, label: &str, value: &[S], cols: usize) {
    let lead = format!("{label}:");
    let room = cols.saturating_sub(4).max(10);
    let mut first = true;
    for line in value {
        let text = if first {
            format!("{lead} {}", line.as_ref())
        } else {
            line.as_ref().to_string()
        };
        for part in wrap(&text, room) {
            let spans = match part.strip_prefix(lead.as_str()) {
                Some(rest) if first => vec![
                    Span::raw("  "),
                    Span::styled(lead.clone(), dim()),
                    Span::raw(rest.to_string()),
                ],
                _ if first => vec![Span::raw("  "), Span::raw(part)],
                _ => vec![Span::raw("    "), Span::raw(part)],
            };
            first = false;
            out.push(Line::from(spans));
        }
    }
}

fn section(out: &mut Vec<Line<'static>>, title: &str) {
    out.push(Line::styled(title.to_string(), heading()));
}

/// `  Label         value`, the value wrapped under itself.
fn labelled(out: &mut Vec<Line<'static>>, label: &str, value: &str, cols: usize, style: Style) {
    hanging(out, label, LABEL, value, cols, style);
}

fn hanging(out: &mut Vec<Line<'static>>, label: &str, label_cols: usize, value: &str, cols: usize, style: Style) {
    let indent = 2 + label_cols;
    let room = cols.saturating_sub(indent).max(10);
    for (i, part) in wrap(value, room).into_iter().enumerate() {
        let lead = if i == 0 {
            let pad = label_cols.saturating_sub(width(label));
            format!("  {label}{}", " ".repeat(pad))
        } else {
            " ".repeat(indent)
        };
        out.push(Line::from(vec![Span::styled(lead, dim()), Span::styled(part, style)]));
    }
}
