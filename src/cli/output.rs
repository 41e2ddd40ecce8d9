//! How the verbs print. Visitor text is untrusted: everything shown on a terminal goes through
//! `display_safe` (no escape sequences reach the moderator's terminal), JSON escapes the
//! invisible and bidi characters too, and CSV cells cannot start a spreadsheet formula.

use std::io::{self, Write};

use serde::Serialize;

use crate::actions::Details;
use crate::clock::human_time;
use crate::domain::{Field, Message};
use crate::forms::Form;
use crate::forms::present::{cell, shown_fields};
use crate::mail::destination::{Delivery, Destination};
use crate::mail::queue::OutboxState;
use crate::store::MessageSummary;
use crate::tui::safe::is_unsafe;
pub use crate::tui::safe::safe;
pub use crate::tui::view::age;

/// Serialises, then writes control, C1 and bidi characters as `\uXXXX` escapes: still the same
/// JSON to a parser, but inert when printed on a terminal.
pub fn json<T: Serialize>(value: &T) -> serde_json::Result<String> {
    let raw = serde_json::to_string_pretty(value)?;
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        // Outside strings the pretty printer only emits newlines; inside them serde_json has
        // already escaped C0. What is left to defuse is the rest of the terminal-unsafe set.
        if c != '\n' && is_unsafe(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn clip(s: &str, width: usize) -> String {
    let s = safe(s);
    if s.chars().count() <= width {
        format!("{s:<width$}")
    } else {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

pub fn mail_state(row: &MessageSummary) -> String {
    match &row.mail {
        None => "-".into(),
        Some(m) => match (m.state, m.attempts) {
            (OutboxState::Sent, _) => format!("{} sent", m.kind.as_str()),
            (OutboxState::Dead, _) => format!(
                "{} dead: {}",
                m.kind.as_str(),
                safe(m.last_error.as_deref().unwrap_or(""))
            ),
            (OutboxState::Queued, 0) => format!("{} queued", m.kind.as_str()),
            (OutboxState::Queued, n) => {
                format!(
                    "{} retrying ({n}): {}",
                    m.kind.as_str(),
                    safe(m.last_error.as_deref().unwrap_or(""))
                )
            }
        },
    }
}

/// The list's table; with `form_column` (the site has several forms) a FORM column after STATUS.
pub fn table(out: &mut (impl Write + ?Sized), rows: &[MessageSummary], now: i64, form_column: bool) -> io::Result<()> {
    if rows.is_empty() {
        return writeln!(out, "no messages");
    }
    let form = |slug: &str| {
        if form_column {
            format!("{} ", clip(slug, 12))
        } else {
            String::new()
        }
    };
    writeln!(
        out,
        "{:>6}  {:<9} {}{:>4}  {:<20} {:<28} {:<30} MAIL",
        "ID",
        "STATUS",
        form("FORM"),
        "AGE",
        "NAME",
        "EMAIL",
        "SUBJECT"
    )?;
    for r in rows {
        let subject = r
            .subject
            .clone()
            .unwrap_or_else(|| r.preview.lines().next().unwrap_or("").to_string());
        writeln!(
            out,
            "{:>6}  {:<9} {}{:>4}  {} {} {} {}",
            r.id.0,
            r.status.as_str(),
            form(&r.form),
            age(now, r.created_at),
            clip(&r.name, 20),
            clip(&r.email, 28),
            clip(&subject, 30),
            clip(&mail_state(r), 40).trim_end(),
        )?;
    }
    Ok(())
}

/// A message as `show --json` and `export --format json` give it: `fields` as
/// `[{name, label, value}]` in the form's order, with the form's labels.
pub fn message_json(m: &Message, form: &Form) -> serde_json::Result<serde_json::Value> {
    let mut value = serde_json::to_value(m)?;
    value["fields"] = serde_json::to_value(shown_fields(form, &m.fields))?;
    Ok(value)
}

/// `form` is the one `entry_of(m.form)` gives (for a form no longer configured: the default's
/// settings under another slug).
pub fn details(out: &mut (impl Write + ?Sized), d: &Details, form: &Form) -> io::Result<()> {
    let m = &d.message;
    let when = |t: Option<i64>| t.map(human_time).unwrap_or_else(|| "-".into());
    writeln!(out, "Message #{}  [{}]", m.id, m.status)?;
    if form.slug == m.form {
        writeln!(out, "Form:       {} ({})", safe(&m.form), safe(&form.title))?;
    } else {
        writeln!(out, "Form:       {} (no longer configured)", safe(&m.form))?;
    }
    writeln!(out, "From:       {} <{}>", safe(&m.name), safe(&m.email))?;
    writeln!(out, "Subject:    {}", safe(m.subject.as_deref().unwrap_or("-")))?;
    writeln!(out, "Submitted:  {}", human_time(m.created_at))?;
    writeln!(out, "IP:         {}", safe(m.ip.as_deref().unwrap_or("-")))?;
    writeln!(out, "User agent: {}", safe(m.user_agent.as_deref().unwrap_or("-")))?;
    writeln!(
        out,
        "Link opened {}   Verified {}   Released {}",
        when(m.link_opened_at),
        when(m.verified_at),
        when(m.released_at)
    )?;
    let shown = shown_fields(form, &m.fields);
    if !shown.is_empty() {
        writeln!(out)?;
        writeln!(out, "Fields:")?;
        let width = shown.iter().map(|f| safe(&f.label).chars().count()).max().unwrap_or(0);
        for f in &shown {
            let label = format!("{}:", safe(&f.label));
            let value = f.value.display();
            let mut lines = value.lines();
            writeln!(out, "  {label:<w$} {}", safe(lines.next().unwrap_or("")), w = width + 1)?;
            for more in lines {
                writeln!(out, "  {:<w$} {}", "", safe(more), w = width + 1)?;
            }
        }
    }
    writeln!(out)?;
    for line in m.body.lines() {
        writeln!(out, "    {}", safe(line))?;
    }
    writeln!(out)?;
    writeln!(out, "Audit trail:")?;
    for a in &d.audit {
        let moved = match (a.from_status, a.to_status) {
            (Some(f), Some(t)) => format!("{f} → {t}"),
            (None, Some(t)) => format!("→ {t}"),
            _ => String::new(),
        };
        let detail = a
            .detail
            .as_deref()
            .map(|x| format!(" ({})", safe(x)))
            .unwrap_or_default();
        writeln!(
            out,
            "  {}  {:<12} {:<8} {}{}",
            human_time(a.at),
            safe(&a.actor),
            a.action,
            moved,
            detail
        )?;
    }
    writeln!(out, "Destinations:")?;
    if d.outbox.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for o in &d.outbox {
        writeln!(out, "{}", destination_line(o))?;
    }
    Ok(())
}

/// `   3  webhook       https://hooks.example.com/in  dead after 5 attempt(s); last error: 503`:
/// the number `redeliver --to` takes, what it is, where to, and how its delivery stands.
pub fn destination_line(o: &Destination) -> String {
    let r = &o.row;
    let state = match o.delivery {
        Delivery::Retrying => format!("retrying, next {}", human_time(r.next_attempt_at)),
        Delivery::Sent => format!("sent {}", r.sent_at.map(human_time).unwrap_or_default()),
        other => other.as_str().to_string(),
    };
    let err = r
        .last_error
        .as_deref()
        .map(|e| format!("; last error: {}", safe(e)))
        .unwrap_or_default();
    format!(
        "  {:>2}  {:<12}  {}  {} after {} attempt(s){}",
        o.number,
        o.destination,
        safe(&r.recipient),
        state,
        r.attempts,
        err
    )
}

const CSV_COLUMNS: &[&str] = &[
    "id",
    "status",
    "name",
    "email",
    "subject",
    "message",
    "created_at",
    "verified_at",
    "released_at",
    "ip",
    "user_agent",
];

/// After the message's own columns: `form`, then one column per declared field of the form the
/// export is of (`columns`), or else one `fields` column holding the fields as a JSON object.
pub fn csv_header(out: &mut impl Write, columns: Option<&[(String, String)]>) -> io::Result<()> {
    let mut names: Vec<String> = CSV_COLUMNS.iter().map(|c| (*c).to_string()).collect();
    names.push("form".into());
    match columns {
        Some(columns) => names.extend(columns.iter().map(|(name, _)| csv_cell(name))),
        None => names.push("fields".into()),
    }
    writeln!(out, "{}\r", names.join(","))
}

/// The fields as one JSON object, in their order: `{"company":"Acme","topics":["a","b"]}`.
fn fields_object(fields: &[Field]) -> String {
    let mut s = String::from("{");
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(&f.name).unwrap_or_default());
        s.push(':');
        s.push_str(&serde_json::to_string(&f.value).unwrap_or_default());
    }
    s.push('}');
    s
}

/// RFC 4180 quoting, and a leading `'` on cells a spreadsheet would run as a formula.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn csv_row(
    out: &mut impl Write,
    m: &Message,
    columns: Option<&[(String, String)]>,
    escape_controls: bool,
) -> io::Result<()> {
    let opt = |t: Option<i64>| t.map(|t| t.to_string()).unwrap_or_default();
    let mut cells = vec![
        m.id.0.to_string(),
        m.status.as_str().to_string(),
        m.name.clone(),
        m.email.clone(),
        m.subject.clone().unwrap_or_default(),
        m.body.clone(),
        m.created_at.to_string(),
        opt(m.verified_at),
        opt(m.released_at),
        m.ip.clone().unwrap_or_default(),
        m.user_agent.clone().unwrap_or_default(),
        m.form.clone(),
    ];
    match columns {
        Some(columns) => cells.extend(columns.iter().map(|(name, _)| cell(&m.fields, name))),
        None => cells.push(fields_object(&m.fields)),
    }
    let cell = |c: &String| {
        if escape_controls {
            csv_cell(&safe(c))
        } else {
            csv_cell(c)
        }
    };
    writeln!(out, "{}\r", cells.iter().map(cell).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn json_output_keeps_no_terminal_controls() {
        let s = json(&serde_json::json!({ "name": "a\u{1b}[2Jb\u{9b}c\u{202e}d" })).unwrap();
        assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back["name"], "a\u{1b}[2Jb\u{9b}c\u{202e}d", "same data for a parser");
    }
}
